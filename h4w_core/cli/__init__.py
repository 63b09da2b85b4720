"""Command-line entry points (console scripts)."""

"""Stand-in assets and synthetic sequences for tests and the demo (no licence-restricted data)."""

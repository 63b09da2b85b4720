"""Benchmarks and probes: tools built on the library, never imported by it."""

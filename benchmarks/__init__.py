"""Benchmarks: scripts that print a table and write results/<name>.json (see README.md)."""

"""Benchmarks, outside the installed library."""

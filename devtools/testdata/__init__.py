"""Generators of upstream-shaped test files."""

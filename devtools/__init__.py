"""Developer tools outside the installed library: test data and benchmarks."""

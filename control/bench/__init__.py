"""Benchmarks that print figures: `allocator bench quality` and `allocator bench pipeline`."""

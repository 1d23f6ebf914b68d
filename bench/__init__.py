"""Benchmarks that print figures, run from a source checkout: ``python -m bench quality`` and
``python -m bench pipeline`` (also ``allocator bench ...`` there); results go to
bench/results/."""

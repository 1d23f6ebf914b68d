"""``python -m bench <command>``: the benchmarks' command line (``--help`` lists them)."""

from bench.cli import main

main()

"""ringside benchmark suite: see docs/perf.md and perf/run --help."""

"""Benchmarks: commands that print figures, each against a baseline measured in the same run.

    python -m tools.bench.services   make bench: the whole service, batched against the per-image path
    python -m tools.bench.api        bulk submission against one request per image
    python -m tools.bench.ml         the ML package alone (latency, the batch path, several processes)

Nothing here is imported by the packages that ship; this package imports nothing itself, so that the ML bench
runs where only the ML package's dependencies are installed (a GPU machine: no Django)."""

"""Benchmarks: `python -m benchmarks.speed` (step time, throughput, memory) and
`python -m benchmarks.run` (quality tables)."""

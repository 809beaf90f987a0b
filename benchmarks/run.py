"""``python -m benchmarks.run ARGS`` = ``python -m benchmarks run ARGS`` (the old spelling, kept as an alias)."""
from .alias import forward

if __name__ == "__main__":
    forward("run")

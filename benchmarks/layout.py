"""Where the benchmarks run and write: the checkout (children's working directory), the stored results and
the run folders.  Read as ``layout.X`` at call time, so a test can point them at a scratch checkout."""
from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results"  # tracked: <name>.json (every number), <name>.md (tables), PNG plots
RUNS = REPO / "benchmarks" / "runs"  # untracked: one folder per run (log.txt, metrics.json, artifact)

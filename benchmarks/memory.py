"""Peak training memory on CPU: one fresh subprocess per (size, method), read from the RSS high-water mark.

Why a subprocess: a process's high-water mark never goes down, and freed tensors stay in
the allocator, so measuring several methods in one process would charge each method with
its predecessors' peaks.  In a fresh interpreter we record the resident set after imports
(baseline), then the high-water mark after building the model and after a few training
steps; "training memory" = final peak - baseline, i.e. weights + gradients + optimizer
state + activations, the same quantity a GPU's max_memory_allocated reports.

The high-water mark is ``VmHWM`` of /proc/self/status, reset to the current RSS after
imports (``echo 5 > /proc/self/clear_refs``).  Not ``ru_maxrss``: Linux carries the
parent's peak into a child across fork+exec, so a child of a big benchmark process would
report the parent's peak.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def _status_mib(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024  # kB
    raise RuntimeError(f"{field} not in /proc/self/status (Linux only)")


def _reset_peak() -> None:
    Path("/proc/self/clear_refs").write_text("5")  # VmHWM := current RSS


def _peak_mib() -> float:
    return _status_mib("VmHWM")


def worker(size: str, method: str, length: int, batch: int, prefix_len: int, model: str, steps: int) -> dict:
    from .timing import build_all, fake_batch, optimizer_for, train_step  # imports before the baseline

    baseline = _status_mib("VmRSS")
    _reset_peak()
    adapted = build_all(size, (method,), prefix_len, model)[method]
    adapted.train()
    built = _peak_mib()
    optimizer = optimizer_for(adapted, method)
    data = fake_batch(batch, length, adapted.backbone.config.vocab_size)
    for _ in range(steps):  # step 1 allocates AdamW state; later steps show the steady state
        train_step(adapted, optimizer, data)
    peak = _peak_mib()
    return {"baseline_mib": baseline, "after_build_mib": built, "peak_mib": peak,
            "training_mib": peak - baseline, "above_build_mib": peak - built}


def measure(size: str, method: str, length: int, batch: int, prefix_len: int, model: str, steps: int = 2) -> dict:
    """Run :func:`worker` in a fresh interpreter and return its numbers."""
    command = [sys.executable, "-m", "benchmarks.memory", json.dumps(
        {"size": size, "method": method, "length": length, "batch": batch, "prefix_len": prefix_len,
         "model": model, "steps": steps})]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"memory worker failed for {size}/{method}: {done.stderr.strip()[-800:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    from tasks.common.allocator import keep_large_allocations

    keep_large_allocations()  # as the task CLIs do
    print(json.dumps(worker(**json.loads(sys.argv[1]))))

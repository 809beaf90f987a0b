"""Peak training memory: one fresh subprocess per (size, base, method), read from the process's high-water mark.

Why a subprocess: a process's high-water mark never goes down, and freed tensors stay in
the allocator, so measuring several methods in one process would charge each method with
its predecessors' peaks.  In a fresh interpreter we record the memory in use after imports
(baseline), then the high-water mark after building the model and after a few training
steps; "training memory" = final peak - baseline, i.e. weights + gradients + optimizer
state + activations.

On the CPU the high-water mark is ``VmHWM`` of /proc/self/status, reset to the current RSS after
imports (``echo 5 > /proc/self/clear_refs``).  Not ``ru_maxrss``: Linux carries the
parent's peak into a child across fork+exec, so a child of a big benchmark process would
report the parent's peak.  On a GPU it is ``torch.cuda.max_memory_allocated`` (reset after imports), the
tensors' memory rather than the process's.

A quantised base is built as the task CLIs build one: the fp32 model first, its linear layers then quantised
(``--quantize-base``).  On a GPU only the quantised weights ever reach the device; on the CPU the fp32 weights
were resident before quantisation, so the high-water mark includes them (as the CLI's does).
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import torch

from .device import allocated_mib, peak_allocated_mib, reset_peak_memory, resolve, synchronize


def status_mib(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024  # kB
    raise RuntimeError(f"{field} not in /proc/self/status (Linux only)")


def baseline_mib(device: torch.device) -> float:
    """Memory in use now (after imports), with the high-water mark reset to it."""
    if device.type == "cuda":
        reset_peak_memory(device)
        return allocated_mib(device)
    baseline = status_mib("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # VmHWM := current RSS
    return baseline


def peak_mib(device: torch.device) -> float:
    """The high-water mark since ``baseline_mib``."""
    if device.type == "cuda":
        synchronize(device)
        return peak_allocated_mib(device)
    return status_mib("VmHWM")


def worker(size: str, method: str, length: int, batch: int, prefix_len: int, model: str, steps: int,
           device: str = "cpu", precision: str = "fp32", base: str = "fp32") -> dict:
    """The numbers of one (size, base, method); ``{"refused": reason}`` when the method cannot run on that base."""
    from .timing import build_all, fake_batch, optimizer_for, train_stepper  # imports before the baseline

    where = resolve(device)
    baseline = baseline_mib(where)
    refused: dict[str, str] = {}
    models = build_all(size, (method,), prefix_len, model, where, base, refused)
    if method in refused:
        return {"refused": refused[method]}
    adapted = models[method]
    adapted.train()
    built = peak_mib(where)
    optimizer = optimizer_for(adapted, method)
    data = fake_batch(batch, length, adapted.backbone.config.vocab_size, device=where)
    step = train_stepper(adapted, optimizer, data, precision)  # bf16: a frozen encoder cast once, as --bf16 does
    for _ in range(steps):  # step 1 allocates AdamW state; later steps show the steady state
        step()
    peak = peak_mib(where)
    return {"baseline_mib": baseline, "after_build_mib": built, "peak_mib": peak,
            "training_mib": peak - baseline, "above_build_mib": peak - built}


def measure(size: str, method: str, length: int, batch: int, prefix_len: int, model: str, steps: int = 2,
            device: str = "cpu", precision: str = "fp32", base: str = "fp32") -> dict:
    """Run :func:`worker` in a fresh interpreter and return its numbers."""
    command = [sys.executable, "-m", "benchmarks.memory", json.dumps(
        {"size": size, "method": method, "length": length, "batch": batch, "prefix_len": prefix_len,
         "model": model, "steps": steps, "device": device, "precision": precision, "base": base})]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"memory worker failed for {size}/{base}/{method}: {done.stderr.strip()[-800:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


if __name__ == "__main__":  # the worker: python -m benchmarks.memory JSON
    from tasks.common.allocator import keep_large_allocations

    keep_large_allocations()  # as the task CLIs do
    print(json.dumps(worker(**json.loads(sys.argv[1]))))

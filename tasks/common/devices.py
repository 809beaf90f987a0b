"""Where a run's model runs: ``predict --device``, and how many torchrun processes the GPUs can take.

Training runs on the Trainer's device: the GPU when one is visible (one per process under torchrun), else the
CPU.  ``predict`` runs where ``--device`` puts the model (default: the GPU when one is visible).
"""
from __future__ import annotations

import os
import sys
from typing import Mapping

import torch

from .errors import EXIT_BAD_INPUT, UsageError


def default_device() -> str:
    """The one default for every entry point (training's Trainer, predict, the server, the benchmarks): ``cuda``
    when a GPU is visible, else ``cpu``."""
    return "cuda" if torch.cuda.is_available() else "cpu"


def parse_device(name: str | None) -> torch.device:
    """A device name (cpu, cuda or cuda:N; None: cuda when a GPU is visible, else cpu) as a device with its index;
    ValueError for one that is not there.  ``resolve_device`` (predict) and the benchmarks' ``--device`` use it."""
    try:
        device = torch.device(name or default_device())
    except RuntimeError:
        raise ValueError(f"--device {name}: expected cpu, cuda or cuda:N") from None
    if device.type == "cpu":
        return device
    if device.type != "cuda":
        raise ValueError(f"--device {name}: expected cpu, cuda or cuda:N")
    if not torch.cuda.is_available():
        raise ValueError(f"--device {name}: no CUDA device is visible to torch")
    index = device.index or 0  # a bare "cuda" is the first visible GPU (the Trainer's too)
    if index >= torch.cuda.device_count():
        raise ValueError(f"--device {name}: only {torch.cuda.device_count()} CUDA device(s) are visible")
    return torch.device("cuda", index)


def resolve_device(name: str | None) -> torch.device:
    """``--device`` of ``predict`` (cpu, cuda or cuda:0; None: cuda when a GPU is visible, else cpu); UsageError for
    one that is not there.

    Prediction runs on the Trainer, which uses the first visible GPU: another one is chosen with
    ``CUDA_VISIBLE_DEVICES``, so ``cuda:N`` for N > 0 is refused with that hint rather than run on GPU 0.
    """
    try:
        device = parse_device(name)
    except ValueError as err:
        raise UsageError(str(err)) from None
    if device.type == "cuda" and device.index:
        raise UsageError(f"--device {name}: prediction runs on the first visible GPU; run on GPU {device.index} with "
                         f"CUDA_VISIBLE_DEVICES={device.index} and --device cuda")
    return device


def too_many_processes(processes: int, gpus: int) -> str | None:
    """Why ``processes`` torchrun processes on this node cannot share ``gpus`` GPUs (None when they can).

    More processes than GPUs (and at least one GPU) is stopped rather than run another way: every process would
    need a GPU of its own (NCCL refuses two ranks on one GPU, and a process past the last GPU fails on an
    invalid device ordinal deep inside the Trainer's set-up), and moving every process to the CPU on a GPU
    machine would run many times slower without saying so.  CPU processes are one environment variable away.
    """
    if gpus < 1 or processes <= gpus:
        return None
    return (f"torchrun started {processes} processes on this node but only {gpus} GPU(s) are visible: use "
            f"--nproc-per-node {gpus} (one process per GPU), or CUDA_VISIBLE_DEVICES= to run {processes} CPU "
            "processes")


def check_processes(environ: Mapping[str, str] = os.environ, gpus: int | None = None) -> None:
    """Exit 2 with one line (from the node's first process only) when ``too_many_processes`` says so."""
    processes = int(environ.get("LOCAL_WORLD_SIZE", "1"))
    if processes <= 1:
        return
    reason = too_many_processes(processes, torch.cuda.device_count() if gpus is None else gpus)
    if reason is None:
        return
    if int(environ.get("LOCAL_RANK", "0")) == 0:
        print(f"error: {reason}", file=sys.stderr)
    raise SystemExit(EXIT_BAD_INPUT)


__all__ = ["check_processes", "resolve_device", "too_many_processes"]


def close_process_group() -> None:
    """End a torchrun run's process group once every rank is done (a no-op in a single process).

    Left to the interpreter's exit, gloo's threads can be torn down while another rank still writes its outputs:
    the process aborts ("terminate called without an active exception") and torchrun reports the run as failed
    although every rank finished.  Waiting for all ranks and destroying the group first ends them cleanly.
    """
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()

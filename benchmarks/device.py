"""Where the speed benchmark runs: ``cpu``, ``cuda`` or ``cuda:N``, and the few things that differ on a GPU.

A CUDA kernel launch returns before the kernel ends, so a timed region is closed by ``torch.cuda.synchronize()``
(and opened by one, so that earlier work is not charged to it); peak memory on a GPU is what the caching
allocator handed out (``torch.cuda.max_memory_allocated``), not the process's resident set.  On the CPU every
helper here is a no-op or the old behaviour.
"""
from __future__ import annotations

import torch

from tasks.common.devices import default_device, parse_device  # noqa: F401  (the one default, re-exported)


def resolve(name: str | None) -> torch.device:
    """The device ``name`` (None: the default) names; ValueError for a GPU that is not there."""
    return parse_device(name)


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued work (a no-op on the CPU, where every call returns when it is done)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def device_name(device: torch.device) -> str:
    """What a result records next to the CPU's machine label: the GPU's name, or ``cpu``."""
    return torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"


def reset_peak_memory(device: torch.device) -> None:
    if device.type == "cuda":
        # a fresh process has no CUDA context yet, and resetting then fails with "Invalid device argument"
        # (seen on the H200 in the GPU check's memory workers)
        torch.cuda.init()
        torch.cuda.reset_peak_memory_stats(device)


def allocated_mib(device: torch.device) -> float:
    """Memory the caching allocator has handed out now (GPU only)."""
    return torch.cuda.memory_allocated(device) / 2**20


def peak_allocated_mib(device: torch.device) -> float:
    """The allocator's high-water mark since the last reset (GPU only)."""
    return torch.cuda.max_memory_allocated(device) / 2**20


def autocast_bf16(device: torch.device) -> torch.autocast:
    """bf16 autocast on the device (what ``--bf16`` gives the Trainer for methods that train encoder tensors)."""
    return torch.autocast(device.type, dtype=torch.bfloat16)


def precisions(device: torch.device, native_bf16: bool) -> list[str]:
    """The backbone precisions to time: fp32, bf16 where it is native, int8 (a CPU kernel) on the CPU only."""
    if device.type == "cuda":
        return ["fp32", *(["bf16"] if torch.cuda.is_bf16_supported() else [])]
    return ["fp32", *(["bf16"] if native_bf16 else []), "int8"]

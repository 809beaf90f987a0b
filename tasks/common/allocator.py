"""Keep large CPU tensors in the malloc heap instead of fresh mmap()s.

glibc serves every allocation above its mmap threshold (at most 32 MiB by default) with a new
mmap() and returns it with munmap() on free.  An encoder's activations at batch 16 x 256 tokens
(attention scores, FFN outputs) are above that, so every step maps, page-faults and unmaps them
again, and a measurable share of each step is spent in the kernel (measured when this was adopted: commit
72ecc33).  Raising the threshold and the trim threshold lets freed blocks be reused, for
a slightly higher peak RSS.  Training (and the server) apply it; ``predict`` does not: it trims the heap after every
batch instead (``release_free_memory``), and with that the thresholds bought it no speed (issue 43).
"""
from __future__ import annotations

import ctypes
import functools
import os

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # mallopt parameters (malloc.h)
LIMIT = 1 << 30  # blocks up to 1 GiB come from the heap and stay there for reuse


def keep_large_allocations() -> bool:
    """Apply the thresholds above (glibc only; a no-op elsewhere or when PTV2_MALLOC_TUNING=0).

    Returns whether they were applied.  Affects only allocations made afterwards.
    """
    if os.environ.get("PTV2_MALLOC_TUNING", "1") == "0":
        return False
    mallopt = _libc_function("mallopt")
    if mallopt is None:
        return False
    return bool(mallopt(M_MMAP_THRESHOLD, LIMIT)) and bool(mallopt(M_TRIM_THRESHOLD, LIMIT))


def release_free_memory() -> None:
    """Hand the heap's free pages back to the system (glibc's malloc_trim; a no-op elsewhere).

    Predict calls it after each batch (``training.Predictor``).  Each batch shape allocates blocks of its own sizes
    that the holes left by earlier shapes do not fit, so the heap grew by a batch's working set again and again,
    with the thresholds above (nothing freed is returned) or without them (the holes are inside the heap).  Trimming
    after each batch keeps predict's peak flat as its input grows (``benchmarks/results/predict-scaling.md``); the
    cost is the next batch faulting the returned pages in again (issue 43).
    """
    trim = _libc_function("malloc_trim")
    if trim is not None:
        trim(0)


@functools.cache  # looked up once: predict calls release_free_memory after every batch
def _libc_function(name: str):
    """``name`` from the C library already loaded into this process, or None: no such function (macOS, musl) or no
    CDLL(None) (Windows)."""
    try:  # the symbols already loaded into this process, libc's among them (no library search)
        return getattr(ctypes.CDLL(None), name)
    except (OSError, AttributeError, TypeError):
        return None


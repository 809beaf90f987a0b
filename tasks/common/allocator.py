"""Keep large CPU tensors in the malloc heap instead of fresh mmap()s.

glibc serves every allocation above its mmap threshold (at most 32 MiB by default) with a new
mmap() and returns it with munmap() on free.  An encoder's activations at batch 16 x 256 tokens
(attention scores, FFN outputs) are above that, so every step maps, page-faults and unmaps them
again, and a measurable share of each step is spent in the kernel (measured when this was adopted: commit
72ecc33).  Raising the threshold and the trim threshold lets freed blocks be reused, for
a slightly higher peak RSS.  Training (and the server) apply it; ``predict`` does not: it trims the heap once free
blocks build up instead (``HeapTrimmer``), and with that the thresholds bought it no speed (issue 43).
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


# Resident bytes that predict lets the process grow by before it trims the heap again (``HeapTrimmer``).  Trimming
# after every batch kept the peak flat but cost NER predict much of its rows/s: each trim makes the next batch fault
# its working set in again.  Issue 43 asks the peak at 16x an input to stay within 1.2x of the peak at 1x; QA's
# batches grew the heap by nearly all of a 64 MiB bound without a trim, which put it past that.  What this bound
# gives is measured in results/predict-scaling.md.
GROWTH_BOUND = 32 << 20


def release_free_memory() -> bool:
    """Hand the heap's free pages back to the system (glibc's malloc_trim); whether it could (a no-op without
    glibc)."""
    trim = _libc_function("malloc_trim")
    if trim is None:
        return False
    trim(0)
    return True


def resident_bytes() -> int | None:
    """This process's resident set in bytes (Linux's /proc/self/statm), or None where it cannot be read."""
    try:
        with open("/proc/self/statm", "rb") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


class HeapTrimmer:
    """Trims the heap (``release_free_memory``) when the resident set has grown by more than ``bound`` bytes over
    its base: the resident set after the first batch, or after the first batch since the last trim (the batch's
    working set is resident again then).  Where the resident set cannot be read, it trims at every call.

    Predict calls one after each batch (``training.Predictor``).  Each batch shape allocates blocks of its own sizes
    that the holes left by earlier shapes do not fit, so the heap grew by a batch's working set again and again, with
    the thresholds above (nothing freed is returned) or without them (the holes are inside the heap), and predict's
    peak with it (issue 43).  The resident set is the measure, not the heap's free bytes: trimmed holes stay counted
    as free, so a bound on those would trim at every batch once the heap is fragmented.
    """

    def __init__(self, bound: int = GROWTH_BOUND) -> None:
        self.bound, self.base = bound, None

    def __call__(self) -> bool:
        """Trim if the bound is passed; whether it trimmed."""
        resident = resident_bytes()
        if resident is None:  # nothing to go by: trim at every call
            return release_free_memory()
        if self.base is None:  # the first batch, or the first since a trim: its working set is resident again
            self.base = resident
            return False
        if resident - self.base <= self.bound:
            return False
        self.base = None  # taken after the next batch: from right after a trim, its working set would pass the bound
        return release_free_memory()


@functools.cache  # looked up once, not at every predict batch
def _libc_function(name: str):
    """``name`` from the C library already loaded into this process, or None: no such function (macOS, musl) or no
    CDLL(None) (Windows)."""
    try:  # the symbols already loaded into this process, libc's among them (no library search)
        return getattr(ctypes.CDLL(None), name)
    except (OSError, AttributeError, TypeError):
        return None


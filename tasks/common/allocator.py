"""Keep large CPU tensors in the malloc heap instead of fresh mmap()s.

glibc serves every allocation above its mmap threshold (at most 32 MiB by default) with a new
mmap() and returns it with munmap() on free.  An encoder's activations at batch 16 x 256 tokens
(attention scores, FFN outputs) are above that, so every step maps, page-faults and unmaps them
again, and a measurable share of each step is spent in the kernel (measured when this was adopted: commit
72ecc33).  Raising the threshold and the trim threshold lets freed blocks be reused, for
a slightly higher peak RSS.
"""
from __future__ import annotations

import ctypes
import os

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # mallopt parameters (malloc.h)
LIMIT = 1 << 30  # blocks up to 1 GiB come from the heap and stay there for reuse


def keep_large_allocations() -> bool:
    """Apply the thresholds above (glibc only; a no-op elsewhere or when PTV2_MALLOC_TUNING=0).

    Returns whether they were applied.  Affects only allocations made afterwards.
    """
    if os.environ.get("PTV2_MALLOC_TUNING", "1") == "0":
        return False
    try:  # the symbols already loaded into this process, libc's among them (no library search)
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError, TypeError):  # no mallopt (macOS, musl) or no CDLL(None) (Windows)
        return False
    return bool(mallopt(M_MMAP_THRESHOLD, LIMIT)) and bool(mallopt(M_TRIM_THRESHOLD, LIMIT))

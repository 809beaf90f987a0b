"""The malloc tuning of the task CLIs: big freed blocks are reused, not mapped again each time."""
from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

CHILD = """
import resource, sys, torch
from tasks.common.allocator import keep_large_allocations
applied = keep_large_allocations()
for _ in range(10):  # warm: the heap grows to fit (in a few steps)
    torch.ones(16 * 2**20)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    torch.ones(16 * 2**20)  # 64 MiB, freed at once: above glibc's default mmap threshold (<= 32 MiB)
print(applied, (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 20)
"""


def _run(tuning: str) -> tuple[str, float]:
    env = {**os.environ, "PTV2_MALLOC_TUNING": tuning}
    out = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, check=True)
    applied, faults = out.stdout.split()
    return applied, float(faults)


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc only")
def test_large_blocks_are_reused_instead_of_remapped():
    applied, faults = _run("1")
    off, faults_off = _run("0")
    assert (applied, off) == ("True", "False")
    pages = 64 * 2**20 / os.sysconf("SC_PAGE_SIZE")
    assert faults_off > pages / 2  # every 64 MiB tensor touched fresh pages
    assert faults < pages / 4  # mostly the same block, back from the heap




TRIM_CHILD = """
import torch
from tasks.common.allocator import HeapTrimmer, keep_large_allocations, resident_bytes
keep_large_allocations()  # freed blocks stay in the heap, resident: there is something to trim
trim = HeapTrimmer(bound=128 * 2**20)
calls = [trim()]  # the first batch: only takes the resident set as its base
for count in (16, 64, 16):  # 64 MiB (under the bound), 256 MiB (over it), then the first batch after a trim
    blocks = [torch.ones(2**20) for _ in range(count)]
    del blocks
    before = resident_bytes()
    calls.append(trim())
print(*calls, before - resident_bytes() < 2**20)
"""


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc only")
def test_predict_trims_once_the_resident_set_grows_past_the_bound():
    out = subprocess.run([sys.executable, "-c", TRIM_CHILD], env={**os.environ, "PTV2_MALLOC_TUNING": "1"},
                         capture_output=True, text=True, check=True)
    # under the bound the freed blocks stay for reuse; past it the trim hands them back; the batch after a trim
    # re-takes the base (its working set is resident again) instead of trimming once more
    assert out.stdout.split() == ["False", "False", "True", "False", "True"]

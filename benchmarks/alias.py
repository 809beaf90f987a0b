"""The old entry points (``python -m benchmarks.run``, ``.speed``, ...) as thin aliases of the single one."""
from __future__ import annotations

import runpy
import sys


def forward(command: str) -> None:
    """Run ``python -m benchmarks COMMAND ARGS`` with this process's arguments."""
    sys.argv.insert(1, command)
    runpy.run_module("benchmarks", run_name="__main__", alter_sys=True)

"""What machine and code produced a benchmark number (stored next to every result)."""
from __future__ import annotations

import os
import platform
import shlex
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _git(*args: str) -> str | None:
    try:
        return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def _version(module: str) -> str | None:
    try:
        return __import__(module).__version__
    except ImportError:
        return None


def code_version() -> dict:
    """The checkout's commit and whether it has uncommitted changes, read now.

    Read per run, not once per invocation: a checkout can move (git pull) while a long suite
    runs, and each run imports the code on disk when it starts.
    """
    # the stored results themselves change between the invocations that fill a suite: not code
    status = _git("status", "--porcelain", "--", ".", ":(exclude)benchmarks/results")
    # uncommitted changes make the commit alone insufficient to reproduce a number
    return {"git_commit": _git("rev-parse", "HEAD"), "git_dirty": bool(status) if status is not None else None}


def environment() -> dict:
    import torch

    from models.precision import instruction_sets

    gpu = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] if torch.cuda.is_available() else []
    return {
        "cpu_model": _cpu_model(),
        "instruction_sets": instruction_sets(),  # AVX2 only, or AVX-512 with AMX bf16/int8: timings differ
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "gpus": gpu,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch": torch.__version__,
        "transformers": _version("transformers"),
        "peft": _version("peft"),
        # other processes' CPU use skews timings: record the load the run started under
        "load_average": [round(x, 2) for x in os.getloadavg()],
        **code_version(),
        "date_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
        "command": "python -m " + " ".join(shlex.quote(a) for a in [_module_name(), *sys.argv[1:]]),
    }


def _module_name() -> str:
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    name = spec.name if spec is not None else Path(sys.argv[0]).stem
    return name.removesuffix(".__main__")  # python -m benchmarks runs benchmarks.__main__


def machine_label(env: dict) -> str | None:
    """The CPU a run's timings belong to, short enough for a table cell: model and widest vector ISA.

    A suite is often completed over several sessions on different machines, so every result carries this:
    wall-clock is comparable only between runs with the same label.
    """
    if "cpu_model" not in env:
        return None
    isa = set(env.get("instruction_sets") or [])
    widest = "amx" if "amx_bf16" in isa else "avx512" if "avx512f" in isa else "avx2" if "avx2" in isa else None
    return env["cpu_model"] + (f" ({widest})" if widest else "")


def environment_markdown(env: dict) -> str:
    gpus = ", ".join(env["gpus"]) or "none"
    dirty = " (with uncommitted changes)" if env.get("git_dirty") else ""
    load = env.get("load_average")
    end = f", at end {env['load_average_end']}" if "load_average_end" in env else ""
    isa = ", ".join(env.get("instruction_sets") or []) or "not recorded"
    return (f"- machine: {env['cpu_model']} ({isa}), {env['cpu_count']} cores, torch threads {env['torch_threads']}, "
            f"GPU: {gpus}; load average at start {load}{end}\n"
            f"- software: Python {env['python']}, torch {env['torch']}, transformers {env['transformers']}, "
            f"peft {env['peft']}\n"
            f"- code: git {str(env['git_commit'])[:12]}{dirty}; run {env['date_utc']} UTC\n"
            f"- command: `{env['command']}`\n")

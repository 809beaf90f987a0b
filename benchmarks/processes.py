"""Task CLIs as child processes: their environment, their run with the child's own peak RSS, what they left.

Nothing here imports torch: a child's peak RSS comes from ``wait4``, and Linux carries a parent's high-water
mark into its child, so the process that starts the children must stay small.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from . import layout
from .commands import command_line


def module_available(module: str) -> bool:
    """``python -m module`` can start (checked on disk: importing the task here would pull in torch)."""
    base = layout.REPO.joinpath(*module.split("."))
    return (base / "__main__.py").is_file() or base.with_suffix(".py").is_file()


def child_env(local_data: bool, lanes: int = 1) -> dict[str, str]:
    """The children's environment: $PTV2_DATA_DIR defaulting to ../shared/data next to the checkout when it
    exists (``local_data``), and with several lanes side by side one core each (cores / lanes) unless
    OMP_NUM_THREADS is set: else they fight over every core."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    shared = layout.REPO.parent / "shared" / "data"
    if local_data and "PTV2_DATA_DIR" not in env and shared.is_dir():
        env["PTV2_DATA_DIR"] = str(shared)
    if lanes > 1:
        env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // lanes)))
    return env


def run_child(argv: list[str], log_path: Path, timeout: float | None,
              env: dict[str, str]) -> tuple[int | None, float, float]:
    """Run ``python argv`` with output to ``log_path``; (exit code or None on timeout, wall s, peak RSS MiB)."""
    started = time.time()
    with open(log_path, "w") as log:
        log.write("$ " + command_line(argv) + "\n")
        log.flush()
        child = subprocess.Popen([sys.executable, *argv], cwd=layout.REPO, stdout=log, stderr=subprocess.STDOUT,
                                 env=env)
        deadline = None if timeout is None else started + timeout
        while True:  # poll with wait4 so we get the child's own rusage (peak RSS)
            pid, status, usage = os.wait4(child.pid, os.WNOHANG)
            if pid:
                child.returncode = os.waitstatus_to_exitcode(status)
                return child.returncode, time.time() - started, usage.ru_maxrss / 1024
            if deadline is not None and time.time() > deadline:
                child.kill()
                _, _, usage = os.wait4(child.pid, 0)
                return None, time.time() - started, usage.ru_maxrss / 1024
            time.sleep(0.5)


def optimizer_steps(run_dir: Path) -> int | None:
    """Optimizer steps done, from the Trainer's last checkpoint state (for seconds per step)."""
    states = sorted(run_dir.glob("checkpoints/checkpoint-*/trainer_state.json"),
                    key=lambda p: int(p.parent.name.split("-")[-1]))
    if not states:
        return None
    return json.loads(states[-1].read_text()).get("global_step")


def log_tail(run_dir: Path, lines: int = 3) -> str:
    """The last lines of a run's log, on one line (why it failed)."""
    return " | ".join((run_dir / "log.txt").read_text(errors="replace").strip().splitlines()[-lines:])


def probe_environment() -> dict:
    """The machine and software a run uses, probed in a child (this process never imports torch)."""
    code = "import json; from benchmarks.env import environment; print(json.dumps(environment()))"
    done = subprocess.run([sys.executable, "-c", code], cwd=layout.REPO, capture_output=True, text=True)
    return json.loads(done.stdout) if done.returncode == 0 else {"error": done.stderr[-400:]}

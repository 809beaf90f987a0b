"""One run per output folder, with the Trainer's rules: a folder holding another run's files is refused unless
``--overwrite-output-dir`` (the old run's files are removed first) or ``--resume`` (which must match the run it
continues in every setting that shapes the trained tensors).

``run.json`` is written when a run starts: those settings, so that a resumed run is checked before a checkpoint of
another shape is loaded (which used to die deep in torch with a size mismatch).
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
from pathlib import Path
from typing import Any, Iterator

from .errors import UsageError

RUN_FILE = "run.json"
# what a training run writes into its folder (artifacts.py, training.py, the tasks' write_evaluation)
RUN_OUTPUTS = (RUN_FILE, "checkpoints", "metrics.json", "ptv2_config.json", "adapter_config.json",
               "adapter.safetensors", "predictions")


def _main_rank() -> bool:
    """Rank 0 of a torchrun launch (the process group does not exist yet when a run claims its folder)."""
    return int(os.environ.get("RANK", "0")) == 0


def previous_run(output_dir: Path) -> list[str]:
    """The names of the run files ``output_dir`` already holds."""
    return [name for name in RUN_OUTPUTS if (output_dir / name).exists()]


def claim(output_dir: Path, shape: dict[str, Any], resume: bool, overwrite: bool) -> None:
    """Make ``output_dir`` this run's, or refuse in one line (a UsageError: exit code 2).

    Under torchrun rank 0 alone decides (a refusal there ends the launch): the other ranks would otherwise find
    the ``run.json`` rank 0 has just written and refuse their own run's folder."""
    if not _main_rank():
        return
    found = previous_run(output_dir)
    if found and resume:
        check_resumable(output_dir, shape)
    elif found and not overwrite:
        raise UsageError(f"{output_dir} already holds a run ({', '.join(found)}): pass --overwrite-output-dir to "
                         "replace it, --resume to continue it, or another --output-dir")
    elif found:
        for name in found:
            target = output_dir / name
            shutil.rmtree(target) if target.is_dir() else target.unlink()
        print(f"--overwrite-output-dir: removed the previous run's {', '.join(found)} from {output_dir}")
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / RUN_FILE).write_text(json.dumps(shape, indent=2, sort_keys=True) + "\n")


@contextlib.contextmanager
def claimed(output_dir: Path, shape: dict[str, Any], resume: bool, overwrite: bool) -> Iterator[None]:
    """``claim`` the folder for the block (the run's set-up and training); if it fails, a fresh run that wrote
    nothing but its ``run.json`` (no checkpoint: nothing to resume) leaves nothing behind, so the same command,
    its input fixed, is not refused as a second run."""
    claim(output_dir, shape, resume, overwrite)
    try:
        yield
    except BaseException:
        if not resume and _main_rank() and previous_run(output_dir) == [RUN_FILE]:
            (output_dir / RUN_FILE).unlink()
        raise


def check_resumable(output_dir: Path, shape: dict[str, Any]) -> None:
    """``--resume`` continues only the run whose trained tensors have this run's shapes."""
    path = output_dir / RUN_FILE
    if not path.is_file():
        return  # a run from before run.json: nothing recorded to check against
    recorded = json.loads(path.read_text())
    for key in sorted(set(shape) | set(recorded)):
        if recorded.get(key) != shape.get(key):
            raise UsageError(f"--resume: {output_dir} holds a run with {key} {_shown(recorded.get(key))}, this run has "
                             f"{_shown(shape.get(key))}: resume with the same settings, or pass another --output-dir")


def _shown(value: Any) -> str:
    if isinstance(value, dict):  # the differing entries of a method config or task record
        return "{" + ", ".join(f"{k}: {v}" for k, v in sorted(value.items())) + "}"
    return str(value)

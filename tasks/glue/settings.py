"""GLUE's and SuperGLUE's flags and defaults (``GlueFlags``, one per benchmark), importable without torch: the
command line is built from them (and the task table's names) before the family (``family.py``) is imported."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from models.options import option
from tasks.common.settings import FamilyFlags

from .spec import TaskSpec
from .tasks import TASKS

TITLES = {"glue": "GLUE", "superglue": "SuperGLUE"}
DEFAULT_MAX_LENGTH = {"glue": 128, "superglue": 256}  # BoolQ/MultiRC/ReCoRD passages are long


@dataclass
class GlueSettings:
    task: str = option(help="task to train on", selector=True)
    split_dev: float | None = option(None, "for a task without a train split (here: BoolQ, QNLI): train on the first "
                                           "FRACTION of the dev examples in file order, evaluate on the rest "
                                           "(disjoint examples)", metavar="FRACTION")


@dataclass
class GluePredictSettings:
    split: list[str] | None = option(None, "split to predict (repeatable; default: the task's test split(s), e.g. "
                                           "test_matched and test_mismatched for MNLI); dev splits are scored too")
    input: Path | None = option(None, "predict this file (the task's TSV/JSONL format) instead")
    output_dir: Path | None = option(None, "where the submission files go (default: ARTIFACT/predictions)")
    data_dir: str | None = option(None, "dataset folder or data root (as for training)")


class GlueFlags(FamilyFlags):
    # the sentence-task search (study-cls in benchmarks/README.md): pooling as the encoder was trained to (mean
    # for the bundled sentence-transformers encoder) and a lower rate for the prefix methods (the plain prefix
    # default was unstable on a random head, and diverged on STS-B)
    recipe = {"pooling": "auto", "method_lr": {"prefix": 1e-2, "peft-prefix": 1e-2, "prefix-bias": 1e-2,
                                               "prefix-lora": 1e-2, "prefix-adapter": 1e-2}}
    Settings, PredictSettings = GlueSettings, GluePredictSettings

    def __init__(self, benchmark: str) -> None:
        self.benchmark, self.name, self.title = benchmark, benchmark, TITLES.get(benchmark, benchmark)
        self.description = f"Train and evaluate a {self.title} task (official dev-set metrics)."
        self.predict_description = (f"Write {self.title} submission files (test splits by default) with a "
                                    "trained artifact.")
        self.default_max_length = DEFAULT_MAX_LENGTH.get(benchmark, 128)
        self.implementation = f"tasks.glue.family:{benchmark.upper()}_FAMILY"

    @property
    def tasks(self) -> dict[str, TaskSpec]:
        return TASKS[self.benchmark]

    def flag_options(self) -> dict[str, dict]:
        return {"task": {"choices": list(self.tasks)}}


GLUE_FLAGS, SUPERGLUE_FLAGS = GlueFlags("glue"), GlueFlags("superglue")
FLAGS = {"glue": GLUE_FLAGS, "superglue": SUPERGLUE_FLAGS}

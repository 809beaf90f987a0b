"""QA's flags and defaults (``QaFlags``), importable without torch: the command line is built from them before the
family (``family.py``) is imported."""
from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path

from models.options import option
from tasks.common.settings import TOKEN_LEVEL_RECIPE, FamilyFlags

from .data import KNOWN


@dataclass
class Answering:
    """How windows are cut and spans chosen; saved with the artifact, and overridable at predict time."""

    doc_stride: int = option(128, "context tokens shared by consecutive windows of a long context", minimum=0)
    max_answer_length: int = option(30, "longest answer, in tokens", minimum=1)
    n_best: int = option(20, "start and end candidates per window", minimum=1)
    null_threshold: float = option(0.0, "SQuAD 2.0: answer '' when null score - best span score exceeds this")


@dataclass
class QaSettings(Answering):
    dataset: str = option("squad", "squad (1.1) or squad_v2 (2.0)", choices=tuple(KNOWN), selector=True)
    train_file: str | None = option(None, "official SQuAD JSON (plain or .json.gz)", selector=True)
    dev_file: str | None = option(None, "official SQuAD JSON (plain or .json.gz)", selector=True)
    split_by_article: float | None = option(None, "split one file (the dev file, else the train file) by article "
                                                  "title, in file order: train on the first FRACTION of the articles, "
                                                  "evaluate on the rest", metavar="FRACTION")
    skip_bad_answers: bool = option(False, "leave out (and count) questions whose answer is not at answer_start or "
                                           "that lack a required answer, instead of stopping with an error")

    @property
    def answering(self) -> Answering:
        return Answering(**{f.name: getattr(self, f.name) for f in fields(Answering)})


@dataclass
class QaPredictSettings:
    input: Path = option(help="official SQuAD JSON (plain or .json.gz); answers optional")
    output_dir: Path = option(help="where predictions.json goes")
    # the artifact's windows and decoding unless given
    doc_stride: int | None = option(None, "context tokens shared by consecutive windows (default: the artifact's)",
                                    minimum=0)
    max_answer_length: int | None = option(None, "longest answer, in tokens (default: the artifact's)", minimum=1)
    n_best: int | None = option(None, "start and end candidates per window (default: the artifact's)", minimum=1)
    null_threshold: float | None = option(None, "SQuAD 2.0: answer '' when null score - best span score exceeds "
                                                "this (default: the artifact's)")


class QaFlags(FamilyFlags):
    name = "qa"
    title = "QA"
    description = ("Train and evaluate extractive QA: SQuAD 1.1 EM/F1; SQuAD 2.0 also HasAns/NoAns and the best "
                   "null threshold (official evaluation logic).")
    predict_description = ("Answer the questions of a SQuAD JSON file with a trained QA artifact; writes "
                           "predictions.json (and null_odds.json for 2.0).")
    Settings, PredictSettings = QaSettings, QaPredictSettings
    default_epochs, default_max_length = 2, 384
    recipe = TOKEN_LEVEL_RECIPE  # checked on SQuAD: study-qa in benchmarks/README.md
    implementation = "tasks.qa.family:FAMILY"


FLAGS = QaFlags()

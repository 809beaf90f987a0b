"""The contract a task family (NER, QA, GLUE/SuperGLUE, ...) fulfils to plug into the shared pipeline.

A family is split by who calls it:

* ``TaskFamily`` (this module): reading data and files, the record an artifact keeps, and ``bind``;
* ``Task`` (``task.py``): one family bound to one record and tokenizer, the few members the core calls
  (head, encode, collate, decode, score); serving and multi-task are small protocols a family opts into;
* its flags are the fields of its ``Settings`` and ``PredictSettings`` dataclasses (``models/options.py``).

``pipeline.py`` runs every family the same way: train -> evaluate -> artifact, and predict.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, ClassVar, Protocol, runtime_checkable

from .settings import DataSettings
from .task import Task

# the recipe of the token-level families (NER tags, QA spans), chosen on CoNLL-2003 and checked on SQuAD
# (study-ner, study-qa in benchmarks/README.md): the frozen encoder's middle layers hold more for them than its
# last (a learned mix of every layer), and prefix dropout slows the prefix down.  The layer mix learns at the
# method's rate: at fine-tuning's 5e-5 it stays a near-uniform average of every layer (study-ner2004), so
# fine-tuning keeps the last layer.
TOKEN_LEVEL_RECIPE: dict[str, Any] = {"layers": "mix", "prefix_dropout": 0.0, "method_layers": {"finetune": "last"}}


@dataclass
class TaskData:
    """Training examples and the splits to evaluate, in evaluation order."""

    train: list
    train_source: str
    evaluations: dict[str, tuple[list, str]]  # split -> (examples, source)
    headline_split: str  # whose headline metric the run reports (test when there is one)
    notes: list[str] = field(default_factory=list)  # printed before training
    # a split of ``evaluations`` to select checkpoints on, when it is not the reported one (NER: dev);
    # None: selection holds out part of the training data instead
    selection_split: str | None = None
    train_groups: list[str] | None = None  # per training example: a group held out whole (SQuAD: the article)


@dataclass
class Job:
    """One input to predict: examples read from ``source``, written under the name ``name``."""

    name: str
    examples: list
    source: str


class TaskFamily(ABC):
    name: ClassVar[str]  # recorded in artifacts; loading one into another family is refused
    title: ClassVar[str]  # how messages name the family
    description: ClassVar[str]  # the training CLI's --help text
    predict_description: ClassVar[str]
    Settings: ClassVar[type]  # a dataclass: the family's training flags (models/options.py)
    PredictSettings: ClassVar[type]  # a dataclass: the family's predict flags
    default_epochs: ClassVar[float] = 3
    default_max_length: ClassVar[int] = 256
    pre_split_words: ClassVar[bool] = False  # inputs are words (the tokenizer must treat each as mid-text)
    # the family's own defaults for shared flags (argparse dest -> value), chosen by the studies of
    # benchmarks/README.md; method flags among them apply to the methods that have them, and
    # "method_lr" ({method: rate}) replaces a method's default rate (not with --reparam's MLP), and
    # "method_layers" ({method: last|mix}) a method's --layers default
    recipe: ClassVar[dict[str, Any]] = {}

    def selectors(self) -> tuple[str, ...]:
        """Fields of ``Settings`` that pick the dataset (a multi-task run names its datasets itself)."""
        return tuple(f.name for f in fields(self.Settings) if f.metadata.get("selector"))

    def flag_options(self) -> dict[str, dict[str, Any]]:
        """argparse keywords that only the family instance knows (GLUE's task choices), by field."""
        return {}

    @abstractmethod
    def run_name(self, settings: Any) -> str:
        """Default output folder name, without the method (``runs/<run_name>-<method>``)."""

    @abstractmethod
    def load_data(self, settings: Any, data: DataSettings) -> TaskData:
        """Training and evaluation examples; bad input is a DataError naming the file and line."""

    @abstractmethod
    def record(self, settings: Any, data: TaskData, max_length: int) -> dict:
        """What the artifact must remember to predict later (labels, max length, decoding settings)."""

    @abstractmethod
    def bind(self, record: dict, tokenizer, where: Path | None = None) -> Task:
        """The task of ``record`` with ``tokenizer``; a record this family cannot use is a DataError at ``where``,
        a tokenizer it cannot use a UsageError."""

    @abstractmethod
    def predict_jobs(self, settings: Any, task: Task) -> list[Job]:
        """The inputs ``predict`` answers, read (and checked) before the encoder is loaded."""

    @abstractmethod
    def write_predictions(self, settings: Any, task: Task, job: Job, predictions: Any,
                          artifact: Path) -> list[Path]:
        """Write one job's predictions in the family's output format; return the files."""

    def with_overrides(self, settings: Any, record: dict) -> dict:
        """The record ``predict`` uses: the artifact's, with what the predict flags override (QA's decoding)."""
        return record


@runtime_checkable
class MultiTask(Protocol):
    """A family whose datasets can train one shared method together (``python -m tasks.multitask``)."""

    def member(self, settings: Any, name: str) -> Any:
        """Settings of one dataset of a multi-task run named ``name`` (or ``name=FOLDER`` of local files), from
        the run's shared family settings."""

    def member_name(self, settings: Any) -> str:
        """The name a dataset of this family goes by (artifact members, serving)."""

    def prepare_members(self, members: dict[str, TaskData]) -> list[str]:
        """Make the datasets of one run consistent (no evaluation data in another's training); notes to print."""

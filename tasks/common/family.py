"""The contract a task family (NER, QA, GLUE/SuperGLUE, ...) fulfils to plug into the shared pipeline.

A family supplies only what really differs between task types: its flags, where data comes from
and how it is read, features, head, decoding logits to answers, scoring, outputs, and the
settings its artifact must remember (the *record*).  ``pipeline.py`` runs every family the same
way: train -> evaluate -> artifact, and predict.
"""
from __future__ import annotations

import argparse
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from torch import nn

from .settings import DataSettings, ModelSettings


# the recipe of the token-level families (NER tags, QA spans), from the CoNLL-2003 and SQuAD studies of
# benchmarks/README.md: the frozen encoder's middle layers hold more for them than its last (a learned mix of
# every layer), and prefix dropout slows the prefix down.  The layer mix learns at the method's rate: at
# fine-tuning's 5e-5 it stays a near-uniform average of every layer, which cost fine-tuning 3.25 test F1 on
# CoNLL-2004 (77.72 vs 80.97 on the last layer, seed 42), so fine-tuning keeps the last layer.
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
class Encoded:
    """Model inputs for a list of examples, and what decoding them needs."""

    features: list[dict]
    report: str  # one line for the console
    stats: dict = field(default_factory=dict)  # counts recorded in metrics.json
    state: Any = None  # family-specific (NER word ids, QA windows, GLUE feature owners)


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
    default_epochs: ClassVar[float] = 3
    default_max_length: ClassVar[int] = 256
    pre_split_words: ClassVar[bool] = False  # inputs are words (the tokenizer must treat each as mid-text)
    # the family's own defaults for shared flags (argparse dest -> value), chosen by the studies of
    # benchmarks/README.md; method flags among them apply to the methods that have them, and
    # "method_lr" ({mode: rate}) replaces a method's default rate (not with --reparam's MLP), and
    # "method_layers" ({mode: last|mix}) a method's --layers default
    recipe: ClassVar[dict[str, Any]] = {}

    # ------------------------------------------------------------------ command line
    @abstractmethod
    def add_arguments(self, parser: argparse.ArgumentParser, selector: bool = True) -> None:
        """The family's own training flags; ``selector=False`` leaves out the ones that pick the dataset
        (``tasks.multitask`` names its datasets itself)."""

    @abstractmethod
    def settings(self, args: argparse.Namespace) -> Any:
        """The family's typed settings from its own flags."""

    def member_settings(self, args: argparse.Namespace, name: str) -> Any:
        """Settings of one dataset of a multi-task run, named ``name`` (or ``name=FOLDER`` of local files)."""
        raise NotImplementedError(f"{self.title} has no multi-task training")

    def member_name(self, settings: Any) -> str:
        """The name a dataset of this family goes by (artifact members, serving)."""
        return self.run_name(settings)

    def prepare_members(self, members: dict[str, "TaskData"]) -> list[str]:
        """Make the datasets of one multi-task run consistent (no evaluation data in another's training);
        returns notes to print."""
        return []

    @abstractmethod
    def add_predict_arguments(self, parser: argparse.ArgumentParser) -> None:
        """Inputs and outputs of ``predict``."""

    @abstractmethod
    def predict_settings(self, args: argparse.Namespace) -> Any:
        """The family's typed ``predict`` settings."""

    @abstractmethod
    def run_name(self, settings: Any) -> str:
        """Default output folder name, without the method (``runs/<run_name>-<method>``)."""

    # ------------------------------------------------------------------ data and record
    @abstractmethod
    def load_data(self, settings: Any, data: DataSettings) -> TaskData:
        """Training and evaluation examples; bad input is a DataError naming the file and line."""

    @abstractmethod
    def task_record(self, settings: Any, data: TaskData, max_length: int) -> dict:
        """What the artifact must remember to predict later (labels, max length, decoding settings)."""

    def check_record(self, record: dict, where: Path) -> None:
        """Refuse (DataError at ``where``) a record this family cannot use."""

    def predict_record(self, settings: Any, record: dict) -> dict:
        """The record ``predict`` uses: the artifact's, with what the predict flags override."""
        return record

    # ------------------------------------------------------------------ model, features, answers
    @abstractmethod
    def head(self, record: dict, hidden_size: int, model: ModelSettings) -> nn.Module:
        """A fresh head for the record's labels."""

    def check_tokenizer(self, tokenizer, record: dict) -> None:
        """Refuse (UsageError) a tokenizer the family cannot use, before any training."""

    @abstractmethod
    def encode(self, record: dict, examples: list, tokenizer, train: bool) -> Encoded:
        """Features (with labels where the examples have them)."""

    @abstractmethod
    def collator(self, record: dict, tokenizer):
        """Pads a list of features into a batch."""

    @abstractmethod
    def decode(self, record: dict, examples: list, encoded: Encoded, logits) -> Any:
        """Logits (in feature order) -> one prediction per example, in the family's output form."""

    @abstractmethod
    def score(self, record: dict, examples: list, predictions: Any) -> dict[str, Any] | None:
        """Metrics in percent (0-100), or None when the examples carry no gold answers."""

    @abstractmethod
    def headline_metric(self, record: dict) -> str:
        """The key of ``score``'s result that the run's headline reports."""

    @abstractmethod
    def format_scores(self, split: str, scores: dict, examples: list) -> str:
        """Scores for the console."""

    # ------------------------------------------------------------------ outputs
    def after_evaluation(self, record: dict, split: str, examples: list, predictions: Any,
                         output_dir: Path) -> list[Path]:
        """Files written after evaluating a split during training (none by default)."""
        return []

    @abstractmethod
    def predict_jobs(self, settings: Any, record: dict) -> list[Job]:
        """The inputs ``predict`` answers, read (and checked) before the encoder is loaded."""

    @abstractmethod
    def write_predictions(self, settings: Any, record: dict, job: Job, predictions: Any,
                          artifact: Path) -> list[Path]:
        """Write one job's predictions in the family's output format; return the files."""

    # ------------------------------------------------------------------ serving (tasks.serve)
    def parse_request(self, record: dict, payload: dict) -> list:
        """The examples of one request's JSON ``input``; a bad payload is a DataError (HTTP 422)."""
        raise NotImplementedError(f"{self.title} cannot be served")

    def render(self, record: dict, examples: list, predictions: Any) -> dict:
        """One request's answer as JSON, from the predictions of its examples."""
        raise NotImplementedError(f"{self.title} cannot be served")

    def too_long(self, record: dict, encoded: Encoded) -> str | None:
        """Why an input is too long to answer without cutting it (None: it fits)."""
        return None

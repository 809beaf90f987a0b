"""What the core calls on a task: one family bound to one record and tokenizer (``TaskFamily.bind``).

The pipeline, the trainer's dev evaluation, multi-task training and the server need only these members:
``head``, ``encode``, ``collate``, ``decode``, ``score`` (and the ``headline`` metric, ``describe`` for the
console).  A task that can be served also implements ``Servable``; a task that writes files after an
evaluation overrides ``write_evaluation``.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Protocol, TypeVar, runtime_checkable

from .settings import CHUNK_SIZE, ModelSettings

if TYPE_CHECKING:  # the contract names torch's types; importing it does not import torch (--help stays light)
    from torch import nn

State = TypeVar("State")


@dataclass
class Encoded(Generic[State]):
    """Model inputs for a list of examples, and what decoding them needs."""

    features: list[dict]
    report: str  # one line for the console
    stats: dict = field(default_factory=dict)  # counts recorded in metrics.json
    state: State | None = None  # what decoding needs: NER word ids, QA windows, GLUE feature owners


class Task(ABC):
    """One task: a family's behaviour for one record (labels, max length, decoding settings) and tokenizer."""

    headline: str = "f1"  # the key of ``score``'s result that a run's headline reports
    # keys of ``Encoded.stats`` that are settings, not counts: chunks of one input share them (``add_stats``)
    constant_stats: ClassVar[frozenset[str]] = frozenset()
    # examples encoded, run and decoded at a time by predict (unless --chunk-size says) and by evaluation
    chunk_size: ClassVar[int] = CHUNK_SIZE

    def __init__(self, record: dict, tokenizer) -> None:
        self.record, self.tokenizer = record, tokenizer

    @abstractmethod
    def head(self, hidden_size: int, model: ModelSettings) -> nn.Module:
        """A fresh head for the record's labels."""

    @abstractmethod
    def encode(self, examples: list, train: bool) -> Encoded:
        """Features (with labels where the examples have them)."""

    @abstractmethod
    def collate(self, features: list[dict]) -> dict:
        """Pads a list of features into a batch of tensors."""

    @abstractmethod
    def decode(self, examples: list, encoded: Encoded, logits) -> Any:
        """Logits (in feature order) -> one prediction per example, in the family's output form."""

    @abstractmethod
    def score(self, examples: list, predictions: Any) -> dict[str, Any] | None:
        """Metrics in percent (0-100), or None when the examples carry no gold answers."""

    @abstractmethod
    def describe(self, split: str, scores: dict, examples: list) -> str:
        """Scores for the console."""

    def write_evaluation(self, split: str, examples: list, predictions: Any, output_dir: Path) -> list[Path]:
        """Files written after evaluating a split during training (none by default)."""
        return []

    # ------------------------------------------------------------------ chunks (predict and evaluation run inputs
    # a chunk of examples at a time, so logits never exist for a whole input)
    def join(self, parts: list) -> Any:
        """The predictions of consecutive chunks as ``decode`` gives them for all their examples at once."""
        return [p for part in parts for p in part]

    def gold_view(self, examples: list) -> list | None:
        """What ``score`` needs of ``examples`` (their gold answers, not their texts), or None when they carry no
        gold: predict keeps this of every chunk to score a gold input at the end."""
        return list(examples)

    def report_of(self, stats: dict, reports: list[str], examples: int) -> str:
        """The console line of a whole input of ``examples`` from its chunks' summed ``stats`` (``add_stats``) and
        ``reports``; families render the summed stats as one chunk's report would read."""
        return reports[0] if len(reports) == 1 else f"{'; '.join(dict.fromkeys(reports))} ({len(reports)} chunks)"


def add_stats(total: dict, part: dict, constants: frozenset[str] = frozenset()) -> dict:
    """``Encoded.stats`` of two chunks as one: counts add up, ``constants`` (settings such as a limit) are kept."""
    out = dict(total)
    for key, value in part.items():
        if key not in out:
            out[key] = value
        elif isinstance(value, dict):
            out[key] = add_stats(out[key], value, constants)
        elif isinstance(value, (int, float)) and not isinstance(value, bool) and key not in constants:
            out[key] = out[key] + value
    return out


@runtime_checkable
class Servable(Protocol):
    """A task ``tasks.serve`` can answer: JSON in, JSON out, and what one request may cost."""

    def parse_request(self, payload: Any) -> list:
        """The examples of one request's JSON ``input``; a bad payload is a DataError (HTTP 422)."""

    def render(self, examples: list, predictions: Any) -> dict:
        """One request's answer as JSON, from the predictions of its examples."""

    def too_long(self, encoded: Encoded) -> str | None:
        """Why an encoded request is too long to answer without cutting it (None: it fits)."""

"""The contract a task family (NER, QA, GLUE/SuperGLUE, ...) fulfils to plug into the shared pipeline.

A family is split by who calls it:

* ``TaskFamily`` (this module): reading data and files, the record an artifact keeps, and ``bind``;
* ``Task`` (``task.py``): one family bound to one record and tokenizer, the few members the core calls
  (head, encode, collate, decode, score); serving and multi-task are small protocols a family opts into;
* its flags are the fields of its ``Settings`` and ``PredictSettings`` dataclasses (``models/options.py``); they,
  its names and its defaults make its ``FamilyFlags`` (``settings.py``), which ``TaskFamily`` extends: the family's
  own ``settings.py`` holds them without torch, so the command line parses before the family is imported.

``pipeline.py`` runs every family the same way: train -> evaluate -> artifact, and predict.
"""
from __future__ import annotations

import os
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Callable, ClassVar, Iterable, Iterator, Protocol, runtime_checkable

from .settings import DataSettings, FamilyFlags
from .task import Task


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
    """One input to predict: examples read from ``source``, written under the name ``name``.

    ``examples`` may be a list or a ``Stream`` (read afresh from the file on every pass): predict reads, runs and
    writes it one chunk at a time, so a streamed input is never held whole.
    """

    name: str
    examples: Iterable
    source: str


class Stream:
    """Examples a reader yields anew on each iteration (``read()`` returns a fresh iterator over the file).

    ``predict_jobs`` iterates once to check the whole input before the encoder is loaded (``count``); predict then
    iterates again, one chunk at a time.
    """

    def __init__(self, read: Callable[[], Iterator]) -> None:
        self.read = read

    def __iter__(self) -> Iterator:
        return iter(self.read())

    def count(self) -> int:
        """Read the whole input once, keeping nothing: a bad input fails here (a DataError naming file and line)."""
        return sum(1 for _ in self)


class AtomicFile:
    """A file written under a temporary name in its own folder and renamed at ``commit``: a predict that is killed
    or fails leaves no half-written file under the final name (the rename is atomic within one file system)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.partial = self.path.with_name(f".{self.path.name}.partial-{os.getpid()}")
        self.handle: IO[str] = open(self.partial, "w", encoding="utf-8")

    def write(self, text: str) -> None:
        self.handle.write(text)

    def commit(self) -> Path:
        self.handle.close()
        os.replace(self.partial, self.path)
        return self.path

    def discard(self) -> None:
        self.handle.close()
        self.partial.unlink(missing_ok=True)


class PredictionWriter(ABC):
    """Writes one job's predictions chunk by chunk, in input order (``write``), then ``close`` -> the files.

    Files are written under temporary names and renamed by ``close`` (``AtomicFile``); ``discard`` removes them
    (predict calls it when it fails).  A writer carries what a chunk boundary may split (a MultiRC passage, an SRL
    sentence) over to the next chunk, so its output does not depend on the chunk size.
    """

    def __init__(self, *files: AtomicFile) -> None:
        self.files = list(files)

    @abstractmethod
    def write(self, examples: list, predictions: Any) -> None:
        """The next examples of the input and their predictions (``Task.decode``'s form)."""

    def finish(self) -> None:
        """Write what is still held (a group left open by the last chunk); before the files are renamed."""

    def close(self) -> list[Path]:
        self.finish()
        return [f.commit() for f in self.files]

    def discard(self) -> None:
        for f in self.files:
            f.discard()


class TaskFamily(FamilyFlags, ABC):
    """A family: its flags and defaults (``FamilyFlags``: name, title, descriptions, settings dataclasses, recipe),
    and what the pipeline calls on it."""

    pre_split_words: ClassVar[bool] = False  # inputs are words (the tokenizer must treat each as mid-text)

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
    def predict_jobs(self, settings: Any, task: Task, run: Any) -> list[Job]:
        """The inputs ``predict`` answers, checked before the encoder is loaded (a ``Stream`` is read through once,
        keeping nothing); ``run`` is predict's own settings (``PredictSettings``: device, batch and chunk sizes,
        precision), for a family that runs a second model on the way (SRL's predicate tagger)."""

    def writer(self, settings: Any, task: Task, job: Job, artifact: Path) -> PredictionWriter:
        """A writer of one job's predictions in the family's output format (predict writes chunk by chunk).

        The default holds every chunk and calls ``write_predictions`` once at the end: a family that implements
        only that keeps working, without streaming its output."""
        return _WholeWriter(lambda examples, predictions: self.write_predictions(
            settings, task, Job(job.name, examples, job.source), predictions, artifact), task)

    def write_predictions(self, settings: Any, task: Task, job: Job, predictions: Any,
                          artifact: Path) -> list[Path]:
        """One job's predictions written at once (the form before ``writer``; a family overrides one of the two)."""
        raise NotImplementedError(f"{type(self).__name__} implements neither writer nor write_predictions")

    def with_overrides(self, settings: Any, record: dict) -> dict:
        """The record ``predict`` uses: the artifact's, with what the predict flags override (QA's decoding)."""
        return record


class _WholeWriter(PredictionWriter):
    """Every chunk held, then written by one call (``TaskFamily.write_predictions``)."""

    def __init__(self, write: Callable[[list, Any], list[Path]], task: Task) -> None:
        super().__init__()
        self.write_all, self.task = write, task
        self.examples: list = []
        self.parts: list = []

    def write(self, examples: list, predictions: Any) -> None:
        self.examples += examples
        self.parts.append(predictions)

    def close(self) -> list[Path]:
        return self.write_all(self.examples, self.task.join(self.parts))


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

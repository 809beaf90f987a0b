"""What a GLUE-style task is: its row in the task table (``tasks.py``) and the examples read from its files.

Behaviour comes from the task's *kind* (``kinds.py``: classification, regression, choice,
span-pair, options); the few true per-task exceptions are callables on the row.  Nothing
outside ``tasks.py`` tests a task's name.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

BOOL = ("false", "true")  # hub names False/True; local JSON booleans
Record = tuple[int, dict]  # (1-based line, fields) of a parsed file


@dataclass
class Example:
    idx: Any  # id used in submission files
    text_a: str
    text_b: str | None = None
    label: Any = None  # class index | float score | choice index | per-option 0/1 list (MultiRC) | None
    line: int = 0
    choices: list[str] = field(default_factory=list)  # COPA alternatives, MultiRC answers, ReCoRD entities
    spans: tuple[tuple[int, int, int], ...] = ()  # WiC/WSC: (segment 0|1, char start, char end) x 2
    answers: list[str] = field(default_factory=list)  # ReCoRD gold answer texts
    option_ids: list[Any] = field(default_factory=list)  # MultiRC answer idx (submission)
    realigned: bool = False  # WSC: span index off by a word or two in the official data, fixed


@dataclass(frozen=True)
class TaskSpec:
    """One row of the task table.

    Label order follows the hub's ClassLabel names (nyu-mll/glue, aps/super_glue), so a hub
    label id is directly an index into ``labels``; for local files the raw value is looked up
    in ``labels`` (TSV strings as written by the GLUE download script, JSONL values by type).
    """

    name: str
    benchmark: str  # "glue" | "superglue" (or any benchmark a user adds)
    kind: str  # a key of kinds.KINDS
    labels: tuple[str, ...]  # class names; () for regression
    metrics: tuple[str, ...]  # names in metric.METRICS; the first is the headline
    files: dict[str, tuple[str, ...]]  # split -> local file names, the first that exists is used
    hub: tuple[str, str]  # (dataset, config)
    submission: dict[str, str]  # test split -> submission file name
    fields: dict[str, str] = field(default_factory=dict)  # pair reader: role (a, b, label, idx) -> column/key
    header: tuple[str, ...] | None = None  # TSV without header row: its column names (CoLA)
    jsonl_fields: dict[str, str] | None = None  # the pair reader's fields for a JSONL copy (GLUE RTE)
    hub_text: tuple[str, str | None] = ()  # GLUE hub field names of the two segments
    score_range: tuple[float, float] = (0.0, 5.0)  # regression: valid targets (STS-B similarity 0-5)
    # ---- per-task exceptions (None: the kind's / benchmark's default)
    build: Callable | None = None  # (spec, record, path, line, order, require, fields) -> [Example]
    hub_records: Callable | None = None  # (spec, hub rows) -> [Record] in the local files' shape
    option_text: Callable | None = None  # options kind: (example, option) -> second segment
    option_label: Callable | None = None  # options kind: (example, j, option) -> 0/1 or None
    choose: Callable | None = None  # options kind: (example, per-option margins) -> prediction
    gold: Callable | None = None  # example -> the metric's gold value (default: ``label``)
    score: Callable | None = None  # (gold, predicted) -> {metric: fraction} for non-elementwise metrics
    submission_value: Callable | None = None  # prediction -> the value a submission file writes
    submission_rows: Callable | None = None  # (examples, predictions) -> JSON objects (nested formats)

    @property
    def folder(self) -> str:
        """Folder under the data root (GLUE and SuperGLUE share ``glue/<task>``)."""
        return f"glue/{self.name}"

    @property
    def eval_splits(self) -> tuple[str, ...]:
        return tuple(s for s in self.files if s.startswith("dev"))

    @property
    def test_splits(self) -> tuple[str, ...]:
        return tuple(s for s in self.files if s.startswith("test"))

    def gold_of(self, example: Example) -> Any:
        return self.gold(example) if self.gold is not None else example.label

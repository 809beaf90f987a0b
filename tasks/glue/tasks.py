"""The task table: files, fields, label set, kind (-> head), metrics and submission name of every task.

Label order follows the hub's ClassLabel names (nyu-mll/glue, aps/super_glue), so a hub
label id is directly an index into ``labels``; for local files the raw value is looked up
in ``labels`` (TSV strings as written by the GLUE download script, JSONL values by type).

Kinds (see features.py for the exact input format of each):
* ``classification``: one sequence or a pair -> CLS head;
* ``regression``: a pair -> one score (STS-B, MSE);
* ``choice``: COPA, one (premise + connector, alternative) pair per choice, softmax over choices;
* ``span-pair``: WiC/WSC, a sequence (pair) plus two marked spans pooled by the span-pair head;
* ``options``: MultiRC answers / ReCoRD candidate entities, each scored as its own pair by a
  binary CLS head and regrouped per question / query for the metric.
"""
from __future__ import annotations

from dataclasses import dataclass, field

BOOL = ("false", "true")  # hub names False/True; local JSON booleans


@dataclass(frozen=True)
class TaskSpec:
    name: str
    benchmark: str  # "glue" | "superglue"
    kind: str
    labels: tuple[str, ...]  # class names; () for regression
    metrics: tuple[str, ...]  # names in metrics.METRICS; the first is the headline
    # split -> local file names, the first that exists is used (GLUE RTE: TSV or the SuperGLUE JSONL)
    files: dict[str, tuple[str, ...]]
    hub: tuple[str, str]  # (dataset, config)
    submission: dict[str, str]  # test split -> submission file name
    fields: dict[str, str] = field(default_factory=dict)  # generic readers: role -> column/key
    header: tuple[str, ...] | None = None  # TSV without header row: its column names (CoLA)
    jsonl_fields: dict[str, str] | None = None  # GLUE RTE read from the SuperGLUE JSONL copy

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


def _glue_files(*extra_dev: str) -> dict[str, tuple[str, ...]]:
    dev = extra_dev or ("dev",)
    files = {"train": ("train.tsv",)}
    files.update({split: (f"{split}.tsv",) for split in dev})
    files.update({split.replace("dev", "test"): (f"{split.replace('dev', 'test')}.tsv",) for split in dev})
    return files


SUPERGLUE_FILES = {"train": ("train.jsonl",), "dev": ("val.jsonl",), "test": ("test.jsonl",)}
BINARY = ("0", "1")
NLI2 = ("entailment", "not_entailment")


def _glue(name, kind, labels, metrics, fields, submission, files=None, header=None, jsonl_fields=None) -> TaskSpec:
    files = files or _glue_files()
    sub = submission if isinstance(submission, dict) else {"test": submission}
    return TaskSpec(name, "glue", kind, labels, metrics, files, ("nyu-mll/glue", name), sub, fields, header,
                    jsonl_fields)


def _superglue(name, kind, labels, metrics, fields, submission) -> TaskSpec:
    return TaskSpec(name, "superglue", kind, labels, metrics, SUPERGLUE_FILES, ("aps/super_glue", name),
                    {"test": submission}, fields)


GLUE: dict[str, TaskSpec] = {t.name: t for t in [
    _glue("cola", "classification", BINARY, ("matthews", "accuracy"),
          {"a": "sentence", "label": "label", "idx": "index"}, "CoLA.tsv",
          header=("source", "label", "original_label", "sentence")),
    _glue("sst2", "classification", BINARY, ("accuracy",),
          {"a": "sentence", "label": "label", "idx": "index"}, "SST-2.tsv"),
    _glue("mrpc", "classification", BINARY, ("f1", "accuracy"),
          {"a": "#1 String", "b": "#2 String", "label": "Quality", "idx": "index"}, "MRPC.tsv"),
    _glue("stsb", "regression", (), ("pearson", "spearman"),
          {"a": "sentence1", "b": "sentence2", "label": "score", "idx": "index"}, "STS-B.tsv"),
    _glue("qqp", "classification", BINARY, ("f1", "accuracy"),
          {"a": "question1", "b": "question2", "label": "is_duplicate", "idx": "id"}, "QQP.tsv"),
    _glue("mnli", "classification", ("entailment", "neutral", "contradiction"), ("accuracy",),
          {"a": "sentence1", "b": "sentence2", "label": "gold_label", "idx": "index"},
          {"test_matched": "MNLI-m.tsv", "test_mismatched": "MNLI-mm.tsv"},
          files=_glue_files("dev_matched", "dev_mismatched")),
    _glue("qnli", "classification", NLI2, ("accuracy",),
          {"a": "question", "b": "sentence", "label": "label", "idx": "index"}, "QNLI.tsv"),
    # GLUE RTE is the same data as SuperGLUE RTE: the JSONL copy is read when there is no TSV
    _glue("rte", "classification", NLI2, ("accuracy",),
          {"a": "sentence1", "b": "sentence2", "label": "label", "idx": "index"}, "RTE.tsv",
          files={s: (f"{s}.tsv", *SUPERGLUE_FILES[s]) for s in ("train", "dev", "test")},
          jsonl_fields={"a": "premise", "b": "hypothesis", "label": "label", "idx": "idx"}),
    _glue("wnli", "classification", ("0", "1"), ("accuracy",),
          {"a": "sentence1", "b": "sentence2", "label": "label", "idx": "index"}, "WNLI.tsv"),
]}

SUPERGLUE: dict[str, TaskSpec] = {t.name: t for t in [
    _superglue("boolq", "classification", BOOL, ("accuracy",),
               {"a": "question", "b": "passage", "label": "label", "idx": "idx"}, "BoolQ.jsonl"),
    _superglue("cb", "classification", ("entailment", "contradiction", "neutral"), ("accuracy", "macro_f1"),
               {"a": "premise", "b": "hypothesis", "label": "label", "idx": "idx"}, "CB.jsonl"),
    _superglue("copa", "choice", ("choice1", "choice2"), ("accuracy",), {}, "COPA.jsonl"),
    _superglue("rte", "classification", NLI2, ("accuracy",),
               {"a": "premise", "b": "hypothesis", "label": "label", "idx": "idx"}, "RTE.jsonl"),
    _superglue("wic", "span-pair", BOOL, ("accuracy",), {}, "WiC.jsonl"),
    _superglue("wsc", "span-pair", BOOL, ("accuracy",), {}, "WSC.jsonl"),
    _superglue("multirc", "options", BOOL, ("f1a", "em"), {}, "MultiRC.jsonl"),
    _superglue("record", "options", BOOL, ("f1", "em"), {}, "ReCoRD.jsonl"),
]}

BENCHMARKS: dict[str, dict[str, TaskSpec]] = {"glue": GLUE, "superglue": SUPERGLUE}


def get_task(benchmark: str, name: str) -> TaskSpec:
    return BENCHMARKS[benchmark][name]

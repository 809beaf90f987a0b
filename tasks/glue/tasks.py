"""The task table: one row per task (files, fields, labels, kind, metrics, submission name, exceptions).

Adding a GLUE-style task is one row here: ``register_task(glue_task(...))`` or ``superglue_task(...)``,
with the kind (``kinds.py``) giving the head, input shape, decoding and submission value, and a
callable on the row only where the task really differs (reading a structured record, scoring
grouped predictions, a nested submission format).
"""
from __future__ import annotations

from .data import glue_rows, multirc_rows, record_rows, superglue_rows, wsc_rows
from .formats import copa, multirc, multirc_submission, record, wic, wsc
from .metric import multirc_scores, normalize_answer, record_scores
from .spec import BOOL, Example, TaskSpec


def _glue_files(*extra_dev: str) -> dict[str, tuple[str, ...]]:
    dev = extra_dev or ("dev",)
    files = {"train": ("train.tsv",)}
    files.update({split: (f"{split}.tsv",) for split in dev})
    files.update({split.replace("dev", "test"): (f"{split.replace('dev', 'test')}.tsv",) for split in dev})
    return files


SUPERGLUE_FILES = {"train": ("train.jsonl",), "dev": ("val.jsonl",), "test": ("test.jsonl",)}
BINARY = ("0", "1")
NLI2 = ("entailment", "not_entailment")


def glue_task(name, kind, labels, metrics, fields, submission, hub_text, files=None, **row) -> TaskSpec:
    """A GLUE-format task: TSV files, hub dataset ``nyu-mll/glue``, a ``<Task>.tsv`` submission."""
    sub = submission if isinstance(submission, dict) else {"test": submission}
    return TaskSpec(name, "glue", kind, labels, metrics, files or _glue_files(), ("nyu-mll/glue", name), sub, fields,
                    hub_text=hub_text, **{"hub_records": glue_rows, **row})


def superglue_task(name, kind, labels, metrics, fields, submission, **row) -> TaskSpec:
    """A SuperGLUE-format task: JSONL files, hub dataset ``aps/super_glue``, a ``<Task>.jsonl`` submission."""
    return TaskSpec(name, "superglue", kind, labels, metrics, SUPERGLUE_FILES, ("aps/super_glue", name),
                    {"test": submission}, fields, **{"hub_records": superglue_rows, **row})


# ---------------------------------------------------------------- per-task exceptions
def _multirc_label(example: Example, j: int, option: str) -> int | None:
    return None if example.label is None else example.label[j]


def _record_label(example: Example, j: int, option: str) -> int | None:
    gold = {normalize_answer(a) for a in example.answers}
    return int(normalize_answer(option) in gold) if example.answers else None


def _best_candidate(example: Example, margins: list[float]) -> str:
    return example.choices[max(range(len(margins)), key=margins.__getitem__)]


MULTIRC = dict(build=multirc, hub_records=multirc_rows, option_label=_multirc_label,
               choose=lambda example, margins: [int(m > 0) for m in margins],  # each answer true or false
               score=multirc_scores, submission_rows=multirc_submission)
RECORD = dict(build=record, hub_records=record_rows,
              option_text=lambda example, option: example.text_b.replace("@placeholder", option),
              option_label=_record_label, choose=_best_candidate, gold=lambda example: example.answers,
              score=record_scores)

TASKS: dict[str, dict[str, TaskSpec]] = {"glue": {}, "superglue": {}}


def register_task(spec: TaskSpec) -> TaskSpec:
    """Add a row to the table (its benchmark's CLI then accepts ``--task NAME``)."""
    TASKS.setdefault(spec.benchmark, {})[spec.name] = spec
    return spec


for _spec in [
    glue_task("cola", "classification", BINARY, ("matthews", "accuracy"),
              {"a": "sentence", "label": "label", "idx": "index"}, "CoLA.tsv", ("sentence", None),
              header=("source", "label", "original_label", "sentence")),
    glue_task("sst2", "classification", BINARY, ("accuracy",),
              {"a": "sentence", "label": "label", "idx": "index"}, "SST-2.tsv", ("sentence", None)),
    glue_task("mrpc", "classification", BINARY, ("f1", "accuracy"),
              {"a": "#1 String", "b": "#2 String", "label": "Quality", "idx": "index"}, "MRPC.tsv",
              ("sentence1", "sentence2")),
    glue_task("stsb", "regression", (), ("pearson", "spearman"),
              {"a": "sentence1", "b": "sentence2", "label": "score", "idx": "index"}, "STS-B.tsv",
              ("sentence1", "sentence2"), score_range=(0.0, 5.0)),
    glue_task("qqp", "classification", BINARY, ("f1", "accuracy"),
              {"a": "question1", "b": "question2", "label": "is_duplicate", "idx": "id"}, "QQP.tsv",
              ("question1", "question2")),
    glue_task("mnli", "classification", ("entailment", "neutral", "contradiction"), ("accuracy",),
              {"a": "sentence1", "b": "sentence2", "label": "gold_label", "idx": "index"},
              {"test_matched": "MNLI-m.tsv", "test_mismatched": "MNLI-mm.tsv"}, ("premise", "hypothesis"),
              files=_glue_files("dev_matched", "dev_mismatched")),
    glue_task("qnli", "classification", NLI2, ("accuracy",),
              {"a": "question", "b": "sentence", "label": "label", "idx": "index"}, "QNLI.tsv",
              ("question", "sentence")),
    # GLUE RTE is the same data as SuperGLUE RTE: the JSONL copy is read when there is no TSV
    glue_task("rte", "classification", NLI2, ("accuracy",),
              {"a": "sentence1", "b": "sentence2", "label": "label", "idx": "index"}, "RTE.tsv",
              ("sentence1", "sentence2"),
              files={s: (f"{s}.tsv", *SUPERGLUE_FILES[s]) for s in ("train", "dev", "test")},
              jsonl_fields={"a": "premise", "b": "hypothesis", "label": "label", "idx": "idx"}),
    glue_task("wnli", "classification", ("0", "1"), ("accuracy",),
              {"a": "sentence1", "b": "sentence2", "label": "label", "idx": "index"}, "WNLI.tsv",
              ("sentence1", "sentence2")),
    superglue_task("boolq", "classification", BOOL, ("accuracy",),
                   {"a": "question", "b": "passage", "label": "label", "idx": "idx"}, "BoolQ.jsonl"),
    superglue_task("cb", "classification", ("entailment", "contradiction", "neutral"), ("accuracy", "macro_f1"),
                   {"a": "premise", "b": "hypothesis", "label": "label", "idx": "idx"}, "CB.jsonl"),
    superglue_task("copa", "choice", ("choice1", "choice2"), ("accuracy",), {}, "COPA.jsonl", build=copa),
    superglue_task("rte", "classification", NLI2, ("accuracy",),
                   {"a": "premise", "b": "hypothesis", "label": "label", "idx": "idx"}, "RTE.jsonl"),
    superglue_task("wic", "span-pair", BOOL, ("accuracy",), {}, "WiC.jsonl", build=wic),
    superglue_task("wsc", "span-pair", BOOL, ("accuracy",), {}, "WSC.jsonl", build=wsc, hub_records=wsc_rows,
                   submission_value=lambda p: str(bool(p))),  # WSC writes "True"/"False"
    superglue_task("multirc", "options", BOOL, ("f1a", "em"), {}, "MultiRC.jsonl", **MULTIRC),
    superglue_task("record", "options", BOOL, ("f1", "em"), {}, "ReCoRD.jsonl", **RECORD),
]:
    register_task(_spec)

GLUE, SUPERGLUE = TASKS["glue"], TASKS["superglue"]
BENCHMARKS = TASKS


def get_task(benchmark: str, name: str) -> TaskSpec:
    return TASKS[benchmark][name]

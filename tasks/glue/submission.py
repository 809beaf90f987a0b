"""Prediction files in the leaderboard submission formats.

GLUE: ``<Task>.tsv`` (CoLA.tsv, SST-2.tsv, MRPC.tsv, STS-B.tsv, QQP.tsv, MNLI-m.tsv,
MNLI-mm.tsv, QNLI.tsv, RTE.tsv, WNLI.tsv) with a header ``index<TAB>prediction``; the
prediction is the label as the data writes it (0/1, or entailment/... names) and, for STS-B,
the score clipped to [0, 5] with three decimals.

SuperGLUE: ``<Task>.jsonl`` with one ``{"idx": ..., "label": ...}`` per example: BoolQ/WiC
"true"/"false", WSC "True"/"False", CB/RTE label names, COPA 0/1, ReCoRD the answer text
(idx = query idx); MultiRC nests answers per question per passage:
``{"idx": p, "passage": {"questions": [{"idx": q, "answers": [{"idx": a, "label": 0|1}]}]}}``.
"""
from __future__ import annotations

import json
from collections import OrderedDict
from pathlib import Path

from .readers import Example
from .tasks import TaskSpec


def submission_value(spec: TaskSpec, prediction):
    if spec.kind == "regression":
        return f"{min(max(prediction, 0.0), 5.0):.3f}"
    if spec.name == "wsc":
        return str(bool(prediction))
    if spec.kind == "choice":
        return int(prediction)
    return spec.labels[prediction]


def write_submission(spec: TaskSpec, examples: list[Example], predictions: list, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if spec.benchmark == "glue":
        lines = ["index\tprediction"] + [f"{e.idx}\t{submission_value(spec, p)}" for e, p in zip(examples, predictions)]
    elif spec.name == "multirc":
        lines = [json.dumps(row) for row in _multirc(examples, predictions)]
    elif spec.name == "record":
        lines = [json.dumps({"idx": e.idx, "label": p}) for e, p in zip(examples, predictions)]
    else:
        lines = [json.dumps({"idx": e.idx, "label": submission_value(spec, p)}) for e, p in zip(examples, predictions)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _multirc(examples: list[Example], predictions: list) -> list[dict]:
    passages: OrderedDict = OrderedDict()
    for example, labels in zip(examples, predictions):
        questions = passages.setdefault(example.idx["passage"], [])
        answers = [{"idx": a, "label": int(label)} for a, label in zip(example.option_ids, labels)]
        questions.append({"idx": example.idx["question"], "answers": answers})
    return [{"idx": p, "passage": {"questions": qs}} for p, qs in passages.items()]

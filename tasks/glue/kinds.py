"""Behaviour by kind: which head, input shape, decoding and submission value a task of each kind gets.

* ``classification``: one sequence or a pair -> a pooled sequence head;
* ``regression``: a pair -> one score (STS-B, MSE);
* ``choice``: one (context, choice) pair per choice, softmax over the choices (COPA);
* ``span-pair``: a sequence (pair) plus two marked spans pooled by the span-pair head (WiC, WSC);
* ``options``: each option (MultiRC answer, ReCoRD entity) scored as its own pair by a binary
  head, then regrouped per example by the task's ``choose``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from heads import build_head

from . import decode
from .features import Inputs, choices, options, pairs, span_pairs
from .spec import TaskSpec


@dataclass(frozen=True)
class Kind:
    head: str  # registered head name
    encode: Callable  # (spec, examples, tokenizer, tokenizer kwargs, max_length) -> features.Inputs
    decode: Callable  # (spec, examples, encoded, logits) -> predictions
    submission_value: Callable[[TaskSpec, Any], Any]  # default value a submission file writes
    labelled_head: bool = True  # the head has one output per label
    regression: bool = False


def _label_name(spec: TaskSpec, prediction: int) -> str:
    return spec.labels[prediction]


def _clipped(spec: TaskSpec, prediction: float) -> str:
    low, high = spec.score_range
    return f"{min(max(prediction, low), high):.3f}"


KINDS: dict[str, Kind] = {
    "classification": Kind("sequence-classification", pairs, decode.argmax, _label_name),
    "regression": Kind("regression", pairs, decode.scores, _clipped, labelled_head=False, regression=True),
    "choice": Kind("multiple-choice", choices, decode.argmax, lambda spec, p: int(p), labelled_head=False),
    "span-pair": Kind("span-pair-classification", span_pairs, decode.argmax, _label_name),
    "options": Kind("sequence-classification", options, decode.per_option, lambda spec, p: p),
}


def encode(spec: TaskSpec, examples: list, tokenizer, max_length: int) -> Inputs:
    """The model inputs of ``examples``, in the input shape of the task's kind."""
    return KINDS[spec.kind].encode(spec, examples, tokenizer, {"truncation": True, "max_length": max_length},
                                   max_length)


def decode(spec: TaskSpec, examples: list, encoded: Inputs, logits) -> list:
    """One prediction per example, as the task's kind decodes its outputs."""
    return KINDS[spec.kind].decode(spec, examples, encoded, logits)


def make_head(spec: TaskSpec, hidden_size: int, dropout: float, pooling: str = "first"):
    kind = KINDS[spec.kind]
    labels = {"num_labels": len(spec.labels)} if kind.labelled_head else {}
    return build_head(kind.head, hidden_size=hidden_size, dropout=dropout, pooling=pooling, **labels)


def submission_values(spec: TaskSpec, predictions: list) -> list:
    value = spec.submission_value or (lambda p: KINDS[spec.kind].submission_value(spec, p))
    return [value(p) for p in predictions]

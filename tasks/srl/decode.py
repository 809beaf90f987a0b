"""Logits of each word's first sub-token -> one BIO tag per word, the given predicate tagged ``V``.

* ``argmax`` (the reference code's decoding): each word its best tag;
* ``bio``: the best tag sequence that is valid BIO (an ``I-X`` only after ``B-X`` or ``I-X``), by Viterbi over the
  words' log-probabilities.

Either way the predicate's own word is a ``V`` (it is given, not predicted), and a word with no sub-token in the
input is ``O``.
"""
from __future__ import annotations

import numpy as np


def _log_softmax(scores: np.ndarray) -> np.ndarray:
    shifted = scores - scores.max(-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))


def allowed_transitions(labels: list[str]) -> np.ndarray:
    """[previous, next] -> whether ``next`` may follow ``previous`` in BIO (the start state is like ``O``)."""
    allowed = np.ones((len(labels), len(labels)), dtype=bool)
    for j, label in enumerate(labels):
        if label.startswith("I-"):
            allowed[:, j] = [prev in (f"B-{label[2:]}", label) for prev in labels]
    return allowed


def viterbi(scores: np.ndarray, allowed: np.ndarray, start: np.ndarray) -> list[int]:
    """The best path over ``scores`` [words, labels] using only ``allowed`` transitions and ``start`` labels."""
    blocked = np.where(allowed, 0.0, -np.inf)
    best = np.where(start, scores[0], -np.inf)
    back = np.zeros(scores.shape, dtype=np.int64)
    for t in range(1, len(scores)):
        candidates = best[:, None] + blocked
        back[t] = candidates.argmax(0)
        best = candidates.max(0) + scores[t]
    path = [int(best.argmax())]
    for t in range(len(scores) - 1, 0, -1):
        path.append(int(back[t][path[-1]]))
    return path[::-1]


def word_tags(logits: np.ndarray, positions: list[int | None], predicate: int, labels: list[str],
              decoding: str, allowed: np.ndarray | None = None) -> list[str]:
    """One frame's tags from its logits row [positions, labels]."""
    index = {label: i for i, label in enumerate(labels)}
    scores = np.zeros((len(positions), len(labels)))
    outside = np.full(len(labels), -np.inf)
    outside[index["O"]] = 0.0
    for word, position in enumerate(positions):
        scores[word] = _log_softmax(logits[position].astype(np.float64)) if position is not None else outside
    verb = np.full(len(labels), -np.inf)  # the predicate word: only V tags
    for label in ("B-V", "I-V"):
        if label in index:
            verb[index[label]] = 0.0
    scores[predicate] = verb if positions[predicate] is None else scores[predicate] + verb
    if decoding == "argmax":
        tags = [labels[int(i)] for i in scores.argmax(-1)]
    else:
        allowed = allowed_transitions(labels) if allowed is None else allowed
        start = np.array([not label.startswith("I-") for label in labels])
        tags = [labels[i] for i in viterbi(scores, allowed, start)]
    if tags[predicate] == "I-V" and (predicate == 0 or not tags[predicate - 1].endswith("-V")):
        tags[predicate] = "B-V"  # argmax may give I-V without a V before it
    return tags


def to_frame_tags(logits: np.ndarray, positions: list[list[int | None]], predicates: list[int], labels: list[str],
                  decoding: str) -> list[list[str]]:
    allowed = allowed_transitions(labels) if decoding == "bio" else None
    return [word_tags(row, p, predicate, labels, decoding, allowed)
            for row, p, predicate in zip(logits, positions, predicates)]

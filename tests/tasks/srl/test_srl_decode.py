"""Decoding hand-made logits into one tag per word: the given predicate is always a V, ``bio`` (Viterbi) never
emits an I-X after O or after another role and equals argmax when argmax is already valid BIO, and a word with no
sub-token in the input is O."""
from __future__ import annotations

import numpy as np
import pytest

from tasks.srl.decode import allowed_transitions, to_frame_tags, word_tags

LABELS = ["O", "B-A0", "I-A0", "B-A1", "I-A1", "B-V", "I-V"]
LOW = -10.0


def logits(*rows: dict[str, float]) -> np.ndarray:
    """One row per position: the given labels' scores, ``LOW`` for every other label."""
    out = np.full((len(rows), len(LABELS)), LOW)
    for i, row in enumerate(rows):
        for label, value in row.items():
            out[i, LABELS.index(label)] = value
    return out


@pytest.mark.parametrize("decoding", ["argmax", "bio"])
def test_the_predicate_word_is_always_a_v(decoding):
    scores = logits({"B-A0": 5.0}, {"B-A0": 5.0, "O": 1.0}, {"O": 3.0})
    assert word_tags(scores, [0, 1, 2], 1, LABELS, decoding) == ["B-A0", "B-V", "O"]


def test_argmax_turns_a_leading_i_v_into_b_v():
    scores = logits({"O": 5.0}, {"I-V": 5.0, "B-V": 1.0}, {"I-V": 5.0})
    assert word_tags(scores, [0, 1, 2], 1, LABELS, "argmax") == ["O", "B-V", "I-V"]


def test_bio_repairs_an_i_after_o():
    # argmax: O I-A1 B-V.  Paths over words 0-1 (raw logits; each row's softmax constant is shared by all paths):
    # B-A1 I-A1 = -1 + 0 beats O B-A1 = 0 - 3 and O O = 0 - 5
    scores = logits({"O": 0.0, "B-A1": -1.0}, {"I-A1": 0.0, "B-A1": -3.0, "O": -5.0}, {"B-V": 0.0})
    assert word_tags(scores, [0, 1, 2], 2, LABELS, "argmax") == ["O", "I-A1", "B-V"]
    assert word_tags(scores, [0, 1, 2], 2, LABELS, "bio") == ["B-A1", "I-A1", "B-V"]
    # now O B-A1 = 0 - 1 beats O O = 0 - 3 and B-A1 I-A1 = -5 + 0
    scores = logits({"O": 0.0, "B-A1": -5.0}, {"I-A1": 0.0, "B-A1": -1.0, "O": -3.0}, {"B-V": 0.0})
    assert word_tags(scores, [0, 1, 2], 2, LABELS, "bio") == ["O", "B-A1", "B-V"]


def test_bio_repairs_an_i_after_another_role():
    # argmax: B-A0 I-A1.  B-A0 I-A0 = 0 - 1 beats B-A1 I-A1 = -2 + 0 and B-A0 B-A1 = 0 - 4
    scores = logits({"B-A0": 0.0, "B-A1": -2.0, "O": -3.0}, {"I-A1": 0.0, "I-A0": -1.0, "B-A1": -4.0}, {"B-V": 0.0})
    assert word_tags(scores, [0, 1, 2], 2, LABELS, "argmax") == ["B-A0", "I-A1", "B-V"]
    assert word_tags(scores, [0, 1, 2], 2, LABELS, "bio") == ["B-A0", "I-A0", "B-V"]


def test_bio_never_starts_with_an_i():
    scores = logits({"I-A0": 0.0, "B-A0": -1.0}, {"B-V": 0.0})
    assert word_tags(scores, [0, 1], 1, LABELS, "bio") == ["B-A0", "B-V"]


def test_bio_equals_argmax_when_argmax_is_valid():
    scores = logits({"B-A0": 2.0, "O": 1.0}, {"I-A0": 3.0, "B-A1": 2.5}, {"B-V": 0.0, "O": 4.0},
                    {"O": 1.0, "I-A1": 0.5}, {"B-A1": 1.0}, {"I-A1": 2.0, "I-A0": 1.5})
    argmax = word_tags(scores, list(range(6)), 2, LABELS, "argmax")
    assert argmax == ["B-A0", "I-A0", "B-V", "O", "B-A1", "I-A1"]
    assert word_tags(scores, list(range(6)), 2, LABELS, "bio") == argmax


@pytest.mark.parametrize("decoding", ["argmax", "bio"])
def test_a_word_without_a_position_is_o(decoding):
    # positions: word 0 -> row 1, word 1 -> none (row 0 is [CLS], row 2 the predicate)
    scores = logits({"B-A0": 9.0}, {"B-A0": 5.0}, {"B-V": 5.0})
    assert word_tags(scores, [1, None, 2], 2, LABELS, decoding) == ["B-A0", "O", "B-V"]
    # a predicate with no position is still its V
    assert word_tags(scores, [1, None], 1, LABELS, decoding) == ["B-A0", "B-V"]


def test_bio_does_not_continue_through_a_word_without_a_position():
    scores = logits({"B-A1": 0.0, "O": -1.0}, {"I-A1": 0.0, "B-A1": -2.0, "O": -3.0}, {"B-V": 0.0})
    # word 1 has no position (O), so word 2's I-A1 cannot follow: B-A1 (-2) beats O (-3)
    assert word_tags(scores, [0, None, 1, 2], 3, LABELS, "bio") == ["B-A1", "O", "B-A1", "B-V"]


def test_allowed_transitions_and_a_batch():
    allowed = allowed_transitions(LABELS)
    i_a0 = LABELS.index("I-A0")
    assert [LABELS[p] for p in np.flatnonzero(allowed[:, i_a0])] == ["B-A0", "I-A0"]
    assert allowed[:, LABELS.index("B-A1")].all() and allowed[:, 0].all()
    batch = np.stack([logits({"B-A0": 1.0}, {"O": 1.0}), logits({"O": 1.0}, {"B-A1": 1.0})])
    assert to_frame_tags(batch, [[0, 1], [0, 1]], [1, 0], LABELS, "bio") == [["B-A0", "B-V"], ["B-V", "B-A1"]]

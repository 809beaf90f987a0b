"""The SRL metric against hand-worked propositions: V left out, C- continuations scored with their argument as one,
a C-X with no X before it counted as an X, R- roles their own type, perfect propositions, and ``arguments``."""
from __future__ import annotations

import pytest

from tasks.srl.metric import Argument, arguments, srl_scores

# "The prices , traders said , rose": A1 = "The prices" + C-A1 "rose", A0 = "traders"
GOLD = ["B-A1", "I-A1", "O", "B-A0", "B-V", "O", "B-C-A1"]


def prf(scores: dict) -> tuple[float, float, float]:
    return scores["precision"], scores["recall"], scores["f1"]


def test_arguments_join_continuations_and_keep_references_apart():
    tags = ["B-A1", "I-A1", "O", "B-A0", "B-V", "B-C-A1", "I-C-A1", "B-R-A0", "I-A2", "B-C-A1"]
    assert arguments(tags) == [Argument("A1", ((0, 1), (5, 6), (9, 9))), Argument("A0", ((3, 3),)),
                               Argument("V", ((4, 4),)), Argument("R-A0", ((7, 7),)), Argument("A2", ((8, 8),))]


def test_a_continuation_follows_the_latest_argument_of_its_role():
    tags = ["B-A1", "B-V", "B-A1", "B-C-A1"]
    assert arguments(tags) == [Argument("A1", ((0, 0),)), Argument("V", ((1, 1),)), Argument("A1", ((2, 2), (3, 3)))]


def test_a_proposition_with_only_v_scores_no_argument():
    scores = srl_scores([["O", "B-V", "O"]], [["O", "B-V", "O"]])
    assert prf(scores) == (0.0, 0.0, 0.0)
    assert scores["per_role"] == {} and scores["propositions"] == 1
    assert scores["perfect_propositions"] == 100.0


def test_a_wrong_v_changes_only_seqeval():
    gold = ["B-A0", "B-V", "O", "B-A1", "B-A2"]
    wrong_v = ["B-A0", "B-V", "I-V", "B-A1", "B-A2"]
    right, wrong = srl_scores([gold], [gold]), srl_scores([gold], [wrong_v])
    assert prf(right) == prf(wrong) == (100.0, 100.0, 100.0)
    assert right["per_role"] == wrong["per_role"] and "V" not in wrong["per_role"]
    assert wrong["perfect_propositions"] == 100.0
    assert right["seqeval_f1"] == 100.0
    assert wrong["seqeval_f1"] == 75.0  # seqeval counts V: 3 of 4 spans right on both sides


def test_predicting_only_the_head_of_a_continued_argument_is_one_excess_and_one_miss():
    head_only = ["B-A1", "I-A1", "O", "B-A0", "B-V", "O", "O"]
    scores = srl_scores([GOLD], [head_only])
    assert prf(scores) == (50.0, 50.0, 50.0)  # A0 right; A1 one excess + one missed, no half credit
    assert scores["per_role"]["A1"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
    assert scores["per_role"]["A0"] == {"precision": 100.0, "recall": 100.0, "f1": 100.0, "support": 1}
    assert "C-A1" not in scores["per_role"]
    assert scores["perfect_propositions"] == 0.0


def test_both_pieces_right_is_one_correct_argument():
    scores = srl_scores([GOLD], [GOLD])
    assert prf(scores) == (100.0, 100.0, 100.0)
    assert {role: v["support"] for role, v in scores["per_role"].items()} == {"A0": 1, "A1": 1}


def test_a_wrong_continuation_piece_makes_the_whole_argument_wrong():
    wrong_piece = ["B-A1", "I-A1", "O", "B-A0", "B-V", "B-C-A1", "I-C-A1"]
    scores = srl_scores([GOLD], [wrong_piece])
    assert prf(scores) == (50.0, 50.0, 50.0)


def test_a_continuation_with_nothing_before_it_counts_as_the_argument():
    scores = srl_scores([["B-C-A1", "I-C-A1", "B-V"]], [["B-A1", "I-A1", "B-V"]])
    assert prf(scores) == (100.0, 100.0, 100.0)
    assert list(scores["per_role"]) == ["A1"]


def test_references_are_roles_of_their_own():
    gold = ["B-A0", "B-R-A0", "B-V", "B-A1"]
    predicted = ["B-A0", "B-A0", "B-V", "B-A1"]
    scores = srl_scores([gold], [predicted])
    assert set(scores["per_role"]) == {"A0", "R-A0", "A1"}
    assert scores["per_role"]["R-A0"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
    a0 = scores["per_role"]["A0"]
    assert (a0["precision"], a0["recall"], a0["support"]) == (50.0, 100.0, 1)
    assert a0["f1"] == pytest.approx(200 / 3)  # 2 * 50 * 100 / 150
    assert (scores["precision"], scores["recall"]) == pytest.approx((200 / 3, 200 / 3))  # 2 right, 1 excess, 1 missed
    assert srl_scores([gold], [gold])["per_role"]["R-A0"]["f1"] == 100.0


def test_perfect_propositions_and_totals_over_several():
    gold = [GOLD, ["B-A0", "B-V"], ["O", "B-V", "B-A1", "I-A1"], ["B-A2", "B-V"]]
    predicted = [GOLD, ["B-A0", "B-V"], ["O", "B-V", "B-A1", "O"], ["B-A2", "B-V"]]
    scores = srl_scores(gold, predicted)
    assert scores["perfect_propositions"] == 75.0 and scores["propositions"] == 4
    # 5 gold arguments (A1, A0 | A0 | A1 | A2): 4 right, 1 excess (A1 0-0 of the third), 1 missed
    assert prf(scores) == (80.0, 80.0, 80.0)
    assert scores["per_role"]["A1"]["support"] == 2 and scores["per_role"]["A1"]["recall"] == 50.0

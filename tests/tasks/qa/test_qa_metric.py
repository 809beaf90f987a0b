"""The official SQuAD v1.1 / v2.0 evaluation logic (tasks/qa/metric.py): hand-computed values and parity
with an independent implementation (torchmetrics' SQuAD metric, a test-only dependency)."""
from __future__ import annotations

import pytest

from conftest import data_root
from tasks.qa.metric import best_threshold, f1_v1, f1_v2, normalize_answer, squad_v1, squad_v2
from tasks.qa.formats import Answer, Question, read_squad

DEV_V1 = data_root() / "qa" / "squad_v1" / "dev-v1.1.json.gz"


def q(qid: str, *golds: str) -> Question:
    return Question(qid, "?", "", [Answer(g, 0) for g in golds], impossible=not golds)


# v1.1: a fixed prediction set; the expected numbers are worked out by hand in the comments
V1_QUESTIONS = [
    q("q1", "Denver Broncos", "Denver Broncos"),
    q("q2", "Santa Clara, California", "Levi's Stadium"),
    q("q3", "an apple a day"),
    q("q4", "1,234 km"),
    q("q5", "Paris"),
    q("q6", "the"),  # normalizes to "": the official v1.1 script gives EM 1 but F1 0 against "a"
    q("q7", "missing"),  # no prediction: scores 0 but counts in the total
]
V1_PREDICTIONS = {
    "q1": "The Denver Broncos!",  # -> "denver broncos": EM 1, F1 1
    "q2": "Levi's Stadium in Santa Clara",  # "levis stadium in santa clara" vs "levis stadium": P 2/5, R 1 -> F1 4/7
    "q3": "apple day",  # gold normalizes to "apple day": EM 1, F1 1
    "q4": "1234 kilometres",  # "1234 km" vs "1234 kilometres": P 1/2, R 1/2 -> F1 1/2
    "q5": "",  # EM 0, F1 0
    "q6": "a",  # "" == "": EM 1; no common token: F1 0
}


def test_normalization_follows_the_official_script():
    assert normalize_answer("  The  Quick, brown fox!") == "quick brown fox"
    assert normalize_answer("An apple a day") == "apple day"
    assert normalize_answer("theatre another") == "theatre another"  # articles only as whole words
    assert normalize_answer("Levi's (1,234)") == "levis 1234"


def test_v1_hand_computed():
    scores = squad_v1(V1_QUESTIONS, V1_PREDICTIONS)
    assert scores["total"] == 7
    assert scores["exact_match"] == pytest.approx(100 * 3 / 7)
    assert scores["f1"] == pytest.approx(100 * (1 + 4 / 7 + 1 + 1 / 2) / 7)
    assert f1_v1("a", "the") == 0.0 and f1_v2("a", "the") == 1.0  # the one place v1.1 and v2.0 differ


def test_v1_parity_with_torchmetrics():
    torchmetrics = pytest.importorskip("torchmetrics.functional.text")
    # torchmetrics scores F1 of two answers that both normalize to "" as 1 (v2.0 rule), the official
    # v1.1 script as 0: leave that one case (q6) out of the comparison
    questions = [x for x in V1_QUESTIONS if x.qid != "q6"]
    ours = squad_v1(questions, V1_PREDICTIONS)
    theirs = _torchmetrics_squad(torchmetrics, questions, V1_PREDICTIONS)
    assert ours["exact_match"] == pytest.approx(theirs["exact_match"], abs=1e-4)
    assert ours["f1"] == pytest.approx(theirs["f1"], abs=1e-4)


@pytest.mark.skipif(not DEV_V1.is_file(), reason="shared SQuAD 1.1 dev file not present")
def test_v1_parity_with_torchmetrics_on_real_questions():
    torchmetrics = pytest.importorskip("torchmetrics.functional.text")
    questions = read_squad(DEV_V1, False, "eval").questions[:1500]
    predictions = {}
    for i, question in enumerate(questions):  # deterministic near-misses of every kind
        gold = question.answers[i % len(question.answers)].text
        words = question.context[question.answers[0].start:].split()
        predictions[question.qid] = [gold, gold.upper() + ".", " ".join(gold.split()[:-1]) or "x",
                                     " ".join(words[:3]), "the " + gold][i % 5]
    ours = squad_v1(questions, predictions)
    theirs = _torchmetrics_squad(torchmetrics, questions, predictions)
    assert ours["exact_match"] == pytest.approx(theirs["exact_match"], abs=1e-3)
    assert ours["f1"] == pytest.approx(theirs["f1"], abs=1e-3)
    assert 20 < ours["f1"] < 95  # the set really mixes hits and misses


def _torchmetrics_squad(torchmetrics, questions: list[Question], predictions: dict[str, str]) -> dict[str, float]:
    preds = [{"id": k, "prediction_text": v} for k, v in predictions.items()]
    target = [{"id": x.qid, "answers": {"text": [a.text for a in x.answers], "answer_start": [0] * len(x.answers)}}
              for x in questions]
    out = torchmetrics.squad(preds, target)
    return {k: float(v) for k, v in out.items()}


# v2.0: answerable and unanswerable questions, with null odds
V2_QUESTIONS = [q("a", "Denver Broncos"), q("b", "Carolina Panthers"), q("c"), q("d"),
                q("e", "February 7, 2016"), q("f", "the")]
V2_PREDICTIONS = {"a": "Denver Broncos", "b": "Panthers", "c": "", "d": "Santa Clara", "e": "February 7, 2016", "f": ""}
NULL_ODDS = {"a": -3.0, "b": -1.0, "c": 2.0, "d": 3.0, "e": 1.5, "f": 0.5}


def test_v2_hand_computed_with_has_and_no_answer_and_best_threshold():
    scores = squad_v2(V2_QUESTIONS, V2_PREDICTIONS, NULL_ODDS)
    # per question: exact a1 b0 c1 d0 e1 f1 ("the" -> "" gold, "" predicted); f1 a1 b2/3 c1 d0 e1 f1
    assert scores["total"] == 6
    assert scores["exact"] == pytest.approx(100 * 4 / 6)
    assert scores["f1"] == pytest.approx(100 * (4 + 2 / 3) / 6)
    # HasAns = a, b, e, f (f has a gold answer, even if it normalizes to ""); NoAns = c, d
    assert (scores["HasAns_total"], scores["NoAns_total"]) == (4, 2)
    assert scores["HasAns_exact"] == pytest.approx(75.0)
    assert scores["HasAns_f1"] == pytest.approx(100 * (3 + 2 / 3) / 4)
    assert scores["NoAns_exact"] == scores["NoAns_f1"] == pytest.approx(50.0)
    # best threshold: start at 2 (every NoAns right), add by increasing odds a +1, b +0|2/3, f +1, e +1,
    # c +0, d -1: the peak is after e, at odds 1.5, i.e. d (odds 3.0) switched to no-answer
    assert scores["best_exact"] == pytest.approx(100 * 5 / 6) and scores["best_exact_thresh"] == 1.5
    assert scores["best_f1"] == pytest.approx(100 * (5 + 2 / 3) / 6) and scores["best_f1_thresh"] == 1.5


def test_v2_without_null_odds_and_missing_predictions():
    scores = squad_v2(V2_QUESTIONS, V2_PREDICTIONS)
    assert "best_f1" not in scores and scores["exact"] == pytest.approx(100 * 4 / 6)
    with pytest.raises(ValueError, match="no prediction"):
        squad_v2(V2_QUESTIONS, {"a": "x"})


def test_best_threshold_keeps_zero_when_answering_never_helps():
    has = {"x": False, "y": False}
    assert best_threshold({"x": "span", "y": "span"}, {"x": 0.0, "y": 0.0}, {"x": 1.0, "y": 2.0}, has) == (100.0, 0.0)


def test_v2_per_question_scores_match_torchmetrics():
    """torchmetrics' per-answer EM/F1 follow the v2.0 rules; fed the official v2.0 gold lists
    (answers normalizing to "" dropped, none left -> [""]), each question's scores must agree."""
    torchmetrics = pytest.importorskip("torchmetrics.functional.text")
    scores = {}
    for question in V2_QUESTIONS:
        golds = [a.text for a in question.answers if normalize_answer(a.text)] or [""]
        single = squad_v2([question], {question.qid: V2_PREDICTIONS[question.qid]})
        theirs = torchmetrics.squad({"id": question.qid, "prediction_text": V2_PREDICTIONS[question.qid]},
                                    {"id": question.qid, "answers": {"text": golds, "answer_start": [0] * len(golds)}})
        assert single["exact"] == pytest.approx(float(theirs["exact_match"]), abs=1e-4)
        assert single["f1"] == pytest.approx(float(theirs["f1"]), abs=1e-4)
        scores[question.qid] = single["f1"]
    assert scores["b"] == pytest.approx(100 * 2 / 3)

"""The metric functions equal scikit-learn / scipy references (and hand-computed SQuAD-style ReCoRD scores)."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import pearsonr, spearmanr
from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef

from tasks.glue import metric as metrics
from tasks.glue.tasks import GLUE, SUPERGLUE

rng = np.random.default_rng(0)
GOLD = rng.integers(0, 2, 200).tolist()
PRED = [g if rng.random() < 0.7 else 1 - g for g in GOLD]


def test_classification_metrics_equal_sklearn():
    assert metrics.accuracy(GOLD, PRED) == pytest.approx(accuracy_score(GOLD, PRED))
    assert metrics.matthews(GOLD, PRED) == pytest.approx(matthews_corrcoef(GOLD, PRED))
    assert metrics.f1(GOLD, PRED) == pytest.approx(f1_score(GOLD, PRED))
    gold3, pred3 = rng.integers(0, 3, 100).tolist(), rng.integers(0, 3, 100).tolist()
    assert metrics.macro_f1(gold3, pred3, 3) == pytest.approx(f1_score(gold3, pred3, average="macro"))


def test_regression_metrics_equal_scipy():
    gold = rng.uniform(0, 5, 100)
    pred = gold + rng.normal(0, 1, 100)
    assert metrics.pearson(gold, pred) == pytest.approx(pearsonr(gold, pred)[0])
    assert metrics.spearman(gold, pred) == pytest.approx(spearmanr(gold, pred)[0])


def test_task_metric_sets():
    assert list(metrics.score(GLUE["cola"], GOLD, PRED)) == ["matthews", "accuracy"]
    assert list(metrics.score(GLUE["mrpc"], GOLD, PRED)) == ["f1", "accuracy"]
    assert list(metrics.score(GLUE["qqp"], GOLD, PRED)) == ["f1", "accuracy"]
    assert list(metrics.score(GLUE["stsb"], [1.0, 2.0, 4.0], [1.5, 2.0, 3.0])) == ["pearson", "spearman"]
    cb = metrics.score(SUPERGLUE["cb"], [0, 1, 2, 1], [0, 1, 1, 1])
    assert cb["accuracy"] == 0.75 and cb["macro_f1"] == pytest.approx(f1_score([0, 1, 2, 1], [0, 1, 1, 1],
                                                                                labels=[0, 1, 2], average="macro"))


def test_multirc_f1a_over_all_answers_and_em_per_question():
    gold = [[1, 0, 1], [0, 0], [1]]
    pred = [[1, 0, 0], [0, 0], [1]]
    scores = metrics.multirc_scores(gold, pred)
    assert scores["f1a"] == pytest.approx(f1_score([1, 0, 1, 0, 0, 1], [1, 0, 0, 0, 0, 1]))
    assert scores["em"] == pytest.approx(2 / 3)


def test_record_squad_style_f1_and_em():
    assert metrics.normalize_answer("The  U.S. Army!") == "us army"
    # max over gold answers; articles and punctuation ignored
    scores = metrics.record_scores([["Barack Obama", "Obama"], ["New York City"]], ["the Obama", "New York"])
    assert scores["em"] == pytest.approx(0.5)
    assert scores["f1"] == pytest.approx((1.0 + 2 * (1.0 * 2 / 3) / (1.0 + 2 / 3)) / 2)
    assert metrics.token_f1("Paris", "London") == 0.0

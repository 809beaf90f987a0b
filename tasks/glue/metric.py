"""Official GLUE/SuperGLUE metrics, computed with scikit-learn / scipy.

* CoLA: Matthews correlation; STS-B: Pearson and Spearman; MRPC/QQP: F1 (positive class 1)
  and accuracy; CB: accuracy and macro-F1 over the three classes; others: accuracy.
* MultiRC: F1a = binary F1 over all answer options pooled; EM = share of questions whose
  answer options are all predicted right.
* ReCoRD: per query, max over the gold answers of token F1 / exact match after SQuAD
  normalisation (lower case, no punctuation, no articles a/an/the, single spaces); averaged.
All values are fractions in [0, 1].  scikit-learn and scipy are imported when a score is computed: the task table
(``tasks.py``) names these functions, and the command line reads the table before anything heavy is imported.
"""
from __future__ import annotations

from typing import Callable, Sequence

from .spec import TaskSpec

from tasks.common.answer_text import exact_match, normalize_answer, token_f1  # noqa: F401  (ReCoRD: SQuAD's rules)


def accuracy(gold: Sequence[int], predicted: Sequence[int]) -> float:
    from sklearn.metrics import accuracy_score

    return float(accuracy_score(gold, predicted))


def matthews(gold: Sequence[int], predicted: Sequence[int]) -> float:
    from sklearn.metrics import matthews_corrcoef

    return float(matthews_corrcoef(gold, predicted))


def f1(gold: Sequence[int], predicted: Sequence[int]) -> float:
    from sklearn.metrics import f1_score

    return float(f1_score(gold, predicted, pos_label=1, average="binary", zero_division=0))


def macro_f1(gold: Sequence[int], predicted: Sequence[int], num_labels: int) -> float:
    from sklearn.metrics import f1_score

    # every class counts, also one that is never predicted (it then scores 0)
    return float(f1_score(gold, predicted, labels=list(range(num_labels)), average="macro", zero_division=0))


def pearson(gold: Sequence[float], predicted: Sequence[float]) -> float:
    from scipy.stats import pearsonr

    return float(pearsonr(gold, predicted)[0])


def spearman(gold: Sequence[float], predicted: Sequence[float]) -> float:
    from scipy.stats import spearmanr

    return float(spearmanr(gold, predicted)[0])


def multirc_scores(gold: Sequence[Sequence[int]], predicted: Sequence[Sequence[int]]) -> dict[str, float]:
    flat_gold = [g for question in gold for g in question]
    flat_pred = [p for question in predicted for p in question]
    exact = [list(g) == list(p) for g, p in zip(gold, predicted)]
    return {"f1a": f1(flat_gold, flat_pred), "em": sum(exact) / len(exact)}


def record_scores(gold: Sequence[Sequence[str]], predicted: Sequence[str]) -> dict[str, float]:
    f1s = [max(token_f1(p, g) for g in golds) for golds, p in zip(gold, predicted)]
    ems = [max(exact_match(p, g) for g in golds) for golds, p in zip(gold, predicted)]
    return {"f1": sum(f1s) / len(f1s), "em": sum(ems) / len(ems)}


# elementwise metrics: (gold, predicted, spec) -> fraction
METRICS: dict[str, Callable] = {
    "accuracy": lambda g, p, spec: accuracy(g, p), "matthews": lambda g, p, spec: matthews(g, p),
    "f1": lambda g, p, spec: f1(g, p), "pearson": lambda g, p, spec: pearson(g, p),
    "spearman": lambda g, p, spec: spearman(g, p), "macro_f1": lambda g, p, spec: macro_f1(g, p, len(spec.labels)),
}


def score(spec: TaskSpec, gold: list, predicted: list) -> dict[str, float]:
    """The task's official metrics as fractions, in the order of ``spec.metrics`` (the first is the headline)."""
    if spec.score is not None:  # metrics over grouped predictions (MultiRC, ReCoRD)
        return spec.score(gold, predicted)
    return {name: METRICS[name](gold, predicted, spec) for name in spec.metrics}


def format_scores(split: str, scores: dict[str, float], count: int) -> str:
    """Scores in percent for the console."""
    return f"{split} ({count} examples): " + "  ".join(f"{k} {v:.2f}" for k, v in scores.items())

"""Start/end logits of every window -> one answer text per question (and, for SQuAD 2.0, a null score).

Per window, the ``n_best`` highest start and end logits among the *context* tokens are paired;
pairs that are reversed or longer than ``max_answer_length`` tokens are dropped, so a span can
never touch the question, the special tokens or the padding.  The best pair (start + end logit)
over all windows of a question is its answer.  SQuAD 2.0: the null score is start+end at CLS,
taken from the window where it is lowest (the window most sure the answer is there);
``null_odds = null - best span score``, and the answer is "" when it exceeds ``null_threshold``.
"""
from __future__ import annotations

import numpy as np

from .features import Window
from .formats import Question

NO_SPAN_ODDS = 1e6  # null_odds when no valid span exists at all (empty context): surely no answer


def window_best_span(start: np.ndarray, end: np.ndarray, context: np.ndarray, n_best: int,
                     max_answer_length: int) -> tuple[float, int, int] | None:
    """(score, start token, end token) of the best valid span in one window, or None."""
    count = int(context.sum())
    if count == 0:
        return None
    k = min(n_best, count)
    start = np.where(context, start, -np.inf)
    end = np.where(context, end, -np.inf)
    starts = np.argpartition(-start, k - 1)[:k]
    ends = np.argpartition(-end, k - 1)[:k]
    length = ends[None, :] - starts[:, None] + 1
    valid = (length >= 1) & (length <= max_answer_length)
    if not valid.any():
        return None
    scores = np.where(valid, start[starts][:, None] + end[ends][None, :], -np.inf)
    i, j = np.unravel_index(int(np.argmax(scores)), scores.shape)
    return float(scores[i, j]), int(starts[i]), int(ends[j])


def best_answers(questions: list[Question], windows: list[Window], logits: np.ndarray, n_best: int = 20,
                 max_answer_length: int = 30, version2: bool = False,
                 null_threshold: float = 0.0) -> tuple[dict[str, str], dict[str, float]]:
    """({question id: answer text}, {question id: null odds} (v2 only, else empty))."""
    if n_best < 1 or max_answer_length < 1:
        raise ValueError("n_best and max_answer_length must be at least 1")
    best: list[tuple[float, int, int] | None] = [None] * len(questions)
    span_window: list[Window | None] = [None] * len(questions)
    null = np.full(len(questions), np.inf)
    for w, window in enumerate(windows):
        n = len(window.offsets)
        start, end = logits[w, :n, 0].astype(np.float64), logits[w, :n, 1].astype(np.float64)
        q = window.question
        null[q] = min(null[q], start[window.cls] + end[window.cls])
        context = np.fromiter((o is not None for o in window.offsets), dtype=bool, count=n)
        span = window_best_span(start, end, context, n_best, max_answer_length)
        if span is not None and (best[q] is None or span[0] > best[q][0]):
            best[q], span_window[q] = span, window
    predictions, null_odds = {}, {}
    for q, question in enumerate(questions):
        text = ""
        if best[q] is not None:
            _, first, last = best[q]
            offsets = span_window[q].offsets
            text = question.context[offsets[first][0]: offsets[last][1]]
        predictions[question.qid] = text
        if version2:
            odds = NO_SPAN_ODDS if best[q] is None else float(null[q] - best[q][0])
            null_odds[question.qid] = odds
            if odds > null_threshold:
                predictions[question.qid] = ""
    return predictions, null_odds

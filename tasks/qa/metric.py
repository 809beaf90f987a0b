"""The official SQuAD evaluation (v1.1 and v2.0), re-implemented from its specification.

``evaluate.load("squad")`` fetches its script from the hub, which is not reachable everywhere,
so the logic lives here; tests check it against torchmetrics' SQuAD metric (v1.1) and against
hand-computed values (v2.0, including unanswerable questions and the best-threshold search).

* normalization: lower-case, drop punctuation, drop the articles a/an/the, collapse whitespace;
* v1.1: EM and token F1 against each gold answer, maximum over the gold answers;
  a missing prediction scores 0;
* v2.0: gold answers that normalize to "" are ignored, and no gold answer at all means the
  gold is ""; an empty prediction or gold scores F1 1 only if both are empty.  Also HasAns/NoAns
  breakdowns and, given null odds, the best null threshold (``best_exact``/``best_f1``).
"""
from __future__ import annotations

from tasks.common.answer_text import exact_match, normalize_answer, token_f1

from .formats import Question

f1_v1 = token_f1  # SQuAD 1.1's token F1


def f1_v2(prediction: str, gold: str) -> float:
    predicted, expected = normalize_answer(prediction).split(), normalize_answer(gold).split()
    if not predicted or not expected:  # no-answer on either side: right only if both are empty
        return float(predicted == expected)
    return f1_v1(prediction, gold)


def squad_v1(questions: list[Question], predictions: dict[str, str]) -> dict[str, float]:
    """{'exact_match', 'f1'} in percent, over every question (missing predictions score 0)."""
    exact = f1 = 0.0
    for question in questions:
        if question.qid not in predictions:
            continue
        golds = [a.text for a in question.answers]
        exact += max(exact_match(predictions[question.qid], g) for g in golds)
        f1 += max(f1_v1(predictions[question.qid], g) for g in golds)
    total = len(questions)
    return {"exact_match": 100.0 * exact / total, "f1": 100.0 * f1 / total, "total": total}


def squad_v2(questions: list[Question], predictions: dict[str, str],
             null_odds: dict[str, float] | None = None) -> dict[str, float]:
    """exact, f1, total, HasAns_*/NoAns_* and, with ``null_odds``, best_exact(_thresh)/best_f1(_thresh)."""
    missing = [q.qid for q in questions if q.qid not in predictions]
    if missing:  # the official v2.0 script cannot score a file with missing predictions either
        raise ValueError(f"{len(missing)} questions have no prediction (e.g. {missing[0]})")
    exact, f1, has_answer = {}, {}, {}
    for question in questions:
        golds = [a.text for a in question.answers if normalize_answer(a.text)] or [""]
        prediction = predictions[question.qid]
        exact[question.qid] = max(exact_match(prediction, g) for g in golds)
        f1[question.qid] = max(f1_v2(prediction, g) for g in golds)
        has_answer[question.qid] = bool(question.answers)  # official: any gold answer, even one normalizing to ""
    out = _summary(exact, f1, list(exact))
    for name, wanted in (("HasAns", True), ("NoAns", False)):
        ids = [qid for qid, has in has_answer.items() if has == wanted]
        if ids:
            out.update({f"{name}_{k}": v for k, v in _summary(exact, f1, ids).items()})
    if null_odds is not None:
        for name, scores in (("exact", exact), ("f1", f1)):
            best, threshold = best_threshold(predictions, scores, null_odds, has_answer)
            out[f"best_{name}"], out[f"best_{name}_thresh"] = best, threshold
    return out


def _summary(exact: dict[str, float], f1: dict[str, float], ids: list[str]) -> dict[str, float]:
    return {"exact": 100.0 * sum(exact[i] for i in ids) / len(ids), "f1": 100.0 * sum(f1[i] for i in ids) / len(ids),
            "total": len(ids)}


def best_threshold(predictions: dict[str, str], scores: dict[str, float], null_odds: dict[str, float],
                   has_answer: dict[str, bool]) -> tuple[float, float]:
    """Best score (percent) over null thresholds, and the threshold: the official search.

    Start from "every question answered with no-answer" (each unanswerable one scores 1),
    then, in increasing order of null odds, let each question keep its prediction: an
    answerable one gains its score, an unanswerable one loses 1 if it predicted a span.
    """
    score = best = float(sum(not has for has in has_answer.values()))
    threshold = 0.0
    for qid in sorted(null_odds, key=lambda k: null_odds[k]):
        if qid not in scores:
            continue
        if has_answer[qid]:
            score += scores[qid]
        elif predictions[qid]:
            score -= 1
        if score > best:
            best, threshold = score, null_odds[qid]
    return 100.0 * best / len(scores), threshold


def format_scores(split: str, scores: dict[str, float]) -> str:
    if "exact_match" in scores:
        return f"{split}: EM {scores['exact_match']:.2f}  F1 {scores['f1']:.2f}  ({scores['total']:,} questions)"
    lines = [f"{split}: EM {scores['exact']:.2f}  F1 {scores['f1']:.2f}  ({scores['total']:,} questions)"]
    for name in ("HasAns", "NoAns"):
        if f"{name}_total" in scores:
            lines.append(f"  {name}: EM {scores[f'{name}_exact']:.2f}  F1 {scores[f'{name}_f1']:.2f}  "
                         f"({scores[f'{name}_total']:,})")
    if "best_f1" in scores:
        lines.append(f"  best null threshold: EM {scores['best_exact']:.2f} at {scores['best_exact_thresh']:.4f}, "
                     f"F1 {scores['best_f1']:.2f} at {scores['best_f1_thresh']:.4f}")
    return "\n".join(lines)

"""SRL scores: the CoNLL-2005 official rules (``srl-eval.pl``) as the headline, the reference code's seqeval beside.

Official rules, per proposition:
* ``V`` is left out of the score (its span is given, not predicted);
* a ``C-X`` span continues the latest ``X`` argument before it: the argument is all its pieces, right only when
  every piece and the role are right (a ``C-X`` with no ``X`` before it counts as an ``X`` of its own);
* ``R-X`` references are roles of their own;
* a proposition is perfect when none of its arguments is missed or in excess.
Spans come from BIO tags the way conlleval reads them (an ``I-X`` after something else starts an X), the same way
the props writer turns them into brackets, so ``srl-eval.pl`` on the written predictions gives these numbers.

``seqeval_*``: seqeval's span F1 over every tag, ``V`` included and continuations as roles of their own, which is
what the P-tuning v2 code reports; it is not comparable with the official score.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from seqeval.metrics import f1_score, precision_score, recall_score

from tasks.common.brackets import bio_spans

EXCLUDED = frozenset({"V"})
CONTINUATION = "C-"


@dataclass(frozen=True)
class Argument:
    role: str
    pieces: tuple[tuple[int, int], ...]  # (start, end) of each piece, in order


def arguments(tags: list[str]) -> list[Argument]:
    """The arguments of one proposition, continuations joined to the argument they continue."""
    found: list[list] = []  # [role, pieces]
    latest: dict[str, list] = {}
    for span in bio_spans(tags):
        role = span.label
        if role.startswith(CONTINUATION) and role[len(CONTINUATION):] in latest:
            latest[role[len(CONTINUATION):]][1].append((span.start, span.end))
            continue
        role = role[len(CONTINUATION):] if role.startswith(CONTINUATION) else role
        entry = [role, [(span.start, span.end)]]
        found.append(entry)
        latest[role] = entry
    return [Argument(role, tuple(pieces)) for role, pieces in found]


def _counts(gold: list[str], predicted: list[str]) -> tuple[Counter, Counter, Counter]:
    """(right, excess, missed) arguments by role, ``V`` left out."""
    gold_args = Counter(a for a in arguments(gold) if a.role not in EXCLUDED)
    predicted_args = Counter(a for a in arguments(predicted) if a.role not in EXCLUDED)
    right = gold_args & predicted_args
    return _roles(right), _roles(predicted_args - right), _roles(gold_args - right)


def _roles(args: Counter) -> Counter:
    return Counter(a.role for a in args.elements())


def _prf(right: int, excess: int, missed: int) -> dict[str, float]:
    precision = 100 * right / (right + excess) if right + excess else 0.0
    recall = 100 * right / (right + missed) if right + missed else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1}


def srl_scores(gold: list[list[str]], predicted: list[list[str]]) -> dict:
    """Official-rule P/R/F1 (percent), per role, perfect propositions, and the reference code's seqeval numbers."""
    right, excess, missed, perfect = Counter(), Counter(), Counter(), 0
    for gold_tags, predicted_tags in zip(gold, predicted):
        r, e, m = _counts(gold_tags, predicted_tags)
        right.update(r)
        excess.update(e)
        missed.update(m)
        perfect += not e and not m
    total = _prf(sum(right.values()), sum(excess.values()), sum(missed.values()))
    roles = sorted(set(right) | set(excess) | set(missed))
    per_role = {role: {**_prf(right[role], excess[role], missed[role]), "support": right[role] + missed[role]}
                for role in roles}
    return {**total, "perfect_propositions": 100 * perfect / len(gold) if gold else 0.0,
            "propositions": len(gold), "per_role": per_role,
            "seqeval_precision": 100 * float(precision_score(gold, predicted, zero_division=0)),
            "seqeval_recall": 100 * float(recall_score(gold, predicted, zero_division=0)),
            "seqeval_f1": 100 * float(f1_score(gold, predicted, zero_division=0))}


def format_scores(split: str, scores: dict, roles: int = 12) -> str:
    """The official scores, the reference's seqeval F1 beside them, and the ``roles`` most frequent roles."""
    lines = [f"{split}: precision {scores['precision']:.2f}  recall {scores['recall']:.2f}  F1 {scores['f1']:.2f}  "
             f"(official rules; perfect propositions {scores['perfect_propositions']:.2f}% of "
             f"{scores['propositions']:,}; seqeval with V, as the reference code reports: {scores['seqeval_f1']:.2f})",
             f"  {'role':<10}{'P':>8}{'R':>8}{'F1':>8}{'support':>9}"]
    frequent = sorted(scores["per_role"].items(), key=lambda kv: -kv[1]["support"])[:roles]
    for role, v in frequent:
        lines.append(f"  {role:<10}{v['precision']:>8.2f}{v['recall']:>8.2f}{v['f1']:>8.2f}{v['support']:>9}")
    return "\n".join(lines)

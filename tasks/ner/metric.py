"""Entity-level scores with seqeval in its default, conlleval-compatible mode."""
from __future__ import annotations

from seqeval.metrics import classification_report, f1_score, precision_score, recall_score


def entity_scores(gold: list[list[str]], predicted: list[list[str]]) -> dict:
    """Micro P/R/F1 over entities plus per-type P/R/F1/support (CoNLL-2003 convention)."""
    report = classification_report(gold, predicted, output_dict=True, zero_division=0)
    per_type = {
        name: {"precision": v["precision"], "recall": v["recall"], "f1": v["f1-score"], "support": int(v["support"])}
        for name, v in report.items() if not name.endswith(" avg")
    }
    return {
        "precision": precision_score(gold, predicted, zero_division=0),
        "recall": recall_score(gold, predicted, zero_division=0),
        "f1": f1_score(gold, predicted, zero_division=0),
        "per_type": per_type,
    }


def percent(scores: dict) -> dict:
    """The same scores on the 0-100 scale every task reports."""
    scale = lambda v: {k: (100 * x if k != "support" else x) for k, x in v.items()}  # noqa: E731
    return {"precision": 100 * scores["precision"], "recall": 100 * scores["recall"], "f1": 100 * scores["f1"],
            "per_type": {name: scale(v) for name, v in scores["per_type"].items()}}


def format_scores(split: str, scores: dict) -> str:
    """``percent`` scores as the console shows them: micro P/R/F1, then one line per entity type."""
    width = max([8, *(len(name) + 2 for name in scores["per_type"])])  # long type names (creative-work) fit
    lines = [f"{split}: precision {scores['precision']:.2f}  recall {scores['recall']:.2f}  F1 {scores['f1']:.2f}",
             f"  {'type':<{width}}{'P':>8}{'R':>8}{'F1':>8}{'support':>9}"]
    for name, v in sorted(scores["per_type"].items()):
        lines.append(f"  {name:<{width}}{v['precision']:>8.2f}{v['recall']:>8.2f}{v['f1']:>8.2f}{v['support']:>9}")
    return "\n".join(lines)

"""Markdown tables rendered from the JSON store: one module per kind of result (suite, speed, serving,
precision, multitask); ``markdown_table`` is the one table writer they share."""
from __future__ import annotations

import statistics


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows]) + "\n"


def mean_sd(values: list[float]) -> str:
    """``mean ± sd (n=k)`` of ``values`` (sd 0 for one value)."""
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.2f} ± {sd:.2f} (n={len(values)})"

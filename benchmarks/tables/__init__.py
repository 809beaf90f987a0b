"""Markdown tables rendered from the JSON store: one module per kind of result (suite, speed, serving,
precision, multitask); ``markdown_table`` is the one table writer they share."""
from __future__ import annotations

import statistics


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows]) + "\n"


def summary(values: list[float]) -> dict | None:
    """mean, sample standard deviation (None for one value), n; None without values."""
    if not values:
        return None
    return {"mean": statistics.fmean(values), "sd": statistics.stdev(values) if len(values) > 1 else None,
            "n": len(values)}


def shown(s: dict | None) -> str:
    """A ``summary`` as a cell: ``mean ± sd (n=k)``, the mean alone for one value, a dash for none."""
    if s is None:
        return "-"
    return f"{s['mean']:.2f}" if s["sd"] is None else f"{s['mean']:.2f} ± {s['sd']:.2f} (n={s['n']})"


def mean_sd(values: list[float]) -> str:
    """``values`` as one cell (``shown``): every page's mean and spread over seeds."""
    return shown(summary(values))

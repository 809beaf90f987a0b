"""Markdown tables rendered from the JSON store: one module per kind of result (suite, speed, serving,
precision, multitask); ``markdown_table`` is the one table writer they share."""
from __future__ import annotations


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows]) + "\n"

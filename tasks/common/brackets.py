"""Start-end bracket columns (CoNLL-2005 props, CoNLL-2012 gold_conll SRL and named-entity columns) <-> spans.

One tag per word: ``(A0*`` opens an A0 span, ``*)`` closes the open span, ``(V*)`` is a one-word span, ``*`` is
inside or outside; the named-entity column also writes a one-word span as ``(PERSON)``.  Spans never overlap in
a well-formed column but may nest (an inner span wholly inside an outer one): BIO tags can hold only the outer
one, so nested spans are returned apart and counted by the readers, never dropped silently.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from .errors import DataError

_TAG = re.compile(r"^((?:\([^()*]+)*)(\*?)((?:[^()*]*\))*)$")
_OPEN = re.compile(r"\(([^()*]+)")
_CLOSE = re.compile(r"([^()*]*)\)")


@dataclass(frozen=True)
class Span:
    label: str
    start: int  # first word, 0-based
    end: int  # last word, inclusive


def parse_column(tags: list[str], path: str | Path | None = None,
                 first_line: int | None = None) -> tuple[list[Span], list[Span]]:
    """(outermost spans, nested spans) of one column, in order of their start; a malformed or unbalanced tag
    is a DataError naming the line."""
    outer, nested, stack = [], [], []
    for offset, tag in enumerate(tags):
        line = None if first_line is None else first_line + offset
        match = _TAG.match(tag)
        if match is None or not (match.group(2) or match.group(1) or match.group(3)):
            raise DataError(path, line, f"'{tag}' is not a start-end tag ('(A0*', '*', '*)', '(V*)')")
        for label in _OPEN.findall(match.group(1)):
            stack.append((label, offset))
        for closing in _CLOSE.findall(match.group(3)):
            if not stack:
                raise DataError(path, line, f"'{tag}' closes a span that was never opened")
            label, start = stack.pop()
            if closing and closing != label:  # the older '*A0)' style names what it closes
                raise DataError(path, line, f"'{tag}' closes '{closing}' but the open span is '{label}'")
            (nested if stack else outer).append(Span(label, start, offset))
    if stack:
        label, start = stack[-1]
        where = None if first_line is None else first_line + start
        raise DataError(path, where, f"span '({label}*' is never closed in its sentence")
    return sorted(outer, key=lambda s: s.start), sorted(nested, key=lambda s: s.start)


def to_bio(spans: list[Span], length: int) -> list[str]:
    """BIO tags of non-overlapping spans over ``length`` words."""
    tags = ["O"] * length
    for span in spans:
        tags[span.start] = f"B-{span.label}"
        for i in range(span.start + 1, span.end + 1):
            tags[i] = f"I-{span.label}"
    return tags


def bio_spans(tags: list[str]) -> list[Span]:
    """Spans of BIO tags, conlleval's way: an ``I-X`` that does not continue an X span starts one."""
    spans, label, start = [], None, 0
    for i, tag in enumerate([*tags, "O"]):
        prefix, _, kind = tag.partition("-")
        continues = prefix == "I" and kind == label
        if label is not None and not continues:
            spans.append(Span(label, start, i - 1))
            label = None
        if prefix in ("B", "I") and not continues:
            label, start = kind, i
    return spans


def to_brackets(spans: list[Span], length: int) -> list[str]:
    """The start-end column of non-overlapping spans (inverse of ``parse_column`` for un-nested spans)."""
    tags = ["*"] * length
    for span in spans:
        tags[span.start] = f"({span.label}{tags[span.start]}"
        tags[span.end] = f"{tags[span.end]})"
    return tags

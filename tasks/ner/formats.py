"""NER file formats: CoNLL column files (read and written) and raw text, one sentence per line.

CoNLL: token in the first column, tag in the last, blank line between sentences.

Tag schemes: IOB1, IOB2 and IOBES are all accepted and normalised to IOB2 on read
(IOB1 -> IOB2 is lossless: an I- that opens an entity becomes B-; IOBES: S- -> B-,
E- -> I-).  Everything downstream (labels, metric, output) is IOB2.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from tasks.common.errors import DataError
from tasks.common.textfile import read_lines

DOCSTART = "-DOCSTART-"
_FIELDS = re.compile(r"[ \t]+")


@dataclass
class Sentence:
    tokens: list[str]
    tags: list[str]
    line: int  # 1-based line of the first token, for error messages
    extra: list[list[str]] = field(default_factory=list)  # middle columns, kept for output
    gold: bool = True  # False when read for prediction: the tags are placeholders ("O")


def read_fields(path: str | Path) -> list[list[str]]:
    """The file's lines split into fields; only spaces/tabs separate them (``str.split()``
    would also split on NBSP and other Unicode spaces, which can be part of a token)."""
    return [_FIELDS.split(text) if (text := line.strip(" \t")) else [] for line in read_lines(path)]


def read_conll(path: str | Path, with_tags: bool = True) -> list[Sentence]:
    """Parse ``path``; every problem is a DataError naming the file and line."""
    path = Path(path)
    sentences, current, columns = [], None, None
    for number, fields in enumerate(read_fields(path), start=1):
        if not fields:
            current = None
            continue
        if fields[0] == DOCSTART:
            current = None
            continue
        if columns is None:
            columns = len(fields)
            if with_tags and columns < 2:
                raise DataError(path, number, "expected at least two columns (token ... tag)")
        elif len(fields) != columns:
            raise DataError(path, number, f"{len(fields)} columns, but the file's first token line has {columns}")
        if current is None:
            current = Sentence([], [], number, gold=with_tags)
            sentences.append(current)
        current.tokens.append(fields[0])
        current.tags.append(fields[-1] if with_tags else "O")
        current.extra.append(fields[1:-1] if with_tags else fields[1:])
    if not sentences:
        raise DataError(path, None, "empty file: no sentences")
    if with_tags:
        for sentence in sentences:
            sentence.tags = to_iob2(sentence.tags, path, sentence.line)
    return sentences


def to_iob2(tags: list[str], path: Path | None = None, line: int | None = None) -> list[str]:
    """Normalise one sentence's IOB1/IOB2/IOBES tags to IOB2."""
    out: list[str] = []
    for offset, tag in enumerate(tags):
        if tag == "O":
            out.append(tag)
            continue
        prefix, sep, kind = tag.partition("-")
        if not sep or prefix not in ("B", "I", "E", "S") or not kind:
            where = None if line is None else line + offset
            raise DataError(path, where, f"tag '{tag}' is not O or B-/I-/E-/S-TYPE")
        previous = out[-1] if out else "O"
        continues = previous != "O" and previous[2:] == kind
        if prefix == "S" or prefix == "B":
            out.append(f"B-{kind}")
        elif prefix in ("I", "E"):
            out.append(f"I-{kind}" if continues else f"B-{kind}")
    return out


def check_known_tags(sentences: list[Sentence], labels: list[str], path: str | Path) -> None:
    """Tags that the model cannot predict are an error (named with their line), not a silent miss."""
    known = set(labels)
    for sentence in sentences:
        for offset, tag in enumerate(sentence.tags):
            if tag not in known:
                raise DataError(path, sentence.line + offset,
                                f"tag '{tag}' does not occur in the training data (known: {', '.join(labels)})")


def write_conll(path: str | Path, sentences: list[Sentence], predictions: list[list[str]]) -> None:
    """One ``token [middle columns] predicted_tag`` line per token, a blank line after each sentence."""
    with open(path, "w", encoding="utf-8") as handle:
        for sentence, tags in zip(sentences, predictions):
            for token, extra, tag in zip(sentence.tokens, sentence.extra, tags):
                handle.write(" ".join([token, *extra, tag]) + "\n")
            handle.write("\n")


def read_raw_text(path: str | Path) -> list[Sentence]:
    """Whitespace-tokenized text (spaces/tabs), one sentence per line (blank lines skipped)."""
    sentences = [Sentence(words, ["O"] * len(words), n, [[] for _ in words], gold=False)
                 for n, words in enumerate(read_fields(path), 1) if words]
    if not sentences:
        raise DataError(path, None, "empty file: no sentences")
    return sentences

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
from typing import Iterable, Iterator

from tasks.common.errors import DataError
from tasks.common.family import AtomicFile, PredictionWriter
from tasks.common.textfile import iter_lines, read_lines

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
    return list(_fields(read_lines(path)))


def _fields(lines: Iterable[str]) -> Iterator[list[str]]:
    return (_FIELDS.split(text) if (text := line.strip(" \t")) else [] for line in lines)


def read_conll(path: str | Path, with_tags: bool = True) -> list[Sentence]:
    """Parse ``path``; every problem is a DataError naming the file and line."""
    path = Path(path)
    sentences = list(_sentences(path, _fields(read_lines(path)), with_tags))
    if not sentences:
        raise DataError(path, None, "empty file: no sentences")
    if with_tags:
        for sentence in sentences:
            sentence.tags = to_iob2(sentence.tags, path, sentence.line)
    return sentences


def iter_conll(path: str | Path) -> Iterator[Sentence]:
    """``read_conll(path, with_tags=False)`` one sentence at a time, reading the file as it goes (predict).

    Plain text read as CoNLL is refused, not tagged: its first word would be taken for the token and the rest of the
    line for other columns.  With two or more lines of differing word counts the column check says so at once; the
    case it cannot see is a file that is all one "sentence" of several columns with no blank line, so that one is
    refused with a pointer to ``--format text``."""
    path = Path(path)
    sentences = _sentences(path, _fields(iter_lines(path)), with_tags=False)
    first = next(sentences, None)
    if first is None:
        raise DataError(path, None, "empty file: no sentences")
    second = next(sentences, None)
    if second is None and any(first.extra) and not _has_separator(path):
        raise DataError(path, None, "one sentence of several columns and no blank line: if it is plain text (one "
                                    "sentence per line), pass --format text")
    yield first
    if second is not None:
        yield second
        yield from sentences


def _has_separator(path: Path) -> bool:
    """Whether ``path`` has a blank or -DOCSTART- line (between or after sentences)."""
    return any(not fields or fields[0] == DOCSTART for fields in _fields(iter_lines(path)))


def _sentences(path: Path, lines: Iterable[list[str]], with_tags: bool) -> Iterator[Sentence]:
    """Sentences of a CoNLL file's split lines, each yielded once its last token line is read (tags as written)."""
    current, columns = None, None
    for number, fields in enumerate(lines, start=1):
        if not fields or fields[0] == DOCSTART:
            if current is not None:
                yield current
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
        current.tokens.append(fields[0])
        current.tags.append(fields[-1] if with_tags else "O")
        current.extra.append(fields[1:-1] if with_tags else fields[1:])
    if current is not None:
        yield current


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
    writer = ConllWriter(path)
    writer.write(sentences, predictions)
    writer.close()


def conll_lines(sentences: list[Sentence], predictions: list[list[str]]) -> str:
    return "".join("".join(" ".join([token, *extra, tag]) + "\n"
                           for token, extra, tag in zip(sentence.tokens, sentence.extra, tags)) + "\n"
                   for sentence, tags in zip(sentences, predictions))


class ConllWriter(PredictionWriter):
    """``write_conll`` chunk by chunk (sentences are independent: a chunk boundary changes nothing)."""

    def __init__(self, path: str | Path) -> None:
        self.out = AtomicFile(path)
        super().__init__(self.out)

    def write(self, examples: list[Sentence], predictions: list[list[str]]) -> None:
        self.out.write(conll_lines(examples, predictions))


def read_raw_text(path: str | Path) -> list[Sentence]:
    """Whitespace-tokenized text (spaces/tabs), one sentence per line (blank lines skipped)."""
    return list(iter_raw_text(path, read_lines(path)))


def iter_raw_text(path: str | Path, lines: Iterable[str] | None = None) -> Iterator[Sentence]:
    """``read_raw_text`` one sentence at a time (``lines``: the file's, streamed by default)."""
    empty = True
    for n, words in enumerate(_fields(iter_lines(path) if lines is None else lines), 1):
        if words:
            empty = False
            yield Sentence(words, ["O"] * len(words), n, [[] for _ in words], gold=False)
    if empty:
        raise DataError(path, None, "empty file: no sentences")

"""CoNLL-2012 ``*.gold_conll`` files (OntoNotes 5.0 as the shared task lays it out), for SRL and NER.

One word per line: document id, part, word number, word, POS, parse bit, predicate lemma, frameset id, word sense,
speaker, named entities, one start-end column per predicate of the sentence, then coreference.  ``#begin
document`` / ``#end document`` lines frame each document part; a blank line ends a sentence.  Both columns that
matter here use start-end brackets (``brackets.py``).  A folder is read recursively, files in sorted path order,
as the release lays them out (``train/data/english/annotations/...``).
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator

from .brackets import Span, parse_column, to_bio
from .errors import DataError
from .textfile import iter_lines, read_lines

WORD, LEMMA, NER, FIRST_PREDICATE = 3, 6, 10, 11
SUFFIX = "gold_conll"


@dataclass
class OntoSentence:
    words: list[str]
    lemmas: list[str]  # column 7: the predicate lemma, '-' elsewhere
    entities: list[str]  # BIO tags of the named-entity column
    frames: list[tuple[int, list[str]]]  # (predicate word, BIO tags of its arguments, B-V included)
    path: Path
    line: int  # line of the first word
    nested: int = 0  # argument spans nested inside another (BIO keeps the outer one)


LANGUAGES = ("arabic", "chinese", "english")  # the release's data/<language>/ folders


def gold_conll_files(path: str | Path, language: str = "english") -> list[Path]:
    """``path`` itself, or every ``*gold_conll`` file under the folder ``path``, in sorted order; where the folder
    holds the release's several languages (``data/<language>/``), only ``language``'s."""
    path = Path(path)
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise DataError(path, None, "file or folder not found")
    files = sorted(p for p in path.rglob(f"*{SUFFIX}") if p.is_file())
    if any(set(f.relative_to(path).parts) & set(LANGUAGES) for f in files):
        files = [f for f in files if language in f.relative_to(path).parts]
    if not files:
        raise DataError(path, None, f"no *{SUFFIX} files ({language}) under this folder")
    return files


RELEASE_SPLITS = {"train": ("train",), "dev": ("development", "dev", "validation"), "test": ("test",)}


def release_splits(folder: Path) -> dict[str, Path]:
    """{split: folder} of a folder laid out as the CoNLL-2012 release (``train/``, ``development/``, ``test/``
    holding ``*gold_conll`` files at any depth); empty when it has no ``train/``."""
    if not (folder / "train").is_dir():
        return {}
    found = {split: next((folder / n for n in names if (folder / n).is_dir()), None)
             for split, names in RELEASE_SPLITS.items()}
    return {split: path for split, path in found.items() if path is not None}


def is_gold_conll(path: str | Path) -> bool:
    """A folder (read recursively) or a file named like the release's ``*gold_conll`` files."""
    path = Path(path)
    return path.is_dir() or path.name.endswith(SUFFIX)


def read_gold_conll(path: str | Path, language: str = "english") -> list[OntoSentence]:
    """Every sentence of the file or folder ``path``; a malformed line is a DataError naming file and line."""
    return list(iter_gold_conll(path, language, read_lines))


def iter_gold_conll(path: str | Path, language: str = "english",
                    lines: Callable[[Path], Iterable[str]] = iter_lines) -> Iterator[OntoSentence]:
    """``read_gold_conll`` one sentence at a time, file by file (``lines``: how a file is read; streamed by default),
    so a folder the size of the release is never held whole (predict)."""
    empty = True
    for file in gold_conll_files(path, language):
        for sentence in _file_sentences(file, lines(file)):
            empty = False
            yield sentence
    if empty:
        raise DataError(path, None, "no sentences")


def _file_sentences(path: Path, lines: Iterable[str]) -> Iterator[OntoSentence]:
    """Each sentence of one file, yielded once its last line is read."""
    rows: list[list[str]] = []
    first = 0
    for number, line in enumerate(itertools.chain(lines, [""]), start=1):  # a final "" ends the last sentence
        text = line.strip()
        if text.startswith("#"):  # "#begin document (...); part 000" / "#end document"
            text = ""
        if text:
            if not rows:
                first = number
            rows.append(text.split())
        elif rows:
            yield _sentence(rows, path, first)
            rows = []


def _sentence(rows: list[list[str]], path: Path, first: int) -> OntoSentence:
    width = len(rows[0])
    if width < FIRST_PREDICATE + 1:
        raise DataError(path, first, f"{width} columns; a gold_conll line has at least {FIRST_PREDICATE + 1} "
                                     "(id, part, number, word, POS, parse, lemma, frameset, sense, speaker, "
                                     "entities, ..., coreference)")
    for offset, row in enumerate(rows):
        if len(row) != width:
            raise DataError(path, first + offset, f"{len(row)} columns, but the sentence's first line has {width}")
    columns = list(zip(*rows))
    words = list(columns[WORD])
    entities, _ = parse_column(list(columns[NER]), path, first)
    sentence = OntoSentence(words, list(columns[LEMMA]), to_bio(entities, len(words)), [], path, first)
    for column in columns[FIRST_PREDICATE:-1]:
        outer, nested = parse_column(list(column), path, first)
        sentence.frames.append((_predicate(outer + nested, path, first), to_bio(outer, len(words))))
        sentence.nested += len(nested)
    return sentence


def _predicate(spans: list[Span], path: Path, first: int) -> int:
    """The predicate word of a column: where its V span starts."""
    starts = [s.start for s in spans if s.label == "V"]
    if not starts:
        raise DataError(path, first, "a predicate column of this sentence has no V span")
    return min(starts)

"""Tiny SRL fixtures shared by the tests of this folder: a CoNLL-2005 words/props pair worked out by hand and a
CoNLL-2012 ``*gold_conll`` document, written into a test's tmp_path (imported by module name, like conftest)."""
from __future__ import annotations

import gzip
from pathlib import Path

# CoNLL-2005: 4 sentences.  Line numbers (1-based, shared by both files): sentence 1 is lines 1-7, 2 is 9-10,
# 3 is 12-18, 4 is 20-23.
#   1. "left": A0 + an R-A0 reference; "said": an A0 spanning 4 words, a 2-word A1
#   2. no predicate: only the target column
#   3. a discontinuous A1: "(A1*" ... "*)", then "(C-A1*)" after the predicate
#   4. a two-word V: "(V*" "*)"
SENTENCES = [
    ("The man who left said it rained".split(),
     [("-", "(A0*", "(A0*"), ("-", "*)", "*"), ("-", "(R-A0*)", "*"), ("leave", "(V*)", "*)"),
      ("say", "*", "(V*)"), ("-", "*", "(A1*"), ("-", "*", "*)")]),
    ("Nice day".split(), [("-",), ("-",)]),
    ("The prices , traders said , rose".split(),
     [("-", "(A1*"), ("-", "*)"), ("-", "*"), ("-", "(A0*)"), ("say", "(V*)"), ("-", "*"), ("-", "(C-A1*)")]),
    ("He gave up hope".split(), [("-", "(A0*)"), ("give_up", "(V*"), ("-", "*)"), ("-", "(A1*)")]),
]
FIRST_LINES = [1, 9, 12, 20]
# (sentence index, predicate, BIO tags) of every frame, in file order
FRAMES = [
    (0, 3, ["B-A0", "I-A0", "B-R-A0", "B-V", "O", "O", "O"]),
    (0, 4, ["B-A0", "I-A0", "I-A0", "I-A0", "B-V", "B-A1", "I-A1"]),
    (2, 4, ["B-A1", "I-A1", "O", "B-A0", "B-V", "O", "B-C-A1"]),
    (3, 1, ["B-A0", "B-V", "I-V", "B-A1"]),
]


def words_text(sentences=SENTENCES, separator: str = "") -> str:
    return "".join("\n".join(words) + f"\n{separator}\n" for words, _ in sentences)


def props_text(sentences=SENTENCES) -> str:
    return "".join("\n".join(" ".join(row) for row in rows) + "\n\n" for _, rows in sentences)


def write(path: Path, text: str) -> Path:
    """``text`` as UTF-8, gzip-compressed when the name ends in ``.gz``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = text.encode("utf-8")
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)
    return path


def write_conll05(folder: Path, split: str = "train", suffix: str = "", separator: str = "",
                  words: str | None = None, props: str | None = None) -> Path:
    """``<split>.words[suffix]`` beside ``<split>.props[suffix]`` (the fixture unless given); the words file."""
    write(folder / f"{split}.props{suffix}", props_text() if props is None else props)
    return write(folder / f"{split}.words{suffix}", words_text(separator=separator) if words is None else words)


# CoNLL-2012 gold_conll: 11 columns, one per predicate, then coreference.
DOC = "nw/wsj/00/wsj_0001"


def onto_line(number: int, word: str, lemma: str, entity: str, *predicates: str) -> str:
    frameset = "01" if lemma != "-" else "-"
    return f"{DOC}  0  {number}  {word}  XX  *  {lemma}  {frameset}  -  -  {entity}  {'  '.join(predicates)}  -"


ONTO_SENTENCES = [
    # John Smith (PERSON) visited Paris (GPE): one predicate
    [onto_line(0, "John", "-", "(PERSON*", "(ARG0*"), onto_line(1, "Smith", "-", "*)", "*)"),
     onto_line(2, "visited", "visit", "*", "(V*)"), onto_line(3, "Paris", "-", "(GPE)", "(ARG1*)"),
     onto_line(4, ".", "-", "*", "*")],
    # no predicate: no predicate column, only coreference after the entities
    [onto_line(0, "Hello", "-", "*"), onto_line(1, "there", "-", "*")],
    # two predicates, an R- role; "said" keeps its lemma "say"
    [onto_line(0, "She", "-", "*", "(ARG0*)", "*"), onto_line(1, "said", "say", "*", "(V*)", "*"),
     onto_line(2, "who", "-", "*", "(ARG1*", "(R-ARG0*)"), onto_line(3, "left", "leave", "*", "*)", "(V*)")],
]
ONTO_FRAMES = [  # (sentence, predicate, tags)
    (0, 2, ["B-ARG0", "I-ARG0", "B-V", "B-ARG1", "O"]),
    (2, 1, ["B-ARG0", "B-V", "B-ARG1", "I-ARG1"]),
    (2, 3, ["O", "O", "B-R-ARG0", "B-V"]),
]
ONTO_ENTITIES = [["B-PERSON", "I-PERSON", "O", "B-GPE", "O"], ["O", "O"], ["O", "O", "O", "O"]]


def gold_conll_text(sentences=ONTO_SENTENCES) -> str:
    """One document: ``#begin document``, the sentences (a blank line after each), ``#end document``."""
    body = "".join("\n".join(lines) + "\n\n" for lines in sentences)
    return f"#begin document ({DOC}); part 000\n{body}#end document\n"

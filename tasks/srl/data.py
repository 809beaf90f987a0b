"""SRL data: named datasets (local folders, the hub) and user files in any of the formats ``formats.py`` reads.

A local folder is either the CoNLL-2005 release's layout (``<split>.words[.gz]`` beside ``<split>.props[.gz]``;
splits ``train``, ``dev``, and every ``test*``) or the CoNLL-2012 layout (``train/``, ``development/``, ``test/``
holding ``*gold_conll`` files at any depth).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from tasks.common.conll2012 import is_gold_conll, release_splits
from tasks.common.data_root import data_roots, sources_hint
from tasks.common.errors import DataError, UsageError
from tasks.common.textfile import iter_lines, read_lines

from .formats import (Frame, Lines, Parsed, Read, SrlSentence, collect, iter_conll05, iter_frames_jsonl, iter_oneline,
                      iter_ontonotes, iter_text, props_path)

FORMATS = ("auto", "conll05", "gold_conll", "oneline", "jsonl", "text")
HUB_SPLITS = {"train": "train", "dev": "validation", "test": "test"}


@dataclass(frozen=True)
class Named:
    folder: str  # under the data root
    hub: tuple[str, str] | None = None  # (dataset, config) on the Hugging Face hub


KNOWN = {
    "conll2005": Named("srl/conll2005"),  # the release's words/props files (LDC text: no hub copy)
    # the CoNLL-2012 shared task split of OntoNotes 5.0 (english_v4), and the later v12 release
    "conll2012": Named("srl/conll2012", ("ontonotes/conll2012_ontonotesv5", "english_v4")),
    "ontonotes": Named("srl/ontonotes", ("ontonotes/conll2012_ontonotesv5", "english_v12")),
}


def format_of(path: str | Path) -> str:
    """The format of an input file (or folder) by its name, else by its first line."""
    path = Path(path)
    if is_gold_conll(path):
        return "gold_conll"
    if path.suffix in (".jsonl", ".json"):
        return "jsonl"
    if ".words" in path.name:
        return "conll05"
    lines = iter_lines(path)
    try:  # the first non-blank line only: the file is not read further
        first = next((line for line in lines if line.strip()), "")
    finally:
        lines.close()
    return "oneline" if "|||" in first else "text"


def read_file(path: str | Path, fmt: str = "auto", gold: bool = True) -> Read:
    """Sentences and frames of one file in ``fmt`` (``auto``: ``format_of``), read whole (training, evaluation)."""
    return collect(iter_file(path, fmt, gold, read_lines)).mark_gaps()


def iter_file(path: str | Path, fmt: str = "auto", gold: bool = True, lines: Lines = iter_lines) -> Iterator[Parsed]:
    """``read_file`` a sentence at a time (predict), each numbered by its place in the file (``SrlSentence.index``);
    the file is read as the sentences are asked for, and its errors come when their line is reached."""
    parsed = _read(path, format_of(path) if fmt == "auto" else fmt, gold, lines)
    for index, item in enumerate(parsed):
        item.sentence.index = index
        yield item


def _read(path: str | Path, fmt: str, gold: bool, lines: Lines) -> Iterator[Parsed]:
    if fmt == "conll05":
        props = props_path(path)
        if gold and props is None:
            raise DataError(path, None, "no props file beside this words file (x.words[.gz] -> x.props[.gz])")
        return iter_conll05(path, props, gold, lines)
    if fmt == "gold_conll":
        return iter_ontonotes(path, gold, lines)
    if fmt == "oneline":
        return iter_oneline(path, gold, lines)
    if fmt == "jsonl":
        return iter_frames_jsonl(path, gold, lines)
    if gold:
        raise DataError(path, None, "plain text has no gold frames to train or evaluate on")
    return iter_text(path, lines)


def _local_conll05(folder: Path) -> dict[str, Path]:
    """{split: words file} of a CoNLL-2005 folder (each with its props file beside it)."""
    found = {}
    for words in sorted(folder.glob("*.words*")):
        split = words.name.split(".words")[0]
        if props_path(words) is not None and words.name.endswith((".words", ".words.gz")):
            found[split] = words
    return found if "train" in found else {}


def local_splits(data_dir: str | None, relative: str) -> dict[str, Path]:
    """{split: file or folder} of the first local folder (``--data-dir`` or the data root) holding the dataset."""
    for root in data_roots(data_dir):
        for folder in (root, root / relative):
            found = _local_conll05(folder) or release_splits(folder) if folder.is_dir() else {}
            if found:
                return found
    return {}


def load_splits(dataset: str, data_dir: str | None, files: dict[str, list[str]]) -> dict[str, Read]:
    """{split: what was read}: explicit files first, else the named dataset (a local folder, then the hub)."""
    if any(files.values()):
        if not files.get("train"):
            raise UsageError("--train-file is required when giving files (the roles come from it)")
        return {_split_name(split, path, len(paths)): read_file(path)
                for split, paths in files.items() for path in paths}
    if dataset not in KNOWN:
        raise UsageError(f"unknown dataset '{dataset}'; known: {', '.join(KNOWN)}, or pass --train-file/--dev-file/"
                         "--test-file")
    named = KNOWN[dataset]
    local = local_splits(data_dir, named.folder)
    if local:
        return {split: read_file(path) for split, path in local.items()}
    reason = ""
    if named.hub is not None:
        try:
            from datasets import load_dataset

            return from_hub(load_dataset(*named.hub), "/".join(named.hub))
        except DataError:
            raise
        except Exception as err:  # offline, renamed, ...: fall through to the one error naming every way
            reason = f" (hub: {str(err).splitlines()[0][:160] if str(err) else type(err).__name__})"
    hub_name = None if named.hub is None else " ".join(named.hub)
    raise DataError(None, None, f"dataset '{dataset}' not found: {sources_hint(named.folder, hub_name)}{reason}")


def _split_name(split: str, path: str, count: int) -> str:
    """``test`` for one test file; with several, each by its file name (``test.wsj``, ``test.brown``)."""
    if count == 1:
        return split
    name = Path(path).name.split(".words")[0].removesuffix(".jsonl").removesuffix(".txt")
    return name if name.startswith(split) else f"{split}.{name}"


def from_hub(data, name: str) -> dict[str, Read]:
    """Frames of the hub's ``conll2012_ontonotesv5``: documents of ``sentences`` with ``words`` and ``srl_frames``
    (``verb``, ``frames`` as BIO tags); the predicate is the frame's ``B-V``."""
    out = {}
    for split, hub_split in HUB_SPLITS.items():
        read, source = Read([], []), f"hub:{name}/{hub_split}"
        for document, row in enumerate(data[hub_split]):
            for sentence in row["sentences"]:
                _hub_sentence(read, sentence, source, f"document {document}")
        if not read.frames:
            raise DataError(source, None, "no predicates")
        out[split] = read.mark_gaps()
    return out


def _hub_sentence(read: Read, row: dict, source: str, where: str) -> None:
    words = list(row["words"])
    targets = ["-"] * len(words)
    sentence = SrlSentence(words, targets, source, 0)
    read.sentences.append(sentence)
    for frame in row["srl_frames"]:
        tags = list(frame["frames"])
        if "B-V" not in tags or len(tags) != len(words):
            raise DataError(source, where, f"frame of '{frame['verb']}' has no B-V or not one tag per word")
        predicate = tags.index("B-V")
        targets[predicate] = frame["verb"]
        read.frames.append(Frame(sentence, predicate, tags))


def splits_in_order(splits: dict[str, Read]) -> tuple[list[str], str]:
    """The evaluation splits (dev, then the tests) and the headline: ``test`` or ``test.wsj`` (CoNLL-2005's in-domain
    test) when there, else the first test split, else dev."""
    tests = [s for s in splits if s.startswith("test")]
    order = [s for s in ("dev",) if s in splits] + tests
    headline = next((s for s in ("test", "test.wsj") if s in splits), tests[0] if tests else "dev")
    return order, headline

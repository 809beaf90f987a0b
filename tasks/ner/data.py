"""Named NER datasets (local CoNLL files or the hub) and user-supplied CoNLL files."""
from __future__ import annotations

from dataclasses import dataclass

from pathlib import Path

from tasks.common.conll2012 import is_gold_conll, read_gold_conll, release_splits
from tasks.common.data_root import data_roots, find_local, sources_hint
from tasks.common.errors import DataError, UsageError

from .formats import Sentence, read_conll, to_iob2

SPLITS = ("train", "dev", "test")


@dataclass(frozen=True)
class Named:
    folder: str  # under the data root: train.txt, dev.txt, test.txt in CoNLL format
    hub: tuple[str, str | None] | None = None  # (dataset, config) on the Hugging Face hub, if it has a copy


KNOWN = {
    "conll2003": Named("ner/conll2003", ("eriktks/conll2003", None)),
    "conll2004": Named("ner/conll2004"),
    # OntoNotes 5.0 (CoNLL-2012 split; LDC-licensed): the English v12 release, 18 entity types
    "ontonotes": Named("ner/ontonotes", ("ontonotes/conll2012_ontonotesv5", "english_v12")),
}
HUB_SPLITS = {"train": "train", "dev": "validation", "test": "test"}


def load_splits(dataset: str, data_dir: str | None,
                files: dict[str, str | None]) -> dict[str, tuple[list[Sentence], str]]:
    """{split: (sentences, source)} from explicit files, else the named dataset (local, then hub)."""
    if any(files.values()):
        if not files.get("train"):
            raise UsageError("--train-file is required when giving CoNLL files (labels come from it)")
        return {split: (read_file(path), str(path)) for split, path in files.items() if path}
    if dataset not in KNOWN:
        raise UsageError(f"unknown dataset '{dataset}'; known: {', '.join(KNOWN)}, "
                         "or pass --train-file/--dev-file/--test-file")
    named = KNOWN[dataset]
    folder = find_local(data_dir, named.folder, tuple(f"{s}.txt" for s in SPLITS))
    if folder is not None:
        return {split: (read_conll(folder / f"{split}.txt"), str(folder / f"{split}.txt")) for split in SPLITS}
    release = _conll2012_release(data_dir, named.folder)
    if release is not None:
        return {split: (read_file(path), str(path)) for split, path in release.items()}
    reason = ""
    if named.hub is not None:
        try:
            from datasets import load_dataset

            return from_hub(load_dataset(*(part for part in named.hub if part)), "/".join(filter(None, named.hub)))
        except DataError:
            raise
        except Exception as err:  # offline, renamed, ...: fall through to the one error naming every way
            reason = f" (hub: {str(err).splitlines()[0][:160] if str(err) else type(err).__name__})"
    hub_name = None if named.hub is None else " ".join(filter(None, named.hub))
    raise DataError(None, None, f"dataset '{dataset}' not found: {sources_hint(named.folder, hub_name)}{reason}")


def read_file(path: str | Path) -> list[Sentence]:
    """A CoNLL column file, or CoNLL-2012 ``*gold_conll`` files (a file, or a folder read recursively), whose
    named-entity column (``(PERSON*`` ... ``*)``) becomes IOB2 tags: OntoNotes NER from the files users hold."""
    if not is_gold_conll(path):
        return read_conll(path)
    sentences = [Sentence(s.words, s.entities, s.line, [[] for _ in s.words]) for s in read_gold_conll(path)]
    return sentences


def _conll2012_release(data_dir: str | None, relative: str) -> dict[str, Path] | None:
    """{split: folder} where ``--data-dir`` (or the data root's folder) is laid out as the CoNLL-2012 release."""
    for root in data_roots(data_dir):
        for folder in (root, root / relative):
            found = release_splits(folder)
            if found:
                return found
    return None


def from_hub(data, name: str) -> dict[str, tuple[list[Sentence], str]]:
    """Sentences of a hub NER dataset, tag names read from its features (never hard-coded).

    Two row shapes: one sentence per row (``tokens`` + ``ner_tags``, as CoNLL-2003), or one document
    per row with a list of ``sentences`` holding ``words`` + ``named_entities`` (CoNLL-2012 / OntoNotes).
    """
    out = {}
    for split, hub_split in HUB_SPLITS.items():
        rows, features = data[hub_split], data[hub_split].features
        source = f"hub:{name}/{hub_split}"
        if "sentences" in features:
            names = _class_names(_inner(features["sentences"])["named_entities"])
            pairs = [(s["words"], s["named_entities"]) for row in rows for s in row["sentences"]]
        else:
            names = _class_names(features["ner_tags"])
            pairs = [(row["tokens"], row["ner_tags"]) for row in rows]
        sentences = [Sentence(list(words), to_iob2([names[t] for t in tags], source, i + 1), i + 1,
                              [[] for _ in words])
                     for i, (words, tags) in enumerate(pairs)
                     if words and words[0] != "-DOCSTART-"]  # document separators are not sentences
        if not sentences:
            raise DataError(source, None, "no sentences")
        out[split] = (sentences, source)
    return out


def _inner(feature):
    """The element feature of a sequence feature (``List``/``Sequence``, or the legacy ``[feature]`` list)."""
    return feature[0] if isinstance(feature, list) else feature.feature


def _class_names(feature) -> list[str]:
    return list(_inner(feature).names)


def label_list(train: list[Sentence]) -> list[str]:
    """'O' first, then B-/I- pairs grouped by entity type, alphabetically."""
    tags = {tag for sentence in train for tag in sentence.tags} - {"O"}
    return ["O"] + sorted(tags, key=lambda t: (t[2:], t[0]))

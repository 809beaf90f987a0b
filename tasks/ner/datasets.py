"""Named NER datasets (local CoNLL files or the hub) and user-supplied CoNLL files."""
from __future__ import annotations

from pathlib import Path

from tasks.common.data_root import find_local, sources_hint
from tasks.common.errors import DataError, UsageError

from .conll import Sentence, read_conll, read_fields, to_iob2

SPLITS = ("train", "dev", "test")
# name -> (folder under the data root, hub dataset or None)
KNOWN = {
    "conll2003": ("ner/conll2003", "eriktks/conll2003"),
    "conll2004": ("ner/conll2004", None),
}
HUB_SPLITS = {"train": "train", "dev": "validation", "test": "test"}


def load_splits(dataset: str, data_dir: str | None,
                files: dict[str, str | None]) -> dict[str, tuple[list[Sentence], str]]:
    """{split: (sentences, source)} from explicit files, else the named dataset (local, then hub)."""
    if any(files.values()):
        if not files.get("train"):
            raise UsageError("--train-file is required when giving CoNLL files (labels come from it)")
        return {split: (read_conll(path), str(path)) for split, path in files.items() if path}
    if dataset not in KNOWN:
        raise UsageError(f"unknown dataset '{dataset}'; known: {', '.join(KNOWN)}, "
                         "or pass --train-file/--dev-file/--test-file")
    relative, hub = KNOWN[dataset]
    folder = find_local(data_dir, relative, tuple(f"{s}.txt" for s in SPLITS))
    if folder is not None:
        return {split: (read_conll(folder / f"{split}.txt"), str(folder / f"{split}.txt")) for split in SPLITS}
    if hub is not None:
        try:
            return _from_hub(hub)
        except Exception as err:  # offline, renamed, ...: fall through to the one error naming every way
            reason = f" (hub: {str(err).splitlines()[0][:160]})"
    else:
        reason = ""
    raise DataError(None, None, f"dataset '{dataset}' not found: {sources_hint(relative, hub)}{reason}")


def _from_hub(name: str) -> dict[str, tuple[list[Sentence], str]]:
    from datasets import load_dataset

    data = load_dataset(name)
    out = {}
    for split, hub_split in HUB_SPLITS.items():
        names = data[hub_split].features["ner_tags"].feature.names
        sentences = [
            Sentence(list(row["tokens"]), to_iob2([names[t] for t in row["ner_tags"]]), i + 1,
                     [[] for _ in row["tokens"]])
            for i, row in enumerate(data[hub_split])
            if row["tokens"] and row["tokens"][0] != "-DOCSTART-"  # document separators are not sentences
        ]
        out[split] = (sentences, f"hub:{name}/{hub_split}")
    return out


def label_list(train: list[Sentence]) -> list[str]:
    """'O' first, then B-/I- pairs grouped by entity type, alphabetically."""
    tags = {tag for sentence in train for tag in sentence.tags} - {"O"}
    return ["O"] + sorted(tags, key=lambda t: (t[2:], t[0]))


def read_raw_text(path: str | Path) -> list[Sentence]:
    """Whitespace-tokenized text (spaces/tabs), one sentence per line (blank lines skipped)."""
    sentences = [Sentence(words, ["O"] * len(words), n, [[] for _ in words])
                 for n, words in enumerate(read_fields(path), 1) if words]
    if not sentences:
        raise DataError(path, None, "empty file: no sentences")
    return sentences

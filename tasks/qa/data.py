"""Where the SQuAD data comes from: --train-file/--dev-file, the data root, else the hub.

Only the dev files are on this machine, so a run either splits one file by article
(``--split-by-article``) or gets a training file from the user or the hub; a dev file
alone is refused with a message saying so instead of silently training on the evaluation set.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from tasks.common.data_root import data_roots, sources_hint
from tasks.common.errors import DataError, UsageError

from .formats import SquadData, from_hub_rows, read_squad, split_by_article

# name -> (folder under the data root, file tag as in dev-v1.1.json, hub dataset)
KNOWN = {
    "squad": ("qa/squad_v1", "v1.1", "squad"),
    "squad_v2": ("qa/squad_v2", "v2.0", "squad_v2"),
}
Loader = Callable[[], SquadData]


def is_v2(dataset: str) -> bool:
    return dataset == "squad_v2"


def local_files(data_dir: str | None, relative: str, tag: str) -> dict[str, Path]:
    """{'train'/'dev': path} from the first root (or root/relative) holding any official file."""
    for root in data_roots(data_dir):
        for folder in (root, root / relative):
            found = {}
            for split in ("train", "dev"):
                for name in (f"{split}-{tag}.json", f"{split}-{tag}.json.gz"):
                    if (folder / name).is_file():
                        found[split] = folder / name
                        break
            if found:
                return found
    return {}


def load_train_eval(dataset: str, data_dir: str | None, train_file: str | None, dev_file: str | None,
                    split: float | None, skip_bad_answers: bool = False) -> tuple[SquadData, SquadData, list[str]]:
    """(train, eval, notes to print).  With ``split`` one file is cut into disjoint article halves."""
    if dataset not in KNOWN:
        raise UsageError(f"unknown dataset '{dataset}'; known: {', '.join(KNOWN)}")
    version2 = is_v2(dataset)
    relative, tag, hub = KNOWN[dataset]
    read = lambda path: (lambda: read_squad(path, version2, "train", skip_bad_answers))  # noqa: E731
    if train_file or dev_file:
        loaders = {s: read(p) for s, p in (("train", train_file), ("dev", dev_file)) if p}
    elif local := local_files(data_dir, relative, tag):
        loaders = {s: read(p) for s, p in local.items()}
    else:
        loaders = _hub_loaders(dataset, relative, tag, hub, version2, skip_bad_answers)
    notes = []
    if split is not None:
        which = "dev" if "dev" in loaders else "train"
        data = loaders[which]()
        if which == "dev" and "train" in loaders:
            notes.append("--split-by-article: splitting the dev file; the train file is not used")
        train, evaluation = split_by_article(data, split)
        return train, evaluation, notes
    if "train" not in loaders:
        raise UsageError("only an evaluation (dev) file was found, no SQuAD training file: pass "
                         "--split-by-article 0.5 to train on the first half of its articles and evaluate on "
                         "the rest, or give --train-file")
    if "dev" not in loaders:
        raise UsageError("no evaluation file: pass --dev-file, or --split-by-article 0.5 to split the train file")
    return loaders["train"](), loaders["dev"](), notes


def _hub_loaders(dataset: str, relative: str, tag: str, hub: str, version2: bool,
                 skip_bad_answers: bool) -> dict[str, Loader]:
    try:
        from datasets import load_dataset

        data = load_dataset(hub)
    except Exception as err:  # offline, renamed, ...: one error naming every way to get the data
        reason = str(err).splitlines()[0][:160] if str(err) else type(err).__name__
        raise DataError(None, None, f"dataset '{dataset}' not found: pass --train-file/--dev-file (official SQuAD "
                                    f"JSON, plain or .json.gz), or {sources_hint(relative, hub)}; local files are "
                                    f"named train-{tag}.json[.gz] / dev-{tag}.json[.gz] (hub: {reason})") from None
    return {split: (lambda s=hub_split: from_hub_rows(data[s], f"hub:{hub}/{s}", version2, "train", skip_bad_answers))
            for split, hub_split in (("train", "train"), ("dev", "validation")) if hub_split in data}

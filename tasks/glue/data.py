"""Where each split comes from: local files under the data root (``glue/<task>/``), else the hub.

Local split files (first match wins): GLUE ``train.tsv``, ``dev.tsv`` (MNLI:
``dev_matched.tsv``/``dev_mismatched.tsv``), ``test*.tsv``; SuperGLUE ``train.jsonl``,
``val.jsonl``, ``test.jsonl``.  When a needed split is missing locally the whole task is
loaded from the hub (``nyu-mll/glue`` / ``aps/super_glue``); if that fails too, the error
names the split that is unavailable locally.  Hub rows are turned back into the local
record shape so that one set of readers (and checks) serves both sources.
"""
from __future__ import annotations

from collections import OrderedDict
from pathlib import Path
from typing import Iterator

from tasks.common.data_root import data_roots, sources_hint
from tasks.common.errors import DataError

from .formats import build_examples, iter_examples, iter_jsonl, iter_tsv, read_jsonl, read_tsv
from .spec import BOOL, Example, Record, TaskSpec

Splits = dict[str, tuple[list[Example], str]]  # split -> (examples, source)


def find_folder(spec: TaskSpec, data_dir: str | None) -> Path | None:
    """The first of ``root`` / ``root/glue/<task>`` holding any file of the task."""
    names = {name for files in spec.files.values() for name in files}
    for root in data_roots(data_dir):
        for folder in (root, root / spec.folder):
            if any((folder / name).is_file() for name in names):
                return folder
    return None


def split_file(spec: TaskSpec, folder: Path, split: str) -> Path | None:
    return next((folder / name for name in spec.files[split] if (folder / name).is_file()), None)


def read_file(spec: TaskSpec, path: str | Path, require_labels: bool) -> list[Example]:
    """Examples from one local file of the task (format from the extension: .jsonl or TSV)."""
    path = Path(path)
    if path.suffix == ".jsonl":
        return build_examples(spec, read_jsonl(path), path, require_labels, spec.jsonl_fields)
    return build_examples(spec, read_tsv(path, spec.header), path, require_labels)


def iter_file(spec: TaskSpec, path: str | Path, require_labels: bool) -> Iterator[Example]:
    """``read_file`` one example at a time, reading the file as it goes (predict)."""
    path = Path(path)
    if path.suffix == ".jsonl":
        return iter_examples(spec, iter_jsonl(path), path, require_labels, spec.jsonl_fields)
    return iter_examples(spec, iter_tsv(path, spec.header), path, require_labels)


def local_files(spec: TaskSpec, data_dir: str | None, splits: tuple[str, ...]) -> dict[str, Path] | None:
    """{split: local file} when every split is there (``load_splits`` reads those), else None (the hub)."""
    folder = find_folder(spec, data_dir)
    if folder is None:
        return None
    paths = {split: split_file(spec, folder, split) for split in splits}
    return None if None in paths.values() else paths


def load_splits(spec: TaskSpec, data_dir: str | None, splits: tuple[str, ...],
                require_labels: bool = True) -> Splits:
    folder = find_folder(spec, data_dir)
    missing = list(splits)
    if folder is not None:
        paths = {split: split_file(spec, folder, split) for split in splits}
        missing = [split for split, path in paths.items() if path is None]
        if not missing:
            return {split: (read_file(spec, path, require_labels), str(path)) for split, path in paths.items()}
    try:
        return load_hub(spec, splits, require_labels)
    except DataError:
        raise
    except Exception as err:  # offline, renamed, no datasets package: one error naming every way
        reason = f" (hub: {str(err).splitlines()[0][:160] if str(err) else type(err).__name__})"
    hint = sources_hint(spec.folder, spec.hub[0] + f" ({spec.hub[1]})")
    if folder is not None:
        present = sorted(p.name for p in folder.iterdir() if p.is_file())
        raise DataError(folder, None, f"{'/'.join(missing)} split of {spec.benchmark} {spec.name} is unavailable "
                                      f"locally (folder has {', '.join(present) or 'no files'}); {hint}{reason}"
                                      + ("; or train on part of the dev split with --split-dev FRACTION"
                                         if "train" in missing else ""))
    raise DataError(None, None, f"{spec.benchmark} task '{spec.name}' not found: {hint}{reason}")


# ---------------------------------------------------------------- hub
def hub_split(split: str) -> str:
    return split.replace("dev", "validation")


def load_hub(spec: TaskSpec, splits: tuple[str, ...], require_labels: bool) -> Splits:
    from datasets import load_dataset

    data = load_dataset(*spec.hub)
    out = {}
    for split in splits:
        source = f"hub:{spec.hub[0]}/{spec.hub[1]}/{hub_split(split)}"
        rows = [dict(row) for row in data[hub_split(split)]]
        records = hub_records(spec, rows)
        out[split] = (build_examples(spec, records, source, require_labels), source)
    return out


def hub_records(spec: TaskSpec, rows: list[dict]) -> list[Record]:
    """Hub rows in the local record shape (labels as the local files write them; -1 = no label)."""
    return (spec.hub_records or superglue_rows)(spec, rows)


def _local_label(spec: TaskSpec, value):
    if spec.kind == "regression":
        return None if value is None or value < 0 else float(value)
    if value is None or value < 0:
        return None
    if spec.labels == BOOL:
        return bool(value)
    return value if spec.kind == "choice" else spec.labels[value]


def _with_label(spec: TaskSpec, record: dict, key: str, value) -> dict:
    label = _local_label(spec, value)
    if label is not None:
        record[key] = label
    return record


def per_row(convert):
    """A hub converter that maps each hub row to one local record."""
    def records(spec: TaskSpec, rows: list[dict]) -> list[Record]:
        return [(n, convert(spec, row)) for n, row in enumerate(rows, 1)]
    return records


def _glue_row(spec: TaskSpec, row: dict) -> dict:
    a, b = spec.hub_text
    record = {spec.fields["a"]: row[a], spec.fields["idx"]: row.get("idx")}
    if b:
        record[spec.fields["b"]] = row[b]
    return _with_label(spec, record, spec.fields["label"], row.get("label"))


def _superglue_row(spec: TaskSpec, row: dict) -> dict:
    record = {k: v for k, v in row.items() if k != "label"}
    return _with_label(spec, record, "label", row.get("label"))


def _wsc_row(spec: TaskSpec, row: dict) -> dict:
    target = {k: row[k] for k in ("span1_index", "span2_index", "span1_text", "span2_text")}
    return _with_label(spec, {"text": row["text"], "target": target, "idx": row["idx"]}, "label", row.get("label"))


def _record_row(spec: TaskSpec, row: dict) -> dict:
    qa = {"query": row["query"], "idx": row["idx"]["query"]}
    if row.get("answers"):
        qa["answers"] = [{"text": a} for a in row["answers"]]
    return {"passage": {"text": row["passage"], "candidates": list(row["entities"])}, "qas": [qa],
            "idx": row["idx"]["passage"]}


glue_rows, superglue_rows = per_row(_glue_row), per_row(_superglue_row)
wsc_rows, record_rows = per_row(_wsc_row), per_row(_record_row)


def multirc_rows(spec: TaskSpec, rows: list[dict]) -> list[Record]:
    """The hub has one row per answer: regroup into passages -> questions -> answers."""
    passages: OrderedDict = OrderedDict()
    for row in rows:
        ids = row["idx"]
        passage = passages.setdefault(ids["paragraph"], {"idx": ids["paragraph"], "passage": {
            "text": row["paragraph"], "questions": OrderedDict()}})
        question = passage["passage"]["questions"].setdefault(
            ids["question"], {"idx": ids["question"], "question": row["question"], "answers": []})
        answer = {"idx": ids["answer"], "text": row["answer"]}
        if row.get("label", -1) >= 0:
            answer["label"] = int(row["label"])
        question["answers"].append(answer)
    for passage in passages.values():
        passage["passage"]["questions"] = list(passage["passage"]["questions"].values())
    return [(n, p) for n, p in enumerate(passages.values(), 1)]

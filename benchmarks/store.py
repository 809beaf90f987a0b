"""The JSON store: ``results/<name>.json`` holds every number of a suite or benchmark, and the tables are
rendered from it.

A suite's store is ``{"suite", "description", "seed", "environment", "results": {key: record}, ...}`` with keys
``row/variant`` (first seed) or ``row/variant/seedN``; each record has the ``command`` it ran.  Several
invocations (one per core, or a lane on another machine at another commit) fill one store: every write re-reads
the file under a lock and merges.
"""
from __future__ import annotations

import fcntl
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from .commands import same_command


def read_store(store: Path) -> dict:
    """The stored state, or ``{}`` when there is none yet."""
    return json.loads(store.read_text()) if store.is_file() else {}


def write_json(path: Path, state: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(state, indent=2, default=str) + "\n")


def write_results(out: Path, stem: str, result: dict, markdown: str) -> Path:
    """``out/stem.json`` (every number) and ``out/stem.md`` (the tables); returns the Markdown path."""
    write_json(out / f"{stem}.json", result)
    (out / f"{stem}.md").write_text(markdown)
    return out / f"{stem}.md"


@contextmanager
def locked(store: Path) -> Iterator[None]:
    """Hold the store's lock file (``<store>.lock``): one writer at a time across processes."""
    store.parent.mkdir(parents=True, exist_ok=True)
    with open(store.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def merge_result(store: Path, state: dict, key: str | None, record: dict | None,
                 write: Callable[[dict], None]) -> dict:
    """``state`` with the results on disk and ``key: record`` (if given) merged in, written by ``write`` under
    the store's lock; returns the merged state.

    Re-reading the store first lets several invocations (say, one per core with OMP_NUM_THREADS=1, on
    different rows) fill one suite without losing each other's results.
    """
    with locked(store):
        on_disk = read_store(store).get("results", {})
        merged = {**state, "results": {**on_disk, **({key: record} if key else {})}}
        write(merged)
    return merged


def is_current(record: dict | None, command: str) -> bool:
    """A stored record that need not run again: it finished, running ``command``.

    Records written before the task CLIs named the method ``--method`` say ``--mode``: the same command.
    """
    return bool(record) and record.get("status") == "done" and same_command(record.get("command"), command)

"""Run a suite: every selected (row, variant, seed) as a task CLI subprocess, its outcome merged into the store.

Each run writes into benchmarks/runs/<suite>/<row>-<variant>[-seedN]/ (log.txt, the task's metrics.json and
artifact).  A stored result is kept, not rerun, while it is current (finished, same command: ``store.is_current``)
unless ``force``, so a suite can be completed across several invocations and machines.  This process never
imports torch: the peak RSS of a child (from wait4) must not inherit a large parent's high-water mark.
"""
from __future__ import annotations

import json
import shutil
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import layout
from .commands import command, command_line, relative, run_dir, suite_command
from .env import code_version, machine_label
from .processes import child_env, log_tail, module_available, optimizer_steps, probe_environment, run_child
from .report import write_suite
from .spec import Row, Suite
from .store import is_current, merge_result, read_store


@dataclass(frozen=True)
class Selection:
    """The runs of a suite to list or run: some rows, some variants, some seeds (None: every seed)."""

    suite: Suite
    rows: tuple[Row, ...]
    variants: tuple[str, ...]
    seeds: tuple[int, ...] | None = None

    def runs(self) -> list[tuple[Row, str, int]]:
        return [(row, v, seed) for row in self.rows for v in self.variants for seed in self.suite.seeds_of(v)
                if self.seeds is None or seed in self.seeds]


def select(suite: Suite, rows: list[str] | None = None, variants: list[str] | None = None,
           seeds: list[int] | None = None) -> Selection:
    """The named rows and variants of ``suite`` (default: all); ValueError naming what the suite has."""
    unknown = set(rows or ()) - {r.name for r in suite.rows}
    if unknown:
        raise ValueError(f"unknown row(s) {sorted(unknown)}; suite {suite.name} has {[r.name for r in suite.rows]}")
    names = suite.variant_names()
    if set(variants or ()) - set(names):
        raise ValueError(f"unknown variant(s) {sorted(set(variants) - set(names))}; suite {suite.name} has {names}")
    chosen = tuple(r for r in suite.rows if rows is None or r.name in rows)
    return Selection(suite, chosen, tuple(variants or names), None if seeds is None else tuple(seeds))


def listing(selection: Selection) -> str:
    """The rows, their budgets and the exact commands, one run a line."""
    lines = []
    out_root = layout.RUNS / selection.suite.name
    for row in selection.rows:
        lines.append(f"{row.name}: {row.budget}")
        lines += ["   " + suite_command(selection.suite, row, v, seed, out_root)
                  for r, v, seed in selection.runs() if r is row]
    return "\n".join(lines)


def read_outcome(folder: Path, row: Row) -> dict:
    """What a finished run's metrics.json says: the row's quality, trainable share, time and steps."""
    metrics = json.loads((folder / "metrics.json").read_text())
    headline = metrics.get("headline") or {}  # every task names its headline metric, in percent
    params = metrics.get("parameters", {})
    steps = optimizer_steps(folder)
    train_s = metrics.get("train_seconds")
    split = row.split or headline.get("split")
    quality = headline.get("value") if row.split is None else metrics.get(split, {}).get(headline.get("metric"))
    path = f"{split}.{headline.get('metric')}" if quality is not None else None
    return {"status": "done", "metric_path": path, "metric": quality, "quality": quality,
            "metric_label": row.metric_label,
            "trainable_percent": params.get("trainable_percent"), "trainable": params.get("trainable"),
            "train_seconds": train_s, "optimizer_steps": steps,
            "seconds_per_step": train_s / steps if train_s and steps else None, "metrics": metrics}


def run_one(suite: Suite, row: Row, variant: str, seed: int, timeout: float | None, env: dict[str, str]) -> dict:
    """Run one (row, variant, seed) now, from scratch; its record (done, failed, skipped or unavailable)."""
    where = run_dir(suite, row, variant, seed, layout.RUNS / suite.name)
    argv = command(suite, row, variant, relative(where), seed)
    method = suite.variant(variant).method
    # "mode": the stores' name for the registered method (records keep the keys older runners wrote)
    record = {"row": row.name, "method": variant, "mode": method, "command": command_line(argv), "seed": seed,
              "output_dir": str(where), "budget": row.budget}
    if variant in row.skip or method in row.skip:
        return {**record, "status": "skipped", "reason": row.skip.get(variant, row.skip.get(method))}
    if not module_available(row.module):
        return {**record, "status": "unavailable", "reason": f"module {row.module} is not in this checkout yet"}
    # never read back a previous run's numbers or step counts: runs start fresh in an empty folder (the task's
    # --resume is not used, and a task refuses a folder that holds another run)
    shutil.rmtree(where, ignore_errors=True)
    where.mkdir(parents=True)
    code, wall, rss = run_child(argv, where / "log.txt", timeout, env)
    record.update(wall_seconds=round(wall, 1), peak_rss_mib=round(rss, 1), exit_code=code,
                  threads=env.get("OMP_NUM_THREADS"))
    if code != 0 or not (where / "metrics.json").is_file():
        why = "timed out" if code is None else f"exit code {code}" if code else "no metrics.json written"
        return {**record, "status": "failed", "reason": f"{why}: {log_tail(where)[-400:]}"}
    return {**record, **read_outcome(where, row)}


def environment(suite: Suite) -> dict:
    """The invocation's machine, software and command line, stored in the suite's header."""
    env = probe_environment()
    env["command"] = "python -m benchmarks " + " ".join(sys.argv[1:])
    env["PTV2_DATA_DIR"] = child_env(suite.local_data).get("PTV2_DATA_DIR")
    return env


def stamped(record: dict, code: dict, probe: dict, lanes: int) -> dict:
    """A suite is completed over several invocations: each result names the code, machine and time it came from."""
    return {**record, **code, "torch_threads": probe.get("torch_threads"), "lanes": lanes,
            "machine": machine_label(probe),
            "finished_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())}


def progress(total: int, suite: str) -> Any:
    from tqdm import tqdm  # ships with transformers; imported late so listing works without it

    return tqdm(total=total, desc=f"suite {suite}", unit="run")


def run_suite(selection: Selection, store: Path | None = None, lanes: int = 1, force: bool = False,
              timeout_minutes: float | None = None) -> dict:
    """Run every selected run that has no current stored result, ``lanes`` at a time; returns the merged state.

    Each outcome is merged into the store as soon as it is known, so an interrupted suite keeps what it did.
    """
    suite = selection.suite
    store = store or layout.RESULTS / f"{suite.name}.json"
    state = {"suite": suite.name, "results": {}, **read_store(store), "description": suite.description,
             "seed": suite.seed, "environment": environment(suite)}
    env = child_env(suite.local_data, lanes)
    timeout = None if timeout_minutes is None else 60 * timeout_minutes
    out_root = layout.RUNS / suite.name

    def write(merged: dict) -> None:
        write_suite(merged, suite, store.parent, store.stem)

    bar, lock = progress(len(selection.runs()), suite.name), threading.Lock()

    def work(job: tuple[Row, str, int]) -> None:
        nonlocal state
        row, variant, seed = job
        key = suite.key(row.name, variant, seed)
        previous = read_store(store).get("results", {}).get(key)  # another invocation may have finished it
        if not force and is_current(previous, suite_command(suite, row, variant, seed, out_root)):
            with lock:
                bar.write(f"{key}: kept (finished earlier)")
                bar.update()
            return
        code = code_version()  # the code this run's subprocess imports
        record = stamped(run_one(suite, row, variant, seed, timeout, env), code, state["environment"], lanes)
        shown = f"{record['quality']:.2f}" if record.get("quality") is not None else record.get("reason", "")
        with lock:
            bar.write(f"{key}: {record['status']} {shown}")
            state = merge_result(store, state, key, record, write)
            bar.update()

    with ThreadPoolExecutor(max_workers=max(1, lanes)) as pool:
        list(pool.map(work, selection.runs()))
    bar.close()
    return merge_result(store, state, None, None, write)

"""Does a multi-task prefix help?  (a) single-task prefix, (b) the multi-task prefix as it is, (c) multi-task
then single-task, at the same total number of optimizer steps, several seeds; writes results/multitask.{md,json}.

    python -m benchmarks multitask --jobs 2            # both groups, 3 seeds (resumable)
    python -m benchmarks list --suite multitask        # the commands

The groups and the protocol are declared in ``studies.py`` (``MULTITASK``).  Every run is a task CLI
subprocess; a (c) run waits for the multi-task half it starts from.
"""
from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from . import layout
from .commands import command_line, multitask_jobs
from .env import code_version
from .processes import child_env, run_child
from .report import write_multitask
from .store import read_store
from .studies import MULTITASK, MULTITASK_SEEDS

FIRST = {"multi-half": 0, "single": 1, "multi": 1}  # multi-half runs first: the (c) runs wait on them


def jobs(groups: list[str] | None = None, seeds: list[int] | None = None) -> list[dict]:
    """Every run of the named groups and seeds, each with its group's name (ValueError for an unknown group)."""
    unknown = set(groups or ()) - set(MULTITASK)
    if unknown:
        raise ValueError(f"unknown group(s) {sorted(unknown)}; the multitask study has {sorted(MULTITASK)}")
    out = []
    for name in groups or sorted(MULTITASK):
        for seed in seeds or MULTITASK_SEEDS:
            out += [{**job, "group": name}
                    for job in multitask_jobs(MULTITASK[name], seed, layout.RUNS / "multitask" / name)]
    return out


def listing(todo: list[dict]) -> str:
    return "\n".join(command_line(job["argv"]) for job in todo)


def scores(metrics: dict, kind: str, target: str | None) -> dict[str, float]:
    """The headline score of each dataset a run scored (a multi-task run scores every member)."""
    if kind in ("multi", "multi-half"):
        return {name: m["headline"]["value"] for name, m in metrics["members"].items()}
    return {target: metrics["headline"]["value"]}


def output_dir(job: dict) -> Path:
    folder = Path(job["argv"][job["argv"].index("--output-dir") + 1])
    return folder if folder.is_absolute() else layout.REPO / folder


def run_job(job: dict, env: dict[str, str]) -> dict:
    """Run one job now; its record (done with the scores, or failed with the log's tail)."""
    folder = output_dir(job)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "metrics.json").unlink(missing_ok=True)
    code, wall, _ = run_child(job["argv"], folder / "log.txt", None, env)
    record = {k: v for k, v in job.items() if k != "argv"} | {"command": command_line(job["argv"]),
                                                               "wall_seconds": round(wall, 1), "exit_code": code,
                                                               **code_version()}
    if code == 0 and (folder / "metrics.json").is_file():
        metrics = json.loads((folder / "metrics.json").read_text())
        return record | {"status": "done", "scores": scores(metrics, job["kind"], job["target"]),
                         "train_seconds": metrics.get("train_seconds")}
    return record | {"status": "failed", "reason": (folder / "log.txt").read_text(errors="replace")[-400:]}


def run_multitask(todo: list[dict], lanes: int = 1, store: Path | None = None) -> dict:
    """Run every job not finished yet, ``lanes`` at a time, (c) runs after their multi-task half."""
    store = store or layout.RESULTS / "multitask.json"
    state = {"results": {}, **read_store(store), "started_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())}
    env = child_env(True, lanes)
    lock, finished = threading.Lock(), {k for k, r in state["results"].items() if r["status"] == "done"}
    events = {job["key"]: threading.Event() for job in todo}
    for key in finished & set(events):
        events[key].set()

    def work(job: dict) -> None:
        if job["key"] in finished:
            return
        if job.get("after"):
            events[job["after"]].wait()
        record = run_job(job, env)
        with lock:
            state["results"][job["key"]] = record
            write_multitask(state, store)
            print(f"{job['key']}: {record['status']} {record.get('scores', '')}", flush=True)
        events[job["key"]].set()

    with ThreadPoolExecutor(max_workers=max(1, lanes)) as pool:
        list(pool.map(work, sorted(todo, key=lambda j: FIRST.get(j["kind"], 2))))
    write_multitask(state, store)
    return state

"""Does a multi-task prefix help?  (a) single-task prefix, (b) the multi-task prefix as it is, (c) multi-task
then single-task, at the same total number of optimizer steps, several seeds; writes results/multitask.{md,json}.

    python -m benchmarks.multitask --jobs 2            # both groups, 3 seeds (resumable)
    python -m benchmarks.multitask --only ner --list   # the commands

For a group of datasets (CoNLL-2003 + CoNLL-2004; SuperGLUE RTE + CB) and a budget of N steps:
(a) each dataset alone for N steps; (b) one multi-task run over all of them for N steps, each dataset
scored with its own head; (c) a multi-task run of N/2 steps, then each dataset alone for N/2 steps
from it (``--init-from``).  The score is the one the single-task run reports (NER test F1, SuperGLUE
validation accuracy).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from .env import code_version
from .report import markdown_table
from .run import _command_line, _data_env, _run_child, _rel
from .suites import Suite

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Group:
    name: str
    family: str  # tasks.multitask's family argument
    module: str  # the single-task CLI
    selector: str  # its dataset flag
    targets: tuple[str, ...]
    steps: int
    flags: tuple[str, ...]  # every run's shared flags (the recipe)
    temperature: float = 2.0


GROUPS = {
    # 600 steps (9,600 sentences: 10 epochs of CoNLL-2004, 0.7 of CoNLL-2003): 3 seeds of 15 runs fit 2 cores
    "ner": Group("ner", "ner", "tasks.ner", "--dataset", ("conll2004", "conll2003"), 600,
                 ("--prefix-len", "32", "--batch-size", "16", "--layers", "mix", "--prefix-dropout", "0")),
    # 300 steps: 2 epochs of RTE, 21 of CB (what 2 cores afford for 3 seeds); mean pooling and lr 1e-2
    # (the classification search's recipe) for every run of the group
    "superglue": Group("superglue", "superglue", "tasks.superglue", "--task", ("rte", "cb"), 300,
                       ("--prefix-len", "16", "--batch-size", "16", "--max-length", "128", "--pooling", "mean",
                        "--lr", "1e-2")),
}
SEEDS = (42, 1, 2)


def jobs(group: Group, seed: int, root: Path) -> list[dict]:
    """Every run of one seed: single-task (a), multi-task (b), multi-task half then single-task (c)."""
    common = [*group.flags, "--seed", str(seed)]
    out = []
    for target in group.targets:
        out.append({"key": f"{group.name}/single/{target}/seed{seed}", "kind": "single", "target": target,
                    "argv": ["-m", group.module, group.selector, target, "--max-steps", str(group.steps), *common,
                             "--output-dir", _rel(root / f"single-{target}-seed{seed}")]})
    for kind, steps in (("multi", group.steps), ("multi-half", group.steps // 2)):
        out.append({"key": f"{group.name}/{kind}/seed{seed}", "kind": kind, "target": None,
                    "argv": ["-m", "tasks.multitask", group.family, "--tasks", *group.targets, "--max-steps",
                             str(steps), "--temperature", str(group.temperature), *common,
                             "--output-dir", _rel(root / f"{kind}-seed{seed}")]})
    for target in group.targets:
        out.append({"key": f"{group.name}/multi-then-single/{target}/seed{seed}", "kind": "multi-then-single",
                    "target": target, "after": f"{group.name}/multi-half/seed{seed}",
                    "argv": ["-m", group.module, group.selector, target, "--max-steps", str(group.steps // 2),
                             "--init-from", _rel(root / f"multi-half-seed{seed}"), *common,
                             "--output-dir", _rel(root / f"then-single-{target}-seed{seed}")]})
    return out


def scores(metrics: dict, kind: str, target: str | None) -> dict[str, float]:
    if kind in ("multi", "multi-half"):
        return {name: m["headline"]["value"] for name, m in metrics["members"].items()}
    return {target: metrics["headline"]["value"]}


def table(results: dict, group: Group) -> str:
    body = []
    for target in group.targets:
        cells = []
        for kind in ("single", "multi", "multi-then-single"):
            values = [r["scores"][target] for r in results.values()
                      if r.get("group") == group.name and r["kind"] == kind and r["status"] == "done"
                      and target in r["scores"]]
            if not values:
                cells.append("-")
                continue
            spread = f" ± {statistics.stdev(values):.2f}" if len(values) > 1 else ""
            cells.append(f"{statistics.fmean(values):.2f}{spread} (n={len(values)})")
        body.append([target, *cells])
    return markdown_table(["dataset", f"(a) single task, {group.steps} steps",
                           f"(b) multi-task, {group.steps} steps", f"(c) multi-task {group.steps // 2} + single "
                           f"{group.steps // 2}"], body)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", choices=sorted(GROUPS), default=sorted(GROUPS))
    parser.add_argument("--seeds", nargs="+", type=int, default=list(SEEDS))
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--list", action="store_true")
    parser.add_argument("--report-only", action="store_true")
    args = parser.parse_args(argv)
    store = HERE / "results" / "multitask.json"
    state = json.loads(store.read_text()) if store.is_file() else {"results": {}}
    todo = []
    for name in args.only:
        group = GROUPS[name]
        for seed in args.seeds:
            todo += [{**job, "group": name} for job in jobs(group, seed, HERE / "runs" / "multitask" / name)]
    if args.list:
        print("\n".join(_command_line(job["argv"]) for job in todo))
        return {}
    env = _data_env(Suite("multitask", "", ()))
    if args.jobs > 1:
        env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // args.jobs)))
    lock, finished = threading.Lock(), {k for k, r in state["results"].items() if r["status"] == "done"}
    events = {job["key"]: threading.Event() for job in todo}
    for key in finished & set(events):
        events[key].set()

    def work(job: dict) -> None:
        if job["key"] in finished:
            return
        if job.get("after"):
            events[job["after"]].wait()
        run_dir = Path(job["argv"][job["argv"].index("--output-dir") + 1])
        run_dir = run_dir if run_dir.is_absolute() else HERE.parent / run_dir
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "metrics.json").unlink(missing_ok=True)
        code, wall, rss = _run_child(job["argv"], run_dir / "log.txt", None, env)
        record = {k: v for k, v in job.items() if k != "argv"} | {"command": _command_line(job["argv"]),
                                                                     "wall_seconds": round(wall, 1), "exit_code": code,
                                                                     **code_version()}
        metrics_path = run_dir / "metrics.json"
        if code == 0 and metrics_path.is_file():
            metrics = json.loads(metrics_path.read_text())
            record.update(status="done", scores=scores(metrics, job["kind"], job["target"]),
                          train_seconds=metrics.get("train_seconds"))
        else:
            record.update(status="failed", reason=(run_dir / "log.txt").read_text(errors="replace")[-400:])
        with lock:
            state["results"][job["key"]] = record
            _write(state, store)
            print(f"{job['key']}: {record['status']} {record.get('scores', '')}", flush=True)
        events[job["key"]].set()

    if not args.report_only:
        state["started_utc"] = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())
        # multi-half runs first, so the (c) runs waiting on them can start early
        order = sorted(todo, key=lambda j: {"multi-half": 0, "single": 1, "multi": 1}.get(j["kind"], 2))
        with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            list(pool.map(work, order))
    _write(state, store)
    print(store.with_suffix(".md").read_text())
    return state


def _write(state: dict, store: Path) -> None:
    store.parent.mkdir(parents=True, exist_ok=True)
    store.write_text(json.dumps(state, indent=2) + "\n")
    parts = ["# Multi-task prefix: does it help?\n\nProduced by `python -m benchmarks.multitask`; every run and "
             "command is in `multitask.json`. Mean ± sd over seeds of the score each single-task run reports "
             "(NER test F1, SuperGLUE validation accuracy).\n\n"]
    for group in GROUPS.values():
        if any(r.get("group") == group.name for r in state["results"].values()):
            parts += [f"## {group.name}: {' + '.join(group.targets)} (flags: `{' '.join(group.flags)}`, multi-task "
                      f"temperature {group.temperature:g})\n\n", table(state["results"], group), "\n"]
    failed = [k for k, r in state["results"].items() if r["status"] != "done"]
    if failed:
        parts.append("Failed: " + ", ".join(failed) + "\n")
    store.with_suffix(".md").write_text("".join(parts))


if __name__ == "__main__":
    main()

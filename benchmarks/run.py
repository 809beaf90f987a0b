"""Run a benchmark suite: every (row, method) as a task CLI subprocess; table, JSON and plots.

    python -m benchmarks.run --suite smoke                 # minutes: proves the pipeline
    python -m benchmarks.run --suite cpu --only ner-conll2003 --methods prefix finetune
    python -m benchmarks.run --suite paper                 # GPU + network (RoBERTa-large / DeBERTa)

Each (row, method) writes into benchmarks/runs/<suite>/<row>-<method>/ (log.txt, the task's
metrics.json and artifact).  Finished (row, method) results are kept in
benchmarks/results/<suite>.json and not rerun (unless --force or their command changed),
so a suite can be completed across several invocations.  This process never imports torch:
the peak RSS of a child (from wait4) must not inherit a large parent's high-water mark.
"""
from __future__ import annotations

import argparse
import fcntl
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from .env import code_version, machine_label
from .results import write_outputs
from .suites import SUITES, Row, Suite, command

HERE = Path(__file__).resolve().parent
REPO = HERE.parent


def _environment(suite: Suite) -> dict:
    code = "import json; from benchmarks.env import environment; print(json.dumps(environment()))"
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    env = json.loads(done.stdout) if done.returncode == 0 else {"error": done.stderr[-400:]}
    env["command"] = "python -m benchmarks.run " + " ".join(sys.argv[1:])
    env["PTV2_DATA_DIR"] = _data_env(suite).get("PTV2_DATA_DIR")
    return env


def _module_available(module: str) -> bool:
    """``python -m module`` can start (checked on disk: importing the task here would pull in torch)."""
    base = REPO.joinpath(*module.split("."))
    return (base / "__main__.py").is_file() or base.with_suffix(".py").is_file()


def _data_env(suite: Suite) -> dict[str, str]:
    """Children see $PTV2_DATA_DIR, defaulting to ../shared/data next to the checkout when it exists."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    shared = REPO.parent / "shared" / "data"
    if suite.local_data and "PTV2_DATA_DIR" not in env and shared.is_dir():
        env["PTV2_DATA_DIR"] = str(shared)
    return env


def _run_child(argv: list[str], log_path: Path, timeout: float | None,
               env: dict[str, str]) -> tuple[int | None, float, float]:
    """Run ``python argv`` with output to ``log_path``; (exit code or None on timeout, wall s, peak RSS MiB)."""
    started = time.time()
    with open(log_path, "w") as log:
        log.write("$ " + _command_line(argv) + "\n")
        log.flush()
        child = subprocess.Popen([sys.executable, *argv], cwd=REPO, stdout=log, stderr=subprocess.STDOUT, env=env)
        deadline = None if timeout is None else started + timeout
        while True:  # poll with wait4 so we get the child's own rusage (peak RSS)
            pid, status, usage = os.wait4(child.pid, os.WNOHANG)
            if pid:
                child.returncode = os.waitstatus_to_exitcode(status)
                return child.returncode, time.time() - started, usage.ru_maxrss / 1024
            if deadline is not None and time.time() > deadline:
                child.kill()
                _, _, usage = os.wait4(child.pid, 0)
                return None, time.time() - started, usage.ru_maxrss / 1024
            time.sleep(0.5)


def _steps(run_dir: Path) -> int | None:
    """Optimizer steps done, from the Trainer's last checkpoint state (for seconds per step)."""
    states = sorted(run_dir.glob("checkpoints/checkpoint-*/trainer_state.json"),
                    key=lambda p: int(p.parent.name.split("-")[-1]))
    if not states:
        return None
    return json.loads(states[-1].read_text()).get("global_step")


def run_dir_of(suite: Suite, row: Row, variant: str, seed: int, out_root: Path) -> Path:
    first = seed == suite.seeds_of(variant)[0]
    return out_root / (f"{row.name}-{variant}" if first else f"{row.name}-{variant}-seed{seed}")


def run_one(suite: Suite, row: Row, variant: str, seed: int, out_root: Path, timeout: float | None,
            env: dict[str, str]) -> dict:
    run_dir = run_dir_of(suite, row, variant, seed, out_root)
    run_dir.mkdir(parents=True, exist_ok=True)
    argv = command(suite, row, variant, _rel(run_dir), seed)
    record = {"row": row.name, "method": variant, "mode": suite.variant(variant).mode,
              "command": _command_line(argv), "seed": seed, "output_dir": str(run_dir), "budget": row.budget}
    if variant in row.skip or record["mode"] in row.skip:
        return {**record, "status": "skipped", "reason": row.skip.get(variant, row.skip.get(record["mode"]))}
    if not _module_available(row.module):
        return {**record, "status": "unavailable", "reason": f"module {row.module} is not in this checkout yet"}
    # never read back a previous run's numbers or step counts (runs start fresh; the task's --resume is not used)
    (run_dir / "metrics.json").unlink(missing_ok=True)
    shutil.rmtree(run_dir / "checkpoints", ignore_errors=True)
    code, wall, rss = _run_child(argv, run_dir / "log.txt", timeout, env)
    record.update(wall_seconds=round(wall, 1), peak_rss_mib=round(rss, 1), exit_code=code,
                  threads=env.get("OMP_NUM_THREADS"))
    metrics_path = run_dir / "metrics.json"
    if code != 0 or not metrics_path.is_file():
        tail = (run_dir / "log.txt").read_text(errors="replace").strip().splitlines()[-3:]
        why = "timed out" if code is None else f"exit code {code}" if code else "no metrics.json written"
        return {**record, "status": "failed", "reason": f"{why}: {' | '.join(tail)[-400:]}"}
    metrics = json.loads(metrics_path.read_text())
    headline = metrics.get("headline") or {}  # every task names its headline metric, in percent
    params = metrics.get("parameters", {})
    steps = _steps(run_dir)
    train_s = metrics.get("train_seconds")
    split = row.split or headline.get("split")
    quality = headline.get("value") if row.split is None else metrics.get(split, {}).get(headline.get("metric"))
    path = f"{split}.{headline.get('metric')}" if quality is not None else None
    return {**record, "status": "done", "metric_path": path, "metric": quality, "quality": quality,
            "metric_label": row.metric_label,
            "trainable_percent": params.get("trainable_percent"), "trainable": params.get("trainable"),
            "train_seconds": train_s, "optimizer_steps": steps,
            "seconds_per_step": train_s / steps if train_s and steps else None, "metrics": metrics}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", required=True, choices=sorted(SUITES))
    parser.add_argument("--only", nargs="+", default=None, metavar="ROW", help="run these rows only")
    parser.add_argument("--methods", nargs="+", default=None, metavar="VARIANT",
                        help="run these variants (columns) only; default: every variant of the suite")
    parser.add_argument("--seeds", nargs="+", type=int, default=None, help="run these seeds only")
    parser.add_argument("--jobs", type=int, default=1,
                        help="runs at once; each child gets OMP_NUM_THREADS = cores / jobs unless it is set")
    parser.add_argument("--force", action="store_true", help="rerun runs that already finished")
    parser.add_argument("--timeout", type=float, default=None, help="minutes per run; default none")
    parser.add_argument("--list", action="store_true", help="print the rows, budgets and commands, run nothing")
    parser.add_argument("--report-only", action="store_true",
                        help="rewrite the table, JSON and plots from the stored results, run nothing")
    parser.add_argument("--store", type=Path, default=None,
                        help="results file to read and write (default benchmarks/results/<suite>.json)")
    args = parser.parse_args(argv)
    suite = SUITES[args.suite]
    rows = [r for r in suite.rows if args.only is None or r.name in args.only]
    unknown = set(args.only or ()) - {r.name for r in suite.rows}
    if unknown:
        parser.error(f"unknown row(s) {sorted(unknown)}; suite {suite.name} has {[r.name for r in suite.rows]}")
    names = [v.name for v in suite.variants]
    variants = args.methods or names
    if set(variants) - set(names):
        parser.error(f"unknown variant(s) {sorted(set(variants) - set(names))}; suite {suite.name} has {names}")
    out_root = HERE / "runs" / suite.name
    store = args.store or HERE / "results" / f"{suite.name}.json"
    jobs = [(row, v, seed) for row in rows for v in variants for seed in suite.seeds_of(v)
            if args.seeds is None or seed in args.seeds]
    if args.list:
        for row in rows:
            print(f"{row.name}: {row.budget}")
            for _, v, seed in [j for j in jobs if j[0] is row]:
                print("   " + _command_line(command(suite, row, v, _rel(run_dir_of(suite, row, v, seed, out_root)),
                                                    seed)))
        return {}
    state = {"suite": suite.name, "results": {}, **_read_store(store)}
    if args.report_only:
        state = _store_result(store, state, None, None, suite)
        print(store.with_suffix(".md").read_text())
        return state
    state.update(description=suite.description, seed=suite.seed, environment=_environment(suite))
    env = _data_env(suite)
    if args.jobs > 1:  # lanes side by side: one core each (or cores / jobs), else they fight over every core
        env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // args.jobs)))
    from tqdm import tqdm  # ships with transformers; imported late so --list works without it

    bar = tqdm(total=len(jobs), desc=f"suite {suite.name}", unit="run")
    lock = threading.Lock()

    def work(job) -> None:
        nonlocal state
        row, variant, seed = job
        key = suite.key(row.name, variant, seed)
        # re-read: another invocation may have finished it meanwhile
        previous = _read_store(store).get("results", {}).get(key)
        wanted = _command_line(command(suite, row, variant, _rel(run_dir_of(suite, row, variant, seed, out_root)),
                                       seed))
        if previous and previous.get("status") == "done" and previous.get("command") == wanted and not args.force:
            bar.write(f"{key}: kept (finished earlier)")
            bar.update()
            return
        code = code_version()  # the code this run's subprocess imports
        record = run_one(suite, row, variant, seed, out_root, None if args.timeout is None else 60 * args.timeout,
                         env)
        # a suite may be completed over several invocations: each result names the code and time it came from
        record.update(code, torch_threads=state["environment"].get("torch_threads"), lanes=args.jobs,
                      machine=machine_label(state["environment"]),
                      finished_utc=time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()))
        shown = f"{record['quality']:.2f}" if record.get("quality") is not None else record.get("reason", "")
        with lock:
            bar.write(f"{key}: {record['status']} {shown}")
            state = _store_result(store, state, key, record, suite)  # now: an interrupted suite keeps what it did
            bar.update()

    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        list(pool.map(work, jobs))
    bar.close()
    state = _store_result(store, state, None, None, suite)
    print(store.with_suffix(".md").read_text())
    return state


def _read_store(store: Path) -> dict:
    return json.loads(store.read_text()) if store.is_file() else {}


def _command_line(argv: list[str]) -> str:
    return "python " + " ".join(argv)


def _store_result(store: Path, state: dict, key: str | None, record: dict | None, suite: Suite) -> dict:
    """Merge one result into ``store`` and rewrite the outputs, under a file lock.

    Re-reading the store first lets several invocations (say, one per core with
    OMP_NUM_THREADS=1, on different rows) fill one suite without losing each other's results.
    """
    store.parent.mkdir(parents=True, exist_ok=True)
    with open(store.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        on_disk = _read_store(store).get("results", {})
        merged = {**state, "results": {**on_disk, **({key: record} if key else {})}}
        write_outputs(merged, suite, store.parent, store.stem)
    return merged


def _rel(path: Path) -> str:
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)


if __name__ == "__main__":
    main()

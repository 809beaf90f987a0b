"""Many tasks on one backbone: mixed-task throughput and memory (Python API), and the HTTP server under load.

    python -m benchmarks.serving             # writes benchmarks/results/serving.{md,json} (~5 minutes, 2 cores)

Tasks are artifacts on the bundled encoder built here with random prefixes and heads (throughput and
memory do not depend on the values): NER-style token tagging and SST-2-style classification, prefix
lengths cycling through 8, 16 and 32.  Throughput compares the same number of rows, of the same
length, answered as one task or spread over 2, 4 and 8 tasks, timed round-robin.  The server runs in
a subprocess (``python -m tasks.serve``) and is driven by 16 client threads for 60 s.
"""
from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import threading
import time
from pathlib import Path

import torch

from heads import SequenceClassificationHead, TokenClassificationHead
from models.adapted import build_model
from models.backbone import DEFAULT_MODEL
from models.methods import PrefixConfig
from tasks.common.allocator import keep_large_allocations
from tasks.common.artifacts import save_artifact
from tasks.serve.engine import Engine
from tasks.serve.launch import start_server

from .env import environment
from .report import markdown_table, write_results
from .timing import Timer

RESULTS = Path(__file__).resolve().parent / "results"
REPO = Path(__file__).resolve().parent.parent
WORDS = "the city of paris lies on the seine and john smith works there for acme corp in london".split()
LABELS = ["O", "B-LOC", "I-LOC", "B-ORG", "I-ORG", "B-PER", "I-PER", "B-MISC", "I-MISC"]


def make_tasks(folder: Path, count: int, model: str, lengths: tuple[int, ...]) -> list[Path]:
    """``count`` artifacts on one encoder, alternating NER and classification heads, prefix lengths cycling."""
    paths = []
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        torch.manual_seed(i)
        ner = i % 2 == 0
        head = TokenClassificationHead(384, len(LABELS)) if ner else SequenceClassificationHead(384, 2, pooling="mean")
        built = build_model(model, head, "prefix", PrefixConfig(prefix_len=lengths[i % len(lengths)]))
        record = ({"family": "ner", "dataset": f"ner{i}", "labels": LABELS, "max_length": 256} if ner else
                  {"family": "glue", "benchmark": "glue", "name": "sst2", "labels": ["0", "1"], "max_length": 256})
        paths.append(folder / f"task{i}")
        save_artifact(built, paths[-1], record)
    return paths


def sentence(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words))


def request(task: str, rng: random.Random, words: int) -> tuple[str, dict]:
    text = sentence(rng, words)
    return (task, {"text": text}) if task.startswith("ner") else (task, {"sentence": text})


def throughput(engine: Engine, rows: int, words: int, warmup: int, repeats: int) -> dict:
    """Rows per second for ``rows`` requests of one task vs spread round-robin over 2, 4, 8 tasks."""
    rng = random.Random(0)
    names, calls = list(engine.tasks), {}
    for count in (1, 2, 4, 8):
        if count > len(names):
            continue
        requests = [request(names[i % count], rng, words) for i in range(rows)]
        pending = [engine.prepare(*r) for r in requests]
        calls[f"{count} task{'s' if count > 1 else ''}"] = lambda p=pending: engine.logits(p)
    timed = Timer(warmup, repeats).run(calls)
    base = timed["1 task"]["median_s"]
    return {name: {**t, "rows_per_s": rows / t["median_s"], "relative_to_one_task": base / t["median_s"]}
            for name, t in timed.items()}


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def load_test(paths: list[Path], seconds: float, clients: int, words: int) -> dict:
    """``clients`` threads posting requests of random tasks for ``seconds`` to a fresh server; every answer
    is checked to come from the task asked (its output form and its task name)."""
    import requests as http

    names = [f"{'ner' if i % 2 == 0 else 'cls'}{i}" for i in range(len(paths))]
    args = [*(a for n, p in zip(names, paths) for a in ("--artifact", f"{n}={p}")), "--max-batch", "16",
            "--batch-wait-ms", "5"]
    server, url = start_server(args, timeout=600)
    try:
        kinds = {n: n[:3] for n in names}
        latencies, wrong, failed, lock = [], [], [], threading.Lock()
        stop = time.time() + seconds

        def client(index: int) -> None:
            rng = random.Random(index)
            session = http.Session()
            while time.time() < stop:
                task = rng.choice(names)
                text = sentence(rng, words)
                payload = {"text": text} if kinds[task] == "ner" else {"sentence": text}
                started = time.perf_counter()
                try:
                    response = session.post(f"{url}/predict", json={"task": task, "input": payload}, timeout=120)
                except http.RequestException as err:
                    with lock:
                        failed.append(str(err))
                    continue
                took = time.perf_counter() - started
                body = response.json() if response.ok else {}
                output = body.get("output", {})
                right = body.get("task") == task and (
                    len(output.get("tags", [])) == len(text.split()) if kinds[task] == "ner" else "label" in output)
                with lock:
                    latencies.append(took)
                    if not response.ok:
                        failed.append(f"{response.status_code} {response.text[:100]}")
                    elif not right:
                        wrong.append(task)

        threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
        started = time.time()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.time() - started
        health = http.get(f"{url}/health").json()
    finally:
        server.terminate()
        server.wait(timeout=30)
    latencies.sort()
    return {"clients": clients, "seconds": round(elapsed, 1), "requests": len(latencies), "failed": len(failed),
            "answered_by_another_task": len(wrong), "requests_per_s": len(latencies) / elapsed,
            "p50_ms": 1000 * latencies[len(latencies) // 2] if latencies else None,
            "p99_ms": 1000 * latencies[int(0.99 * (len(latencies) - 1))] if latencies else None,
            "server_batches": health.get("batches"), "failures": failed[:5]}


def markdown(result: dict) -> str:
    t = result["throughput"]
    mixed = result["throughput_mixed_prefix_lengths"]
    rows = [[name, f"{v['rows_per_s']:.1f}", f"{v['relative_to_one_task']:.2f}x",
             f"{mixed[name]['rows_per_s']:.1f} ({mixed[name]['relative_to_one_task']:.2f}x)"] for name, v in t.items()]
    memory = result["memory"]
    mem_rows = [[str(m["tasks"]), f"{m['backbone_mib']:.1f}", f"{m['per_task_mib']:.2f}", f"{m['rss_mib']:.0f}"]
                for m in memory]
    load = result["load"]
    parts = [f"# Serving many tasks on one backbone\n\nProduced by `python -m benchmarks.serving`; every number is in "
             "`serving.json`.\n\n",
             "- machine: " + result["environment"]["cpu_model"] + f", {result['environment']['cpu_count']} cores, "
             f"torch threads {result['environment']['torch_threads']}\n",
             f"- rows of {result['settings']['words']} words (NER tagging and classification tasks alternating), "
             f"{result['settings']['rows']} rows per call\n\n",
             "## Mixed-task throughput (Python API, same rows and lengths)\n\n",
             "Every task's prefix has 32 rows; the last column has prefixes of 8, 16 and 32 rows, so a mixed batch "
             "pads the shorter ones to its longest (its one-task batch is a task with 8 rows).\n\n",
             markdown_table(["tasks in the batch", "rows/s", "vs one task", "prefixes 8/16/32: rows/s (vs one task)"],
                            rows),
             "\n## Memory: one backbone + N x (prefix + head)\n\n",
             markdown_table(["tasks", "backbone MiB", "per task MiB (prefix + head)", "process RSS MiB"], mem_rows),
             "\n## HTTP server under load\n\n",
             f"{load['clients']} client threads for {load['seconds']} s against `python -m tasks.serve` with "
             f"{result['settings']['server_tasks']} tasks: **{load['requests']} requests, {load['failed']} failed, "
             f"{load['answered_by_another_task']} answered by another task's head**; "
             f"{load['requests_per_s']:.1f} requests/s, latency p50 {load['p50_ms']:.0f} ms, p99 {load['p99_ms']:.0f} "
             f"ms, in {load['server_batches']} batches. The Python API answers "
             f"{t['1 task']['rows_per_s']:.1f} rows/s of one task at {result['settings']['rows']} rows per call.\n"]
    return "".join(parts)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument("--rows", type=int, default=32, help="rows per engine call")
    parser.add_argument("--words", type=int, default=20, help="words per request")
    parser.add_argument("--seconds", type=float, default=60.0, help="server load test length")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    keep_large_allocations()
    result = {"environment": environment(), "settings": {"rows": args.rows, "words": args.words, "server_tasks": 4,
                                                         "model": args.model}}
    with tempfile.TemporaryDirectory() as tmp:
        names = [f"{'ner' if i % 2 == 0 else 'cls'}{i}" for i in range(8)]  # the name says the input form
        same = make_tasks(Path(tmp) / "same", 8, args.model, (32,))
        mixed = make_tasks(Path(tmp) / "mixed", 8, args.model, (8, 16, 32))
        baseline = rss_mib()
        memory = []
        for count in (1, 2, 4, 8):
            engine = Engine([f"{n}={p}" for n, p in zip(names[:count], mixed[:count])], max_rows=args.rows)
            sizes = engine.memory()
            per_task = [v for k, v in sizes.items() if k != "backbone_bytes"]
            memory.append({"tasks": count, "backbone_mib": sizes["backbone_bytes"] / 2**20,
                           "per_task_mib": statistics.fmean(per_task) / 2**20, "rss_mib": rss_mib(),
                           "rss_above_start_mib": rss_mib() - baseline})
        result["memory"] = memory
        print("throughput", flush=True)
        result["throughput"] = throughput(Engine([f"{n}={p}" for n, p in zip(names, same)], max_rows=args.rows),
                                          args.rows, args.words, 2, 5)
        result["throughput_mixed_prefix_lengths"] = throughput(engine, args.rows, args.words, 2, 5)
        del engine
        print("server load", flush=True)
        result["load"] = load_test(mixed[:4], args.seconds, args.clients, args.words)
    print(write_results(args.out, "serving", result, markdown(result)).read_text())
    return result


if __name__ == "__main__":
    main()

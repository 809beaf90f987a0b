"""Many tasks on one backbone: mixed-task throughput and memory (Python API), and the HTTP server under load.

    python -m benchmarks serving                # writes benchmarks/results/serving.{md,json} (~15 minutes, 2 cores)
    python -m benchmarks serving --skip-faults  # the throughput, memory and load parts only (~5 minutes)
    python -m benchmarks serving --only overload --wrk-seconds 5 [--engine-in thread] [--server-flags='...']
                                                # the wrk overload phase alone (~1 minute), to compare servers

Tasks are artifacts on the bundled encoder built here with random prefixes and heads (throughput and
memory do not depend on the values): NER-style token tagging and SST-2-style classification, prefix
lengths cycling through 8, 16 and 32.  Throughput compares the same number of rows, of the same
length, answered as one task or spread over 2, 4 and 8 tasks, timed round-robin through ``Engine.answer`` (the
route a request takes: reading, tokenizing, the forward and decoding).  The server runs in
a subprocess (``python -m tasks.serve``) and is driven by 16 client threads for 60 s.  Unless skipped, the
load-and-fault phases follow (``serving_faults.py``: unloaded baseline, overload, a 5-minute soak, poison
requests, clients hanging up, SIGTERM under load, the same answer alone and in a mixed batch).  Then the
overload phase driven by ``wrk`` (``serving_overload.py``; skipped, with a note, where wrk is not installed:
``apt-get install -y wrk``).
"""
from __future__ import annotations

import json
import random
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
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

from . import layout
from .alias import forward
from .env import environment, environment_markdown
from .serving_overload import OverloadOptions, overload_phase, percentile
from .store import write_results
from .tables.serving import serving_markdown, wrk_section
from .timing import Timer

WORDS = "the city of paris lies on the seine and john smith works there for acme corp in london".split()
LABELS = ["O", "B-LOC", "I-LOC", "B-ORG", "I-ORG", "B-PER", "I-PER", "B-MISC", "I-MISC"]


def make_tasks(folder: Path, count: int, model: str, lengths: tuple[int, ...]) -> list[Path]:
    """``count`` artifacts on one encoder, alternating NER and classification heads, prefix lengths cycling."""
    paths = []
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        torch.manual_seed(i)
        ner = i % 2 == 0
        # heads built on the encoder's own hidden size (``--model`` may name any encoder, e.g. a tiny test one)
        head = ((lambda hidden: TokenClassificationHead(hidden, len(LABELS))) if ner else
                (lambda hidden: SequenceClassificationHead(hidden, 2, pooling="mean")))
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
    """Rows per second for ``rows`` requests of one task vs spread round-robin over 2, 4, 8 tasks, through
    ``Engine.answer``: the route every request takes (read, tokenize, forward, decode)."""
    rng = random.Random(0)
    names, calls = list(engine.tasks), {}
    for count in (1, 2, 4, 8):
        if count > len(names):
            continue
        requests = [request(names[i % count], rng, words) for i in range(rows)]
        calls[f"{count} task{'s' if count > 1 else ''}"] = lambda r=requests: engine.answer(r)
    timed = Timer(warmup, repeats).run(calls)
    base = timed["1 task"]["median_s"]
    return {name: {**t, "rows_per_s": rows / t["median_s"], "relative_to_one_task": base / t["median_s"]}
            for name, t in timed.items()}


def rss_mib(pid: int | str = "self") -> float:
    """VmRSS of this process, or of process ``pid`` (the server subprocess), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (from /proc)."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:  # it exited meanwhile
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def rss_tree_mib(pid: int) -> float:
    """VmRSS of process ``pid`` and its children, in MiB: the server and its engine process."""
    total = 0.0
    for each in [pid, *children(pid)]:
        try:
            total += rss_mib(each)
        except OSError:  # it exited meanwhile
            continue
    return total


@dataclass
class Tally:
    """What the load test's clients saw, added to under one lock."""

    latencies: list[float] = field(default_factory=list)
    wrong: list[str] = field(default_factory=list)  # answered by another task's head
    failed: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, took: float | None, failure: str | None = None, wrong_task: str | None = None) -> None:
        with self.lock:
            if took is not None:
                self.latencies.append(took)
            if failure is not None:
                self.failed.append(failure)
            elif wrong_task is not None:
                self.wrong.append(wrong_task)


def right_answer(body: dict, task: str, text: str) -> bool:
    """The answer came from the task asked: its name, and its output form (tags per word, or a label)."""
    output = body.get("output", {})
    form = len(output.get("tags", [])) == len(text.split()) if task.startswith("ner") else "label" in output
    return body.get("task") == task and form


def client(url: str, names: list[str], words: int, stop: float, index: int, tally: Tally) -> None:
    """One client thread: post requests of random tasks until ``stop``, checking every answer."""
    import requests as http

    rng, session = random.Random(index), http.Session()
    while time.time() < stop:
        task, text = rng.choice(names), sentence(rng, words)
        payload = {"text": text} if task.startswith("ner") else {"sentence": text}
        started = time.perf_counter()
        try:
            response = session.post(f"{url}/predict", json={"task": task, "input": payload}, timeout=120)
        except http.RequestException as err:
            tally.add(None, failure=str(err))
            continue
        took = time.perf_counter() - started
        if not response.ok:
            tally.add(took, failure=f"{response.status_code} {response.text[:100]}")
        else:
            tally.add(took, wrong_task=None if right_answer(response.json(), task, text) else task)


def load_summary(tally: Tally, clients: int, elapsed: float, health: dict) -> dict:
    latencies = tally.latencies
    return {"clients": clients, "seconds": round(elapsed, 1), "requests": len(latencies),
            "failed": len(tally.failed), "answered_by_another_task": len(tally.wrong),
            "requests_per_s": len(latencies) / elapsed,
            "p50_ms": 1000 * percentile(latencies, 0.5) if latencies else None,
            "p99_ms": 1000 * percentile(latencies, 0.99) if latencies else None,
            "server_batches": health.get("batches"), "failures": tally.failed[:5]}


def server_args(names: list[str], paths: list[Path], flags: list[str]) -> list[str]:
    """``python -m tasks.serve`` arguments: each artifact under its name, then ``flags``."""
    return [*(a for n, p in zip(names, paths) for a in ("--artifact", f"{n}={p}")), *flags]


def load_test(paths: list[Path], seconds: float, clients: int, words: int) -> dict:
    """``clients`` threads posting requests of random tasks for ``seconds`` to a fresh server; every answer
    is checked to come from the task asked (its output form and its task name)."""
    import requests as http

    names = [f"{'ner' if i % 2 == 0 else 'cls'}{i}" for i in range(len(paths))]  # the name says the input form
    args = server_args(names, paths, ["--max-batch", "16", "--batch-wait-ms", "5"])
    server, url = start_server(args, timeout=600)
    tally = Tally()
    try:
        stop = time.time() + seconds
        threads = [threading.Thread(target=client, args=(url, names, words, stop, i, tally)) for i in range(clients)]
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
    return load_summary(tally, clients, elapsed, health)


# what the hostile clients send, besides valid requests: each must get its own 4xx (or 503 when the server is
# saturated) while every valid request of the same batches is answered
HOSTILE = {
    "lone surrogate": lambda task: f'{{"task": "{task}", "input": {{"text": "john \\ud800 paris"}}}}'.encode(),
    "deep JSON": lambda task: ("[" * 10_000 + "]" * 10_000).encode(),
    "5,000-digit integer": lambda task: ('{"task": "' + task + '", "input": ' + "9" * 5000 + "}").encode(),
    "not JSON": lambda task: b"{broken",
    "unknown task": lambda task: b'{"task": "nope", "input": {}}',
    "too many words": lambda task: json.dumps({"task": task, "input": {"text": "paris " * 3000}}).encode(),
    "oversized body": lambda task: b'{"task": "x", "input": "' + b"a" * 1_100_000 + b'"}',
}


def hostile_client(url: str, names: list[str], words: int, stop: float, index: int, statuses: dict) -> None:
    """Alternate valid requests and hostile ones; count (kind, status) and check the valid answers."""
    import requests as http

    rng, session, kinds = random.Random(1000 + index), http.Session(), list(HOSTILE)
    while time.time() < stop:
        task, text = rng.choice(names), sentence(rng, words)
        if rng.random() < 0.5:
            payload = {"text": text} if task.startswith("ner") else {"sentence": text}
            kind, body = "valid", json.dumps({"task": task, "input": payload}).encode()
        else:
            kind = rng.choice(kinds)
            body = HOSTILE[kind]("ner0" if task.startswith("ner") else task)
        try:
            response = session.post(f"{url}/predict", data=body, headers={"content-type": "application/json"},
                                    timeout=120)
            key = (kind, response.status_code)
            if kind == "valid" and response.ok and not right_answer(response.json(), task, text):
                key = (kind, "answered by another task")
        except http.RequestException as err:
            key = (kind, f"no answer: {type(err).__name__}")
        with statuses["lock"]:
            statuses["counts"][key] = statuses["counts"].get(key, 0) + 1


def hostile_load_test(paths: list[Path], seconds: float, clients: int, words: int, max_queue: int) -> dict:
    """More clients than the queue holds, half their requests hostile: every request gets an answer (200, its
    4xx, or 503 with Retry-After when the queue is full), no valid request fails for a batch mate, and the server
    stays healthy."""
    import requests as http

    names = [f"{'ner' if i % 2 == 0 else 'cls'}{i}" for i in range(len(paths))]
    args = server_args(names, paths, ["--max-batch", "16", "--batch-wait-ms", "5", "--max-queue", str(max_queue),
                                      "--max-request-tokens", "2048"])
    server, url = start_server(args, timeout=600)
    statuses: dict = {"counts": {}, "lock": threading.Lock()}
    try:
        stop = time.time() + seconds
        threads = [threading.Thread(target=hostile_client, args=(url, names, words, stop, i, statuses))
                   for i in range(clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        health = http.get(f"{url}/health", timeout=10).status_code
        ready = http.get(f"{url}/ready", timeout=10).status_code
    finally:
        server.terminate()
        server.wait(timeout=30)
    counts = [{"request": kind, "status": str(status), "count": n}
              for (kind, status), n in sorted(statuses["counts"].items(), key=lambda kv: (kv[0][0], str(kv[0][1])))]
    return {"clients": clients, "seconds": seconds, "max_queue": max_queue, "counts": counts,
            "health_after": health, "ready_after": ready}


def memory_rows(names: list[str], paths: list[Path], rows: int, baseline: float) -> tuple[list[dict], Engine]:
    """Backbone and per-task memory with 1, 2, 4 and 8 tasks loaded; and the last (8-task) engine."""
    memory = []
    for count in (1, 2, 4, 8):
        engine = Engine([f"{n}={p}" for n, p in zip(names[:count], paths[:count])], max_rows=rows)
        sizes = engine.memory()
        per_task = [v for k, v in sizes.items() if k != "backbone_bytes"]
        memory.append({"tasks": count, "backbone_mib": sizes["backbone_bytes"] / 2**20,
                       "per_task_mib": statistics.fmean(per_task) / 2**20, "rss_mib": rss_mib(),
                       "rss_above_start_mib": rss_mib() - baseline})
    return memory, engine


def overload_bodies(names: list[str], words: int, count: int = 32) -> list[bytes]:
    """Valid request bodies of the served tasks in turn, for wrk (``serving_overload.py``)."""
    rng = random.Random(9000)
    asked = [request(names[i % len(names)], rng, words) for i in range(count)]
    return [json.dumps({"task": task, "input": payload}).encode() for task, payload in asked]


def run_serving(model: str | None = None, rows: int = 32, words: int = 20, seconds: float = 60.0, clients: int = 16,
                out: Path | None = None,
                more: Callable[[list[str], list[Path], dict], None] | None = None,
                overload: OverloadOptions | None = None) -> Path:
    """Measure memory, throughput and the server under load, then overload it with wrk (``overload``: its
    seconds per level, where the server runs its engine); returns the Markdown page.

    ``more(names, artifacts, result)``, when given, adds its phases' results to ``result`` on the served
    artifacts (the CLI passes ``serving_faults.fault_phases``: this module must not import that one, which
    builds on it)."""
    keep_large_allocations()
    model = model or DEFAULT_MODEL
    result = {"environment": environment(), "settings": {"rows": rows, "words": words, "server_tasks": 4,
                                                         "model": model}}
    with tempfile.TemporaryDirectory() as tmp:
        names = [f"{'ner' if i % 2 == 0 else 'cls'}{i}" for i in range(8)]  # the name says the input form
        same = make_tasks(Path(tmp) / "same", 8, model, (32,))
        mixed = make_tasks(Path(tmp) / "mixed", 8, model, (8, 16, 32))
        result["memory"], engine = memory_rows(names, mixed, rows, rss_mib())
        print("throughput", flush=True)
        result["throughput"] = throughput(Engine([f"{n}={p}" for n, p in zip(names, same)], max_rows=rows),
                                          rows, words, 2, 5)
        result["throughput_mixed_prefix_lengths"] = throughput(engine, rows, words, 2, 5)
        del engine
        print("server load", flush=True)
        result["load"] = load_test(mixed[:4], seconds, clients, words)
        print("server under overload and hostile input", flush=True)
        result["hostile"] = hostile_load_test(mixed[:4], seconds / 2, 2 * clients, words, max_queue=clients)
        if more is not None:
            more(names[:4], mixed[:4], result)
        print("overload (wrk)", flush=True)
        result["overload_wrk"] = overload_phase(names[:4], mixed[:4], overload_bodies(names[:4], words), overload)
    return write_results(out or layout.RESULTS, "serving", result, serving_markdown(result))


def run_overload_only(model: str | None, words: int, overload: OverloadOptions, out: Path | None = None) -> Path:
    """Only the wrk overload phase, on the 4 mixed-prefix tasks the full run serves (``--only overload``), to
    compare servers (``--engine-in``) in a minute; writes ``serving_overload.{md,json}``."""
    keep_large_allocations()
    model = model or DEFAULT_MODEL
    result = {"environment": environment(), "settings": {"words": words, "server_tasks": 4, "model": model}}
    with tempfile.TemporaryDirectory() as tmp:
        names = [f"{'ner' if i % 2 == 0 else 'cls'}{i}" for i in range(4)]
        paths = make_tasks(Path(tmp) / "mixed", 4, model, (8, 16, 32))
        print(f"overload (wrk), the engine in a {overload.engine_in}", flush=True)
        result["overload_wrk"] = overload_phase(names, paths, overload_bodies(names, words), overload)
    page = ("# Serving under overload (wrk)\n\nProduced by `python -m benchmarks serving --only overload`.\n\n"
            + environment_markdown(result["environment"]) + wrk_section(result))
    return write_results(out or layout.RESULTS, "serving_overload", result, page)


if __name__ == "__main__":  # the old spelling of `python -m benchmarks serving`
    forward("serving")

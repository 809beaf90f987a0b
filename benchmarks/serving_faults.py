"""The serving benchmark's load-and-fault phases, each bounded in clients and seconds, on 127.0.0.1 only.

    baseline   one client posting valid requests one after another: the unloaded latency
    overload   a server with a small queue driven by 4x the clients it can hold: who is accepted, who is
               refused (503/429) and how fast the refusal comes
    soak       steady load for minutes: the server process's RSS (VmRSS) after a warm-up and at the end
    faults     one poison request (422) in 16, clients that hang up before their answer, SIGTERM under load
    equal      (Python API) each request's answer alone and inside a mixed batch of several tasks, per precision

One server (the load test's flags) serves the baseline, the soak and the faults, in that order, since the
SIGTERM phase ends it; the overload phase has its own, with the small queue. A phase lasts its seconds plus
at most one client timeout. ``fault_phases(options)`` is the hook ``run_serving`` calls with the artifacts.
"""
from __future__ import annotations

import json
import random
import signal
import socket
import struct
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import urlsplit

from urllib3.exceptions import NewConnectionError

from tasks.common.errors import UsageError
from tasks.serve.engine import Engine
from tasks.serve.launch import start_server, stop_server

from .serving import HOSTILE, Tally, client, percentile, request, right_answer, rss_tree_mib, server_args

CLIENT_TIMEOUT = 120.0  # past the server's own --request-timeout (60 s): the server answers first, with 503
DRAIN_SECONDS = 20.0
JSON = {"content-type": "application/json"}
# one body maker: (rng, the client's request number) -> (kind, task, body, the text whose answer is checked)
Maker = Callable[[random.Random, int], tuple[str, str, bytes, str]]


@dataclass
class FaultOptions:
    """How long and how wide each phase runs (the CLI derives them from its flags)."""

    words: int = 20
    clients: int = 16  # the soak's clients (the load test's)
    baseline_seconds: float = 20.0
    overload_seconds: float = 60.0
    soak_seconds: float = 300.0
    fault_seconds: float = 20.0  # each of poison and hang-ups; SIGTERM comes after a quarter of it
    fault_clients: int = 8
    max_batch: int = 16  # the overload server's
    max_queue: int = 16
    equal_requests: int = 48
    equal_batch: int = 8
    precisions: tuple[str, ...] = ("fp32", "int8", "bf16")


@dataclass
class Sent:
    """One request as its client saw it."""

    kind: str  # "valid" or "poison"
    at: float  # perf_counter when it was posted
    took: float = 0.0
    status: int | None = None  # None: no HTTP status came back
    error: str = ""  # why not: the exception's type
    at_socket: bool = False  # the connection was refused: no listener any more, nothing was sent
    right: bool = True  # a valid 200 came from the task asked, in its output form


# --------------------------------------------------------------------------- clients
def valid_bodies(names: list[str], words: int) -> Maker:
    def make(rng: random.Random, number: int) -> tuple[str, str, bytes, str]:
        task, payload = request(rng.choice(names), rng, words)
        return "valid", task, json.dumps({"task": task, "input": payload}).encode(), next(iter(payload.values()))
    return make


def with_poison(names: list[str], words: int, every: int = 16) -> Maker:
    """Valid bodies, and a lone surrogate in valid JSON as every ``every``-th request (the server answers 422)."""
    ner, valid = next(n for n in names if n.startswith("ner")), valid_bodies(names, words)

    def make(rng: random.Random, number: int) -> tuple[str, str, bytes, str]:
        if number % every == every - 1:
            return "poison", ner, HOSTILE["lone surrogate"](ner), ""
        return valid(rng, number)
    return make


def refused_at_socket(err: BaseException) -> bool:
    """Whether a requests error is a connection that was never made (refused, or reset while connecting)."""
    todo, seen = [err], set()
    while todo:
        item = todo.pop()
        if item is None or id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, (ConnectionRefusedError, NewConnectionError)):  # no connection: nothing was sent
            return True
        todo += [item.__cause__, item.__context__, getattr(item, "reason", None),
                 *(a for a in item.args if isinstance(a, BaseException))]
    return False


def post_until(url: str, seed: int, until: Callable[[], bool], make: Maker, out: list[Sent],
               lock: threading.Lock) -> None:
    """One client: post until ``until()``, or until its connection is refused (the server is gone)."""
    import requests as http

    rng, session, number = random.Random(seed), http.Session(), 0
    while not until():
        kind, task, body, text = make(rng, number)
        number += 1
        record = Sent(kind, time.perf_counter())
        try:
            response = session.post(f"{url}/predict", data=body, headers=JSON, timeout=CLIENT_TIMEOUT)
            record.status = response.status_code
            if kind == "valid" and response.status_code == 200:
                record.right = right_answer(response.json(), task, text)
        except http.RequestException as err:
            record.error, record.at_socket = type(err).__name__, refused_at_socket(err)
        record.took = time.perf_counter() - record.at
        with lock:
            out.append(record)
        if record.at_socket:
            return


def start_clients(url: str, clients: int, until: Callable[[], bool], make: Maker,
                  seed: int) -> tuple[list[threading.Thread], list[Sent]]:
    records: list[Sent] = []
    lock = threading.Lock()
    threads = [threading.Thread(target=post_until, args=(url, seed + i, until, make, records, lock), daemon=True)
               for i in range(clients)]
    for thread in threads:
        thread.start()
    return threads, records


def drive(url: str, clients: int, seconds: float, make: Maker, seed: int) -> list[Sent]:
    """``clients`` threads posting for ``seconds``; every request they sent."""
    stop = time.perf_counter() + seconds
    threads, records = start_clients(url, clients, lambda: time.perf_counter() >= stop, make, seed)
    for thread in threads:
        thread.join()
    return records


def hang_up(url: str, body: bytes, stop: float, abrupt: bool, counts: Counter, lock: threading.Lock) -> None:
    """Open a connection, send a whole valid request, close before the answer; again until ``stop``.
    ``abrupt``: close with a reset (SO_LINGER 0) instead of a FIN."""
    where = urlsplit(url)
    data = (f"POST /predict HTTP/1.1\r\nHost: {where.netloc}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body
    while time.perf_counter() < stop:
        try:
            with socket.create_connection((where.hostname, where.port), timeout=10) as conn:
                if abrupt:
                    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                conn.sendall(data)
        except OSError:  # the server is gone: the valid clients' counts say so
            return
        with lock:
            counts["hung up"] += 1
        time.sleep(0.02)  # mixed in among the valid clients, not a flood of connections


# --------------------------------------------------------------------------- summaries
def latency(seconds: list[float]) -> dict:
    """count, p50/p95/p99 and max in ms."""
    ms = {f"p{round(100 * q)}_ms": percentile(seconds, q) for q in (0.5, 0.95, 0.99)}
    ms["max_ms"] = max(seconds, default=None)
    return {"count": len(seconds), **{k: None if v is None else round(1000 * v, 2) for k, v in ms.items()}}


def outcome(record: Sent) -> str:
    if record.status is not None:
        return str(record.status) if record.right else "200 from another task"
    return "refused at the socket" if record.at_socket else f"no answer: {record.error}"


def valid_summary(records: list[Sent]) -> dict:
    """The valid requests: answered right (200 from the task asked), refused 503 (counted apart), failed."""
    valid = [r for r in records if r.kind == "valid"]
    ok = sum(r.status == 200 and r.right for r in valid)
    refused = sum(r.status == 503 for r in valid)
    failures = Counter(outcome(r) for r in valid if r.status not in (200, 503) or not r.right)
    return {"sent": len(valid), "ok": ok, "refused_503": refused, "failed": len(valid) - ok - refused,
            "failures": dict(failures.most_common(5))}


def health(url: str) -> tuple[int, dict]:
    import requests as http

    response = http.get(f"{url}/health", timeout=10)
    return response.status_code, response.json() if response.ok else {}


# --------------------------------------------------------------------------- phases
def baseline(url: str, names: list[str], words: int, seconds: float) -> dict:
    """One client, one request at a time: the latency with nothing else queued."""
    records = drive(url, 1, seconds, valid_bodies(names, words), seed=2000)
    answered = [r.took for r in records if r.status == 200 and r.right]
    return {"clients": 1, "seconds": seconds, "requests": len(records),
            "not_answered": len(records) - len(answered), "latency": latency(answered)}


def overload(names: list[str], paths: list[Path], words: int, seconds: float, max_batch: int,
             max_queue: int) -> dict:
    """4 x (queue + batch) clients against a small queue: accepted (200), refused (503/429), anything else."""
    flags = ["--max-batch", str(max_batch), "--max-queue", str(max_queue), "--batch-wait-ms", "5"]
    clients = 4 * (max_queue + max_batch)
    server, url = start_server(server_args(names, paths, flags), timeout=600)
    try:
        records = drive(url, clients, seconds, valid_bodies(names, words), seed=3000)
        status, counters = health(url)
    finally:
        stop_server(server, 30)
    accepted = [r.took for r in records if r.status == 200 and r.right]
    refused = [r.took for r in records if r.status in (503, 429)]
    other = Counter(outcome(r) for r in records if not (r.status == 200 and r.right) and r.status not in (503, 429))
    return {"flags": " ".join(flags), "clients": clients, "seconds": seconds, "requests": len(records),
            "accepted": latency(accepted),
            "refused": {**latency(refused), "within_50ms": sum(t <= 0.05 for t in refused)},
            "other": sum(other.values()), "other_kinds": dict(other.most_common(5)), "health_after": status,
            "server_refused": counters.get("refused")}


def soak(server: subprocess.Popen, url: str, names: list[str], words: int, clients: int, seconds: float) -> dict:
    """Steady load for ``seconds``: the server's RSS (with its engine process's) after a warm-up (the first tenth)
    and when the load ends."""
    tally, stop = Tally(), time.time() + seconds
    threads = [threading.Thread(target=client, args=(url, names, words, stop, 4000 + i, tally))
               for i in range(clients)]
    for thread in threads:
        thread.start()
    time.sleep(seconds / 10)
    start, peak = rss_tree_mib(server.pid), 0.0
    while time.time() < stop:  # sampled for the peak: a leak that is freed by the end still shows
        time.sleep(min(5.0, max(0.0, stop - time.time())))
        peak = max(peak, rss_tree_mib(server.pid))
    for thread in threads:
        thread.join()
    end = rss_tree_mib(server.pid)
    return {"clients": clients, "seconds": seconds, "warmup_seconds": seconds / 10,
            "requests": len(tally.latencies), "failed": len(tally.failed),
            "answered_by_another_task": len(tally.wrong), "rss_start_mib": round(start, 1),
            "rss_end_mib": round(end, 1), "rss_peak_mib": round(max(peak, end), 1),
            "growth_pct": round(100 * (end - start) / start, 2)}


def poison(url: str, names: list[str], words: int, clients: int, seconds: float) -> dict:
    """One request in 16 carries a lone surrogate: each gets its 422, no valid request fails for it."""
    records = drive(url, clients, seconds, with_poison(names, words), seed=5000)
    poisoned = [r for r in records if r.kind == "poison"]
    return {"clients": clients, "seconds": seconds, "requests": len(records),
            "poison": {"sent": len(poisoned), "got_422": sum(r.status == 422 for r in poisoned),
                       "statuses": dict(Counter(outcome(r) for r in poisoned))},
            "valid": valid_summary(records)}


def hang_ups(url: str, names: list[str], words: int, clients: int, seconds: float) -> dict:
    """Clients that hang up before their answer, among valid ones: the others are answered, the server stays up."""
    counts, lock, stop = Counter(), threading.Lock(), time.perf_counter() + seconds
    body = json.dumps({"task": names[0], "input": request(names[0], random.Random(0), words)[1]}).encode()
    quitters = [threading.Thread(target=hang_up, args=(url, body, stop, i % 2 == 1, counts, lock), daemon=True)
                for i in range(max(1, clients // 4))]
    for thread in quitters:
        thread.start()
    records = drive(url, clients, seconds, valid_bodies(names, words), seed=6000)
    for thread in quitters:
        thread.join()
    status, counters = health(url)
    return {"clients": clients, "hanging_up_clients": len(quitters), "seconds": seconds, "hung_up": counts["hung up"],
            "valid": valid_summary(records), "health_after": status,
            "server_saw_disconnected": counters.get("disconnected")}


def sigterm(server: subprocess.Popen, url: str, names: list[str], words: int, clients: int, seconds: float) -> dict:
    """SIGTERM after ``seconds`` of load: every request sent gets a status, or its connection is refused once
    the listener is closed; none is lost (accepted by the socket, then no status)."""
    done = threading.Event()
    threads, records = start_clients(url, clients, done.is_set, valid_bodies(names, words), seed=7000)
    time.sleep(seconds)
    signalled = time.perf_counter()
    server.send_signal(signal.SIGTERM)
    try:
        code: int | None = server.wait(timeout=DRAIN_SECONDS + 60)
    except subprocess.TimeoutExpired:
        code = None
        stop_server(server, 1)
    exited = time.perf_counter() - signalled
    time.sleep(0.5)  # the clients still posting meet the closed listener
    done.set()
    for thread in threads:
        thread.join()
    with_status = [r for r in records if r.status is not None]
    before = [r for r in records if r.at < signalled]
    lost = [r for r in records if r.status is None and not r.at_socket]
    return {"clients": clients, "signal_after_seconds": seconds, "drain_seconds": DRAIN_SECONDS,
            "requests": len(records), "answered": sum(r.status == 200 for r in records),
            "refused_with_status": sum(r.status == 503 for r in records),
            "other_status": sum(r.status not in (200, 503) for r in with_status),
            "refused_at_socket": sum(r.at_socket for r in records), "lost": len(lost),
            "lost_errors": dict(Counter(r.error for r in lost).most_common(5)),
            "sent_before_signal": len(before), "before_signal_with_status": sum(r.status is not None for r in before),
            "exit_code": code, "exit_seconds": round(exited, 2)}


# --------------------------------------------------------------------------- same answer alone and mixed
def same(a: object, b: object) -> bool:
    """Two answers agree: equal JSON, or errors of one type and message."""
    if isinstance(a, BaseException) or isinstance(b, BaseException):
        return type(a) is type(b) and str(a) == str(b)
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def equal_answers(names: list[str], paths: list[Path], words: int, count: int, batch: int,
                  precisions: tuple[str, ...]) -> list[dict]:
    """Per precision, the share of ``count`` requests (tasks interleaved, lengths from 1 to ``words`` words, so
    each batch mixes tasks and pads) whose answer in a mixed batch of ``batch`` equals their answer alone; a
    precision this machine refuses (bf16 without native support, int8 on a GPU) is skipped with the reason."""
    rng = random.Random(8000)
    asked = [request(names[i % len(names)], rng, rng.randint(1, words)) for i in range(count)]
    rows = []
    for precision in precisions:
        try:
            engine = Engine([f"{n}={p}" for n, p in zip(names, paths)], precision=precision)
        except UsageError as err:
            rows.append({"precision": precision, "skipped": str(err)})
            continue
        alone = [engine.answer([one])[0] for one in asked]
        mixed = [answer for i in range(0, count, batch) for answer in engine.answer(asked[i: i + batch])]
        equal = sum(same(a, b) for a, b in zip(alone, mixed))
        rows.append({"precision": precision, "requests": count, "batch": batch, "tasks": len(names),
                     "equal": equal, "share": equal / count,
                     "errors": sum(isinstance(a, BaseException) for a in alone)})
        del engine
    return rows


# --------------------------------------------------------------------------- all phases
def run_faults(names: list[str], paths: list[Path], options: FaultOptions) -> dict:
    """Every phase on the artifacts ``paths`` (served as ``names``); the results' new keys."""
    o, out = options, {"fault_settings": asdict(options)}
    flags = ["--max-batch", "16", "--batch-wait-ms", "5", "--drain-seconds", f"{DRAIN_SECONDS:g}"]
    out["fault_settings"]["server_flags"] = " ".join(flags)
    server, url = start_server(server_args(names, paths, flags), timeout=600)
    try:
        print("unloaded baseline", flush=True)
        out["baseline"] = baseline(url, names, o.words, o.baseline_seconds)
        print("soak", flush=True)
        out["soak"] = soak(server, url, names, o.words, o.clients, o.soak_seconds)
        print("faults under load", flush=True)
        out["faults"] = {"poison": poison(url, names, o.words, o.fault_clients, o.fault_seconds),
                         "hang_ups": hang_ups(url, names, o.words, o.fault_clients, o.fault_seconds),
                         "sigterm": sigterm(server, url, names, o.words, o.fault_clients, o.fault_seconds / 4)}
    finally:
        stop_server(server, 30)  # the SIGTERM phase has ended it already, unless an earlier phase failed
    print("overload", flush=True)
    out["overload"] = overload(names, paths, o.words, o.overload_seconds, o.max_batch, o.max_queue)
    print("same answer alone and in a mixed batch", flush=True)
    out["equal_answers"] = equal_answers(names, paths, o.words, o.equal_requests, o.equal_batch, o.precisions)
    return out


def fault_phases(options: FaultOptions) -> Callable[[list[str], list[Path], dict], None]:
    """The hook ``run_serving`` calls with its served artifacts and its results dict."""
    def run(names: list[str], paths: list[Path], result: dict) -> None:
        result.update(run_faults(names, paths, options))
    return run

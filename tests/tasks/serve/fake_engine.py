"""A fake ``Engine`` for the serving tests (the engine's public contract, none of its model), and helpers to
run an app on a real uvicorn in a thread and to speak raw HTTP to it.

Inputs steer the fake: ``{"raise": true}`` makes ``answer`` raise for its whole batch, ``{"raise_base": true}``
raise a BaseException subclass, ``{"error": true}`` returns an Exception object for that request only,
``{"refuse": true}`` a RequestError (422), ``{"nan": true}`` an answer JSON cannot hold, ``{"hold": PATH}``
waits until the file PATH exists (for a subprocess). Several inputs (``Inputs``) get one answer each. ``gate``
(a threading.Event, set) makes every call wait while it is cleared; ``entered`` is set when a call starts. Every
batch the engine saw is in ``calls``. ``EngineProcess(FakeEngine)`` runs it in an engine process (its ``gate`` and
``calls`` then stay there: steer it with inputs).
"""
from __future__ import annotations

import contextlib
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tasks.common.errors import DataError
from tasks.serve.errors import RequestError, UnknownTask
from tasks.serve.protocol import Inputs


class Poison(RuntimeError):
    pass


class Weird(BaseException):
    """Neither Exception nor KeyboardInterrupt/SystemExit: the worker must survive it all the same."""


@dataclass
class FakeFamily:
    name: str = "fake"


@dataclass
class FakeTask:
    name: str
    family: FakeFamily = field(default_factory=FakeFamily)
    method: str = "prefix"
    record: dict = field(default_factory=lambda: {"labels": ["a", "b"]})
    artifact: Path = Path("/secret/place/runs/fake-artifact")
    shared: bool = True


class FakeEngine:
    backbone_name = "fake-encoder"
    fingerprint = "fake-fingerprint"

    def __init__(self, tasks: tuple[str, ...] = ("echo",)) -> None:
        self.tasks = {name: FakeTask(name) for name in tasks}
        self.calls: list[list[tuple[str, Any]]] = []
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()
        self._lock = threading.Lock()

    def seen(self) -> list[Any]:
        """Every input the engine was asked to answer (retries included)."""
        with self._lock:
            return [payload for call in self.calls for _, payload in call]

    def answer(self, requests: list[tuple[str, Any]]) -> list:
        with self._lock:
            self.calls.append(list(requests))
        self.entered.set()
        if not self.gate.wait(timeout=60):
            raise RuntimeError("the test never opened the gate")
        return [[self._one(task, item) for item in payload] if isinstance(payload, Inputs) else
                self._one(task, payload) for task, payload in requests]

    def _one(self, task: str, payload: Any) -> Any:
        steer = payload if isinstance(payload, dict) else {}
        if steer.get("hold"):
            Path(str(steer["hold"]) + ".started").touch()
            while not Path(steer["hold"]).exists():
                time.sleep(0.02)
        if steer.get("raise"):
            raise Poison(f"poisoned by {payload}")
        if steer.get("raise_base"):
            raise Weird("not even an Exception")
        if task not in self.tasks:
            return UnknownTask(f"unknown task '{task}'")
        if not isinstance(payload, dict):
            return RequestError(f"task '{task}': the input must be an object")
        if steer.get("refuse"):
            return RequestError(f"task '{task}': cannot read this input")
        if steer.get("error"):
            return ValueError("broken for this one")
        if steer.get("nan"):
            return {"score": float("nan")}
        return {"echo": payload}


def broken_engine() -> FakeEngine:
    """An engine that cannot load (an artifact the user must fix), for the engine process's load error."""
    raise DataError("runs/broken", None, "not an artifact: config.json is missing")


# --------------------------------------------------------------------------- a real uvicorn in a thread
def wait_until(condition, what: str, timeout: float = 30) -> None:
    """Poll ``condition`` until it holds; AssertionError naming ``what`` after ``timeout`` seconds."""
    deadline = time.time() + timeout
    while not condition():
        if time.time() > deadline:
            raise AssertionError(f"never happened: {what}")
        time.sleep(0.01)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def uvicorn_thread(app, **config):
    """``with uvicorn_thread(app) as (host, port):`` the app served by uvicorn in a thread (no signals)."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", **config))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 30
    while not server.started:
        if time.time() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield "127.0.0.1", port
    finally:
        server.should_exit = True
        thread.join(timeout=15)


def raw_request(host: str, port: int, head: bytes, body: bytes = b"", timeout: float = 10) -> tuple[int, dict, bytes]:
    """Send ``head`` (request line and headers, no blank line) and ``body`` as they are; (status, headers, body)."""
    with socket.create_connection((host, port), timeout=timeout) as conn:
        conn.sendall(head + b"\r\n\r\n" + body)
        data = b""
        while True:
            try:
                chunk = conn.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            data += chunk
            if b"\r\n\r\n" in data:
                top, _, rest = data.partition(b"\r\n\r\n")
                headers = {k.strip().lower().decode(): v.strip().decode()
                           for k, _, v in (line.partition(b":") for line in top.split(b"\r\n")[1:])}
                if len(rest) >= int(headers.get("content-length", 10**9)):
                    break
    top, _, rest = data.partition(b"\r\n\r\n")
    lines = top.split(b"\r\n")
    headers = {k.strip().lower().decode(): v.strip().decode()
               for k, _, v in (line.partition(b":") for line in lines[1:])}
    return int(lines[0].split()[1]), headers, rest

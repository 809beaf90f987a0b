"""Starting ``python -m tasks.serve`` as a subprocess on a free localhost port (tests, benchmarks).

``start_server`` returns once the server is ready and terminates the child on every way it can fail
(the child exits, a probe times out or errs, the deadline passes, Ctrl-C); ``stop_server`` ends it
(SIGTERM, then SIGKILL after ``timeout``); ``serving`` is both as a context manager.
"""
from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def stop_server(server: subprocess.Popen, timeout: float = 10) -> int:
    """SIGTERM, wait up to ``timeout`` s (the server drains), then SIGKILL; the exit status."""
    if server.poll() is None:
        server.terminate()
        try:
            server.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    return server.returncode


def server_log(server: subprocess.Popen, tail: int = 2000) -> str:
    """The last ``tail`` characters the server printed (stdout and stderr)."""
    log = getattr(server, "log", None)
    if log is None:
        return ""
    log.seek(0)
    return log.read()[-tail:]


def start_server(args: list[str], env: dict[str, str] | None = None, timeout: float = 120,
                 module: str = "tasks.serve", probe: str = "/ready") -> tuple[subprocess.Popen, str]:
    """(the server process, its base URL) once ``GET probe`` answers 200; RuntimeError if it exits first or
    does not answer within ``timeout`` s. ``python -m module ARGS --port PORT``; its output is in
    ``server_log(process)``."""
    import requests

    port = free_port()
    log = tempfile.TemporaryFile(mode="w+")  # a file, not a pipe: a long run's output must never block the server
    server = subprocess.Popen([sys.executable, "-m", module, *map(str, args), "--port", str(port)], cwd=REPO,
                              env=env or {**os.environ, "PYTHONPATH": str(REPO)}, stdout=log, stderr=subprocess.STDOUT,
                              text=True)
    server.log = log  # type: ignore[attr-defined]
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + timeout
    try:
        while time.time() < deadline:
            if server.poll() is not None:
                raise RuntimeError(f"the server exited ({server.returncode}): {server_log(server)}")
            try:
                if requests.get(f"{url}{probe}", timeout=1).ok:
                    return server, url
            except requests.RequestException:  # not listening yet, or busy loading (a read timeout)
                pass
            time.sleep(0.1)
        raise RuntimeError(f"the server did not answer {probe} within {timeout:g} s: {server_log(server)}")
    except BaseException:
        stop_server(server)
        raise


@contextlib.contextmanager
def serving(args: list[str], env: dict[str, str] | None = None, timeout: float = 120,
            module: str = "tasks.serve", stop_timeout: float = 10) -> Iterator[tuple[subprocess.Popen, str]]:
    """``with serving(args) as (process, url):`` the server runs inside the block and is stopped after it."""
    server, url = start_server(args, env, timeout, module)
    try:
        yield server, url
    finally:
        stop_server(server, stop_timeout)

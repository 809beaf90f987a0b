"""Starting ``python -m tasks.serve`` as a subprocess on a free localhost port (tests, benchmarks)."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(args: list[str], env: dict[str, str] | None = None,
                 timeout: float = 120) -> tuple[subprocess.Popen, str]:
    """(the server process, its base URL) once ``GET /health`` answers; RuntimeError if it exits first."""
    import requests

    port = free_port()
    log = tempfile.TemporaryFile(mode="w+")  # a file, not a pipe: a long run's output must never block the server
    server = subprocess.Popen([sys.executable, "-m", "tasks.serve", *map(str, args), "--port", str(port)], cwd=REPO,
                              env=env or {**os.environ, "PYTHONPATH": str(REPO)}, stdout=log, stderr=subprocess.STDOUT,
                              text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + timeout
    while time.time() < deadline:
        if server.poll() is not None:
            log.seek(0)
            raise RuntimeError(f"the server exited: {log.read()[-2000:]}")
        try:
            if requests.get(f"{url}/health", timeout=1).ok:
                return server, url
        except requests.ConnectionError:
            time.sleep(0.1)
    server.terminate()
    raise RuntimeError(f"the server did not answer /health within {timeout:g} s")

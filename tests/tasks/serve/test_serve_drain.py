"""A real ``run_server`` subprocess (the fake engine): SIGTERM refuses new requests with 503 and answers the
in-flight ones, within ``--drain-seconds``; ``start_server`` never leaks its child."""
from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests
from conftest import subprocess_env

from tasks.serve import launch

HERE = Path(__file__).resolve().parent


def env() -> dict[str, str]:
    return subprocess_env(PYTHONPATH=os.pathsep.join([str(launch.REPO), str(HERE)]))


def wait_for_file(path: Path, timeout: float = 60) -> None:
    deadline = time.time() + timeout
    while not path.exists():
        if time.time() > deadline:
            raise AssertionError(f"{path} never appeared")
        time.sleep(0.02)


def held(url: str, gate: Path):
    return requests.post(f"{url}/predict", json={"task": "echo", "input": {"hold": str(gate)}}, timeout=120)


@contextmanager
def sigterm_while_holding(gate: Path, drain_seconds: str,
                          engine: str = "--engine-process") -> Iterator[tuple[subprocess.Popen, str, Future]]:
    """A fake-engine server computing one request (until ``gate`` exists) that has just been sent SIGTERM."""
    server, url = launch.start_server(["--drain-seconds", drain_seconds, engine], env(), module="fake_server")
    try:
        with ThreadPoolExecutor(max_workers=1) as pool:
            in_flight = pool.submit(held, url, gate)
            wait_for_file(Path(f"{gate}.started"))
            server.send_signal(signal.SIGTERM)
            yield server, url, in_flight
    finally:
        launch.stop_server(server)


@pytest.mark.parametrize("engine", ["--engine-process", "--no-engine-process"])
def test_sigterm_answers_the_in_flight_request_and_refuses_new_ones(tmp_path, engine):
    gate = tmp_path / "gate"
    with sigterm_while_holding(gate, "60", engine) as (server, url, in_flight):
        deadline = time.time() + 30
        while requests.get(f"{url}/ready", timeout=10).status_code == 200:
            assert time.time() < deadline, "never stopped being ready"
            time.sleep(0.02)
        refused = requests.post(f"{url}/predict", json={"task": "echo", "input": {}}, timeout=10)
        assert refused.status_code == 503 and "shutting down" in refused.json()["error"]
        assert refused.headers["retry-after"] == "1"
        assert requests.get(f"{url}/health", timeout=10).json()["draining"] is True
        assert server.poll() is None  # still draining: the held request is in flight
        gate.touch()
        answer = in_flight.result()
        assert answer.status_code == 200 and answer.json()["output"] == {"echo": {"hold": str(gate)}}
        assert server.wait(timeout=30) in (0, -signal.SIGTERM), launch.server_log(server)


def test_a_request_still_in_flight_after_the_drain_bound_gets_503_and_the_process_exits(tmp_path):
    with sigterm_while_holding(tmp_path / "never", "1") as (server, _, in_flight):
        answer = in_flight.result()
        assert answer.status_code == 503 and "--drain-seconds" in answer.json()["error"]
        # the engine process is still stuck on the request: the server exits all the same (and ends it)
        assert server.wait(timeout=30) in (0, -signal.SIGTERM), launch.server_log(server)


def test_start_server_terminates_its_child_when_the_server_never_answers(monkeypatch):
    started = []
    real_popen = subprocess.Popen

    def recording_popen(*args, **kwargs):
        started.append(real_popen(*args, **kwargs))
        return started[-1]

    monkeypatch.setattr(subprocess, "Popen", recording_popen)
    with pytest.raises(RuntimeError, match="did not answer /ready"):
        launch.start_server([], env(), timeout=3, module="silent_server")  # every probe: a read timeout
    assert len(started) == 1 and started[0].poll() is not None


def test_start_server_reports_a_child_that_exits():
    with pytest.raises(RuntimeError, match="the server exited"):
        launch.start_server(["--no-such-flag"], env(), module="fake_server")

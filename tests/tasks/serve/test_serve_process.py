"""The engine in a process of its own (``tasks/serve/worker.py``, the default of ``python -m tasks.serve``): the same
answers, task descriptions and schemas as the engine on a thread, per-request faults still per request, a load
error raised where the engine is built, and a killed engine process: its in-flight request and every later one
answered 503 in JSON (never a hang), ``/ready`` and ``/health`` 503 naming how it ended. No timing is asserted."""
from __future__ import annotations

import json
import os
import signal
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from conftest import save_tiny_model
from fake_engine import FakeEngine, broken_engine, wait_until
from served_tasks import REQUESTS, make_artifacts
from tasks.common.errors import UsageError
from tasks.serve.engine import Engine
from tasks.serve.server import create_app
from tasks.serve.settings import ServeSettings
from tasks.serve.worker import EngineProcess, load_engine

SETTINGS = ServeSettings(max_request_rows=6)


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory) -> list[str]:
    folder = tmp_path_factory.mktemp("process")
    return [str(p) for p in make_artifacts(save_tiny_model(folder / "encoder"), folder).values()]


@pytest.fixture(scope="module")
def both(artifacts):
    """(a client of the engine on a thread, a client of the same artifacts' engine in its own process)."""
    in_process = Engine(artifacts, SETTINGS)
    engine_process = EngineProcess(load_engine, artifacts, SETTINGS, threads=1)
    with TestClient(create_app(in_process, batch_wait_ms=1)) as thread, \
            TestClient(create_app(engine_process, batch_wait_ms=1)) as process:
        yield thread, process


def post(client: TestClient, body: dict) -> tuple[int, dict]:
    """The status and the answer (without its seconds)."""
    response = client.post("/predict", json=body)
    answer = response.json()
    answer.pop("seconds", None)
    return response.status_code, answer


def answers(client: TestClient, bodies: list[dict], together: bool = False) -> list[tuple[int, dict]]:
    """Each body's status and answer: one after another, or ``together`` (sharing batches)."""
    if not together:
        return [post(client, body) for body in bodies]
    with ThreadPoolExecutor(len(bodies)) as pool:
        return list(pool.map(lambda body: post(client, body), bodies))


def test_the_process_answers_as_the_thread_does(both):
    thread, process = both
    bodies = [{"task": task, "input": payload} for task, payload in REQUESTS]
    bodies += [{"task": "sst2", "inputs": [{"sentence": "a b"}, {"sentence": 3}, {"sentence": "c"}]},
               {"task": "nope", "input": {}}, {"task": "tiny-ner", "input": {"tokens": "not a list"}}]
    expected = answers(thread, bodies)
    assert [status for status, _ in expected] == [200] * (len(REQUESTS) + 1) + [404, 422]
    assert answers(process, bodies) == expected


def test_the_process_describes_the_tasks_as_the_thread_does(both):
    thread, process = both
    for path in ("/tasks", "/openapi.json"):
        assert process.get(path).json() == thread.get(path).json(), path
    info = {"thread": thread.get("/info").json(), "process": process.get("/info").json()}
    assert {mode: i.pop("engine_runs_in") for mode, i in info.items()} == {"thread": "thread", "process": "process"}
    assert info["process"] == info["thread"]
    health = process.get("/health").json()
    assert health["engine"]["runs_in"] == "process" and health["engine"]["alive"] is True
    assert health["engine"]["pid"] != os.getpid()
    assert 'serve_forward_rows_count' in process.get("/metrics").text  # the engine process reports its forwards
    assert float(next(line.split()[-1] for line in process.get("/metrics").text.splitlines()
                      if line.startswith("serve_forward_rows_count"))) > 0


@pytest.fixture
def fake_process():
    """A fake engine in its own process, served by an app; its TestClient."""
    with TestClient(create_app(EngineProcess(FakeEngine), batch_wait_ms=1, poll_seconds=0.05)) as client:
        yield client


def test_a_faulty_request_fails_alone_with_the_engine_in_its_own_process(fake_process):
    inputs = [{"n": 1}, {"raise": True}, {"refuse": True}, {"nan": True}, {"error": True}, {"n": 2}]
    got = answers(fake_process, [{"task": "echo", "input": item} for item in inputs], together=True)
    assert [status for status, _ in got] == [200, 500, 422, 500, 500, 200]
    assert got[0][1]["output"] == {"echo": {"n": 1}} and got[5][1]["output"] == {"echo": {"n": 2}}
    assert "Poison" in got[1][1]["error"] and "not JSON" in got[3][1]["error"]
    many = fake_process.post("/predict", json={"task": "echo", "inputs": [{"n": 3}, {"refuse": True}]}).json()
    assert [item.get("status") for item in many["outputs"]] == [None, 422]
    assert fake_process.get("/ready").status_code == 200


def test_a_killed_engine_process_answers_503_and_is_not_ready(fake_process, tmp_path):
    gate = tmp_path / "never"
    pid = fake_process.get("/health").json()["engine"]["pid"]
    with ThreadPoolExecutor(1) as pool:
        held = pool.submit(fake_process.post, "/predict", json={"task": "echo", "input": {"hold": str(gate)}})
        wait_until(lambda: Path(f"{gate}.started").exists(), "the engine process holds the request")
        os.kill(pid, signal.SIGKILL)
        in_flight = held.result(timeout=60)
    assert in_flight.status_code == 503 and "killed by SIGKILL" in in_flight.json()["error"]
    assert in_flight.headers["retry-after"] == "1"
    ready = fake_process.get("/ready")
    assert ready.status_code == 503 and "the engine process was killed by SIGKILL" in ready.json()["error"]
    later = fake_process.post("/predict", json={"task": "echo", "input": {"n": 1}})
    assert later.status_code == 503 and later.headers["retry-after"] == "1"
    assert json.loads(later.content)["status"] == 503
    health = fake_process.get("/health")
    assert health.status_code == 503 and health.json()["engine"]["alive"] is False
    assert "killed by SIGKILL" in health.json()["error"] and health.json()["ready"] is False


def test_a_load_error_of_the_engine_process_is_raised_where_it_is_built():
    with pytest.raises(UsageError, match="runs/broken: not an artifact"):
        EngineProcess(broken_engine)


def test_several_inputs_cross_the_pipe_as_inputs(fake_process):
    # ``Inputs`` (several inputs of one request) must stay Inputs in the engine process: one answer per input
    answer = fake_process.post("/predict", json={"task": "echo", "inputs": [{"n": 1}, {"n": 2}]}).json()
    assert [item["output"] for item in answer["outputs"]] == [{"echo": {"n": 1}}, {"echo": {"n": 2}}]

"""The server's bounds: body size before and while it is read, malformed bodies (400 JSON, never a 500 or a
blown stack), the batch token budget, a bounded queue (503 + Retry-After), per-request timeouts and
disconnected clients (their work never computed), readiness."""
from __future__ import annotations

import json
import socket
from concurrent.futures import ThreadPoolExecutor

import pytest
from fake_engine import FakeEngine, raw_request, uvicorn_thread, wait_until
from fastapi.testclient import TestClient

from tasks.serve import limits
from tasks.serve.server import create_app


def post(client, payload, task="echo"):
    return client.post("/predict", json={"task": task, "input": payload})


# --------------------------------------------------------------------------- malformed bodies
DEEP = b"[" * 10_000 + b"]" * 10_000


@pytest.mark.parametrize("body, words", [
    (b"\xff\xfe{}", "not valid UTF-8"),
    (b"{not json", "malformed JSON"),
    (b'{"task": "echo", "input": {"a": ' + DEEP + b"}}", "nested deeper than"),
    (b'{"task": "echo", "input": {"a": ' + b"[" * 65 + b"]" * 65 + b"}}", "nested deeper than"),
    (b'{"task": "echo", "input": {"n": ' + b"7" * 5000 + b"}}", "more than 4300 digits"),
    (b'{"task": "echo", "input": {"n": NaN}}', "NaN is not JSON"),
    (b"[1, 2]", "not a JSON array"),
    (b'"text"', "not a JSON string"),
    (b'{"input": {}}', '"task"'),
    (b'{"task": 3, "input": {}}', '"task" must be a non-empty string'),
    (b'{"task": "", "input": {}}', '"task" must be a non-empty string'),
    (b'{"task": "echo"}', '"input" is missing'),
    (b"", "malformed JSON"),
])
def test_every_malformed_body_is_a_json_400(body, words):
    engine = FakeEngine()
    with TestClient(create_app(engine)) as client:
        response = client.post("/predict", content=body, headers={"content-type": "application/json"})
        assert response.status_code == 400, response.text
        assert words in response.json()["error"] and response.json()["status"] == 400
        assert engine.calls == []
        assert post(client, {"ok": 1}).status_code == 200  # the server goes on


def test_an_input_nested_within_the_bound_is_answered():
    with TestClient(create_app(FakeEngine())) as client:
        nested = json.loads("[" * 60 + "]" * 60)
        assert post(client, {"a": nested}).status_code == 200


def test_unknown_paths_and_methods_answer_json():
    with TestClient(create_app(FakeEngine())) as client:
        assert client.get("/nope").status_code == 404 and "error" in client.get("/nope").json()
        assert client.get("/predict").status_code == 405 and "error" in client.get("/predict").json()


def test_tasks_name_artifacts_without_their_paths():
    with TestClient(create_app(FakeEngine())) as client:
        listing = client.get("/tasks").json()
        assert listing["echo"]["artifact"] == "fake-artifact" and "/secret" not in json.dumps(listing)


# --------------------------------------------------------------------------- body size
def test_a_declared_length_over_the_cap_is_refused_before_the_body_is_read():
    engine = FakeEngine()
    with uvicorn_thread(create_app(engine, max_body_bytes=1000)) as (host, port):
        head = (f"POST /predict HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {10**9}").encode()
        status, headers, body = raw_request(host, port, head)  # not one byte of the body is ever sent
        assert status == 413 and headers["connection"] == "close"
        error = json.loads(body)["error"]
        assert "at most 1000" in error and "--max-body-bytes" in error
    assert engine.calls == []


def test_a_chunked_body_is_cut_off_at_the_cap():
    engine = FakeEngine()
    with uvicorn_thread(create_app(engine, max_body_bytes=100)) as (host, port):
        head = (f"POST /predict HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
                "Transfer-Encoding: chunked").encode()
        chunk = b"40\r\n" + b" " * 64 + b"\r\n"  # 64 bytes a chunk, and no end: it would stream forever
        status, _, body = raw_request(host, port, head, chunk * 3)
        assert status == 413 and "--max-body-bytes" in json.loads(body)["error"]
        small = b'{"task": "echo", "input": {}}'
        status, _, body = raw_request(host, port, head, b"%x\r\n%s\r\n0\r\n\r\n" % (len(small), small))
        assert status == 200 and json.loads(body)["output"] == {"echo": {}}  # a chunked body under the cap is fine
    assert engine.seen() == [{}]


# --------------------------------------------------------------------------- the batch token budget
def test_plan_batches_keeps_order_and_runs_an_oversized_request_alone():
    assert limits.plan_batches([1, 1, 1, 1, 1], 2, 100) == [[0, 1], [2, 3], [4]]
    assert limits.plan_batches([40, 40, 40, 500, 10, 10], 8, 100) == [[0, 1], [2], [3], [4, 5]]
    assert limits.estimate_tokens(0) == 1 and limits.estimate_tokens(400) == 100


def test_the_server_bounds_each_batch_by_its_token_budget():
    engine = FakeEngine()
    app = create_app(engine, max_batch=16, batch_wait_ms=1, max_batch_tokens=250)
    batcher = app.state.batcher
    text = "x" * 360  # a body of about 400 bytes: 100 estimated tokens, two of them fit 250
    with TestClient(app) as client, ThreadPoolExecutor(max_workers=8) as pool:
        engine.gate.clear()
        first = pool.submit(post, client, {"first": True})
        assert engine.entered.wait(30)
        futures = []
        for payload in ({"i": 0, "t": text}, {"i": 1, "t": text}, {"i": 2, "t": text * 6}, {"i": 3, "t": text},
                        {"i": 4, "t": text}):
            futures.append(pool.submit(post, client, payload))
            wait_until(lambda: batcher.queued() == len(futures), "queued in order")
        engine.gate.set()
        assert first.result().status_code == 200 and all(f.result().status_code == 200 for f in futures)
    assert [[p["i"] for _, p in call] for call in engine.calls[1:]] == [[0, 1], [2], [3, 4]]


# --------------------------------------------------------------------------- back-pressure
def test_a_full_queue_refuses_with_503_and_retry_after():
    engine = FakeEngine()
    app = create_app(engine, max_batch=1, batch_wait_ms=1, max_queue=1)
    with TestClient(app) as client, ThreadPoolExecutor(max_workers=2) as pool:
        engine.gate.clear()
        computing = pool.submit(post, client, {"n": 0})
        assert engine.entered.wait(30)
        queued = pool.submit(post, client, {"n": 1})
        wait_until(lambda: app.state.batcher.queued() == 1, "one request queued")
        refused = post(client, {"n": 2})
        assert refused.status_code == 503 and refused.headers["retry-after"] == "1"
        assert "--max-queue" in refused.json()["error"]
        engine.gate.set()
        assert computing.result().status_code == 200 and queued.result().status_code == 200
    assert {"n": 2} not in engine.seen()


def test_a_request_timeout_answers_503_and_its_queued_work_is_never_computed():
    engine = FakeEngine()
    app = create_app(engine, max_batch=1, batch_wait_ms=1, request_timeout=1.0, poll_seconds=0.05)
    with TestClient(app) as client, ThreadPoolExecutor(max_workers=2) as pool:
        engine.gate.clear()
        computing = pool.submit(post, client, {"n": 0})
        assert engine.entered.wait(30)
        late = post(client, {"n": 1})  # waits behind the held batch until its timeout
        assert late.status_code == 503 and late.headers["retry-after"] == "1"
        assert "--request-timeout" in late.json()["error"] and "dropped from the queue" in late.json()["error"]
        held = computing.result()
        assert held.status_code == 503 and "still computing" in held.json()["error"]
        engine.gate.set()
        wait_until(lambda: app.state.batcher.skipped >= 1, "the timed-out request skipped")
        assert post(client, {"n": 2}).status_code == 200
    assert {"n": 1} not in engine.seen()
    assert client.app.state.batcher.queued() == 0


def test_a_disconnected_clients_request_is_never_computed():
    engine = FakeEngine()
    app = create_app(engine, max_batch=1, batch_wait_ms=1, poll_seconds=0.05)
    with uvicorn_thread(app) as (host, port), ThreadPoolExecutor(max_workers=1) as pool:
        import requests

        url = f"http://{host}:{port}"
        engine.gate.clear()
        computing = pool.submit(requests.post, f"{url}/predict", json={"task": "echo", "input": {"n": 0}},
                                timeout=60)
        assert engine.entered.wait(30)
        body = json.dumps({"task": "echo", "input": {"gone": True}}).encode()
        with socket.create_connection((host, port)) as conn:
            conn.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                         b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
            wait_until(lambda: app.state.batcher.queued() == 1, "the request queued")
        wait_until(lambda: requests.get(f"{url}/health").json()["disconnected"] == 1, "the disconnect noticed")
        assert app.state.batcher.queued() == 0
        engine.gate.set()
        assert computing.result().status_code == 200
        assert requests.post(f"{url}/predict", json={"task": "echo", "input": {"n": 2}}).status_code == 200
    assert {"gone": True} not in engine.seen()


# --------------------------------------------------------------------------- readiness
def test_not_ready_before_the_worker_runs():
    app = create_app(FakeEngine())
    client = TestClient(app)  # no `with`: the lifespan (and its worker) never starts
    assert client.get("/ready").status_code == 503 and "not running" in client.get("/ready").json()["error"]
    assert client.get("/health").status_code == 200 and client.get("/health").json()["ready"] is False
    refused = post(client, {"n": 0})
    assert refused.status_code == 503 and refused.headers["retry-after"] == "1"
    with TestClient(app) as started:
        assert started.get("/ready").status_code == 200


def test_not_ready_while_the_queue_is_saturated():
    engine = FakeEngine()
    app = create_app(engine, max_batch=1, batch_wait_ms=1, max_queue=4)  # high-water mark: 80 % of 4 -> 4
    with TestClient(app) as client, ThreadPoolExecutor(max_workers=5) as pool:
        engine.gate.clear()
        futures = [pool.submit(post, client, {"n": 0})]
        assert engine.entered.wait(30)
        for n in range(1, 5):
            assert client.get("/ready").status_code == 200
            futures.append(pool.submit(post, client, {"n": n}))
            wait_until(lambda n=n: app.state.batcher.queued() == n, f"{n} queued")
        saturated = client.get("/ready")
        assert saturated.status_code == 503 and "saturated" in saturated.json()["error"]
        assert client.get("/health").status_code == 200  # liveness is not readiness
        engine.gate.set()
        assert all(f.result().status_code == 200 for f in futures)
        assert client.get("/ready").status_code == 200


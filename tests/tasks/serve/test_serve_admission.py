"""Admission (``tasks/serve/admission.py``): every refusal is the server's own JSON 503 with Retry-After, decided
from the headers before the body is read, counted in /health and /metrics, also for a flood of connections
through the real ``run_server``; a 413 for an oversized body reaches a client that sends the whole body before
reading (the rest is read and dropped) and one that waits for ``100 Continue``; the URL is printed at startup
and ``--access-log`` logs each request."""
from __future__ import annotations

import json
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests
from conftest import subprocess_env
from fake_engine import FakeEngine, raw_request, uvicorn_thread, wait_until
from test_serve_api import metric

from tasks.serve import launch
from tasks.serve.server import create_app

HERE = Path(__file__).resolve().parent
MEGABYTE = b'{"task": "echo", "input": "' + b"a" * 1_000_000 + b'"}'


def read_response(conn: socket.socket) -> tuple[bytes, bytes]:
    """(status line, body) of one response with a Content-Length, read off ``conn``."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += conn.recv(65536)
    top, _, body = data.partition(b"\r\n\r\n")
    length = int(next(line.split(b":")[1] for line in top.split(b"\r\n") if line.lower().startswith(b"content-length")))
    while len(body) < length:
        body += conn.recv(65536)
    return top.split(b"\r\n")[0], body


def send_whole_then_read(host: str, port: int, data: bytes) -> tuple[bytes, bytes]:
    """Send ``data`` completely, then read one response: (status line, body). The send buffer is small, so the
    body cannot sit in the sockets' buffers: the server must read it for ``sendall`` to finish (a server that
    closes first resets the connection, and this raises)."""
    with socket.socket() as conn:
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 16384)
        conn.settimeout(30)
        conn.connect((host, port))
        conn.sendall(data)
        return read_response(conn)


def post(url: str, payload, timeout: float = 60) -> requests.Response:
    return requests.post(f"{url}/predict", json={"task": "echo", "input": payload}, timeout=timeout)


def test_a_refusal_is_json_503_decided_before_the_body_is_read():
    engine = FakeEngine()
    app = create_app(engine, max_batch=1, batch_wait_ms=1, max_queue=1)
    with uvicorn_thread(app) as (host, port), ThreadPoolExecutor(max_workers=2) as pool:
        url = f"http://{host}:{port}"
        engine.gate.clear()
        computing = pool.submit(post, url, {"n": 0})
        assert engine.entered.wait(30)
        queued = pool.submit(post, url, {"n": 1})
        wait_until(lambda: app.state.batcher.queued() == 1, "one request queued")
        head = (f"POST /predict HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
                "Content-Length: 100").encode()
        status, headers, body = raw_request(host, port, head)  # the 100 bytes are never sent: nobody reads them
        assert status == 503 and headers["retry-after"] == "1" and headers["content-type"] == "application/json"
        assert json.loads(body) == {"error": "overloaded: 1 requests already waiting (--max-queue); retry later",
                                    "status": 503}
        health = requests.get(f"{url}/health", timeout=10).json()
        assert health["refused"] == health["refused_by_reason"]["queue_full"] == 1
        text = requests.get(f"{url}/metrics", timeout=10).text
        assert metric(text, "serve_refused_total", reason="queue_full") == 1
        assert metric(text, "serve_requests_total", task="-", status="503") == 1
        engine.gate.set()
        assert computing.result().status_code == queued.result().status_code == 200
        assert post(url, {"n": 2}).status_code == 200  # the slots were given back
    assert len(engine.seen()) == 3


def test_a_flood_of_connections_gets_only_the_servers_json(tmp_path):
    gate = tmp_path / "gate"
    env = subprocess_env(PYTHONPATH=f"{launch.REPO}:{HERE}")
    with launch.serving(["--max-queue", "2", "--max-batch", "1"], env, module="fake_server") as (_, url):
        with ThreadPoolExecutor(max_workers=40) as pool:
            held = pool.submit(post, url, {"hold": str(gate)})
            wait_until(lambda: Path(f"{gate}.started").exists(), "the engine holds a request")
            flood = [pool.submit(post, url, {"n": n}, 120) for n in range(36)]
            wait_until(lambda: sum(f.done() for f in flood) >= 34, "the refusals answered")
            gate.touch()
            answers = [f.result() for f in [held, *flood]]
    refused = [a for a in answers if a.status_code == 503]
    assert len(refused) >= 34 and {a.status_code for a in answers} <= {200, 503}
    assert all(a.headers["content-type"] == "application/json" and a.headers["retry-after"] == "1" and
               "--max-queue" in a.json()["error"] for a in refused)  # never uvicorn's plain text


def test_an_oversized_body_sent_whole_before_reading_gets_its_413():
    engine = FakeEngine()
    with uvicorn_thread(create_app(engine, max_body_bytes=1000)) as (host, port):
        head = (f"POST /predict HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(MEGABYTE)}\r\n\r\n").encode()
        status, body = send_whole_then_read(host, port, head + MEGABYTE)
        assert status.startswith(b"HTTP/1.1 413") and "--max-body-bytes" in json.loads(body)["error"]
        chunked = (f"POST /predict HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
                   "Transfer-Encoding: chunked\r\n\r\n").encode()
        status, body = send_whole_then_read(host, port, chunked + b"%x\r\n%s\r\n0\r\n\r\n" % (len(MEGABYTE), MEGABYTE))
        assert status.startswith(b"HTTP/1.1 413") and "--max-body-bytes" in json.loads(body)["error"]  # cut off
    assert engine.calls == []


def test_a_client_waiting_for_100_continue_gets_the_413_before_sending():
    with uvicorn_thread(create_app(FakeEngine(), max_body_bytes=1000)) as (host, port):
        head = (f"POST /predict HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(MEGABYTE)}\r\nExpect: 100-continue").encode()
        started = time.monotonic()
        status, headers, body = raw_request(host, port, head)  # waits for the answer, never sends the body
        assert status == 413 and "--max-body-bytes" in json.loads(body)["error"]
        assert time.monotonic() - started < 4  # answered, not held for the lingering bound (5 s)


def test_the_url_is_printed_and_the_access_log_names_each_request():
    env = subprocess_env(PYTHONPATH=f"{launch.REPO}:{HERE}")
    with launch.serving(["--access-log", "--port", "0"], env, module="fake_server") as (server, url):
        assert post(url, {"n": 1}).status_code == 200
        wait_until(lambda: '"POST /predict HTTP/1.1" 200' in launch.server_log(server), "the access log line")
        assert f"listening on {url} (API docs: {url}/docs)" in launch.server_log(server)


def test_a_raw_connection_refused_mid_storm_keeps_the_connection_open():
    """A refused request does not close its keep-alive connection: a client may retry on it."""
    engine = FakeEngine()
    app = create_app(engine, max_batch=1, batch_wait_ms=1, max_queue=1)
    with uvicorn_thread(app) as (host, port), ThreadPoolExecutor(max_workers=2) as pool:
        url = f"http://{host}:{port}"
        engine.gate.clear()
        busy = [pool.submit(post, url, {"n": 0})]
        assert engine.entered.wait(30)
        busy.append(pool.submit(post, url, {"n": 1}))
        wait_until(lambda: app.state.batcher.queued() == 1, "one request queued")
        body = json.dumps({"task": "echo", "input": {"n": 9}}).encode()
        request = (f"POST /predict HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
                   f"Content-Length: {len(body)}\r\n\r\n").encode() + body
        with socket.create_connection((host, port), timeout=10) as conn:
            conn.sendall(request)
            first = read_response(conn)
            engine.gate.set()
            assert all(f.result().status_code == 200 for f in busy)
            conn.sendall(request)
            second = read_response(conn)
        assert first[0].startswith(b"HTTP/1.1 503") and json.loads(first[1])["status"] == 503
        assert second[0].startswith(b"HTTP/1.1 200") and json.loads(second[1])["output"] == {"echo": {"n": 9}}

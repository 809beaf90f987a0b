"""One request's failure is its own answer: a poisoned request, an engine that raises for a batch or returns an
exception object, even a BaseException from the engine, never fail the batch mates or the worker."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from fake_engine import FakeEngine, wait_until
from fastapi.testclient import TestClient

from tasks.serve.errors import ServerFault
from tasks.serve.isolation import answer_isolated
from tasks.serve.server import create_app


def one_batch(client: TestClient, engine: FakeEngine, inputs: list) -> list:
    """Post every input while the engine is busy with a first request, so that they all queue and then form
    one batch; (status, body) of each, in order."""
    batcher = client.app.state.batcher
    engine.gate.clear()
    with ThreadPoolExecutor(max_workers=len(inputs) + 1) as pool:
        first = pool.submit(client.post, "/predict", json={"task": "echo", "input": {"first": True}})
        assert engine.entered.wait(30)
        futures = [pool.submit(client.post, "/predict", json={"task": "echo", "input": payload})
                   for payload in inputs]
        wait_until(lambda: batcher.queued() == len(inputs), "every request queued")
        engine.gate.set()
        assert first.result().status_code == 200
        return [(f.result().status_code, f.result().json()) for f in futures]


def client_for(engine: FakeEngine, **kwargs) -> TestClient:
    return TestClient(create_app(engine, max_batch=16, batch_wait_ms=1, **kwargs))


def test_a_poisoned_request_fails_alone_and_its_batch_mates_are_answered():
    engine = FakeEngine()
    inputs = [{"n": 0}, {"n": 1}, {"raise": True}, {"n": 3}, {"n": 4}]
    with client_for(engine) as client:
        answers = one_batch(client, engine, inputs)
        assert [status for status, _ in answers] == [200, 200, 500, 200, 200]
        assert [body["output"]["echo"] for status, body in answers if status == 200] == [
            {"n": 0}, {"n": 1}, {"n": 3}, {"n": 4}]
        poisoned = answers[2][1]
        assert poisoned["status"] == 500 and "Poison" in poisoned["error"]
        assert [len(call) for call in engine.calls] == [1, 5, 1, 1, 1, 1, 1]  # the batch, then each alone
        assert client.post("/predict", json={"task": "echo", "input": {"after": 1}}).status_code == 200  # alive


def test_an_exception_object_answers_only_its_request():
    engine = FakeEngine()
    with client_for(engine) as client:
        answers = one_batch(client, engine, [{"n": 0}, {"error": True}, {"refuse": True}, {"n": 3}])
        assert [status for status, _ in answers] == [200, 500, 422, 200]
        assert "ValueError: broken for this one" in answers[1][1]["error"]
        assert [len(call) for call in engine.calls] == [1, 4]  # no retry needed: the engine answered each


def test_the_worker_survives_a_base_exception_from_the_engine():
    engine = FakeEngine()
    with client_for(engine) as client:
        answers = one_batch(client, engine, [{"n": 0}, {"raise_base": True}, {"n": 2}])
        assert [status for status, _ in answers] == [200, 500, 200]
        assert "Weird" in answers[1][1]["error"]
        assert client.post("/predict", json={"task": "echo", "input": {"after": 1}}).status_code == 200
        assert client.get("/ready").status_code == 200


def test_an_answer_json_cannot_hold_is_a_json_500():
    with client_for(FakeEngine()) as client:
        response = client.post("/predict", json={"task": "echo", "input": {"nan": True}})
        assert response.status_code == 500 and "not JSON" in response.json()["error"]


def test_answer_isolated_retries_alone_and_skips_the_abandoned():
    engine = FakeEngine()
    requests = [("echo", {"n": 0}), ("echo", {"raise": True}), ("echo", {"n": 2})]
    results = answer_isolated(engine, requests, wanted=lambda index: index != 2)
    assert results[0] == {"echo": {"n": 0}} and isinstance(results[1], ServerFault)
    assert {"n": 2} not in engine.seen()[3:]  # nobody waited for it: not retried


@pytest.mark.parametrize("bad", [None, [], [{"echo": 1}], "nonsense"])
def test_an_engine_that_answers_the_wrong_number_of_requests_is_a_fault(bad):
    class Broken(FakeEngine):
        def answer(self, requests):
            return bad if len(requests) > 1 else super().answer(requests)

    results = answer_isolated(Broken(), [("echo", {"n": 0}), ("echo", {"n": 1})])
    assert results == [{"echo": {"n": 0}}, {"echo": {"n": 1}}]  # retried alone


def test_keyboard_interrupt_is_not_swallowed():
    class Interrupted(FakeEngine):
        def answer(self, requests):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        answer_isolated(Interrupted(), [("echo", {}), ("echo", {})])

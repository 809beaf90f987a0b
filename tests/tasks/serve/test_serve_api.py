"""The TEI-style endpoints on the real engine (four tiny tasks): ``/metrics`` (Prometheus text), ``/info``, each
task's typed input and output in the OpenAPI document, a 422 naming the field of a malformed input (the JSON
guards still first), and ``"inputs"``: several inputs of one task answered in order, each with its own result."""
from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from conftest import save_tiny_model
from served_tasks import REQUESTS, make_artifacts
from tasks.serve.engine import Engine
from tasks.serve.protocol import Inputs
from tasks.serve.server import create_app


@pytest.fixture(scope="module")
def engine(tmp_path_factory) -> Engine:
    folder = tmp_path_factory.mktemp("api")
    paths = make_artifacts(save_tiny_model(folder / "encoder"), folder)
    return Engine([str(p) for p in paths.values()], max_request_rows=6)


@pytest.fixture(scope="module")
def client(engine):
    with TestClient(create_app(engine, batch_wait_ms=1)) as client:
        yield client


def predict(client, body: dict):
    return client.post("/predict", json=body)


def metric(text: str, name: str, **labels: str) -> float:
    """The value of one sample of the Prometheus text ``text``."""
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        key, _, value = line.rpartition(" ")
        if key == (f"{name}{{{wanted}}}" if labels else name):
            return float(value)
    raise AssertionError(f"no sample {name}{labels} in:\n{text}")


def test_metrics_count_requests_by_task_and_status_and_the_batches(client):
    for name, payload in REQUESTS[:3]:
        assert predict(client, {"task": name, "input": payload}).status_code == 200
    assert predict(client, {"task": "tiny-ner", "input": {"text": 5}}).status_code == 422
    assert client.post("/predict", content=b"{broken").status_code == 400
    assert predict(client, {"task": "nope", "input": {}}).status_code == 404
    response = client.get("/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert metric(text, "serve_requests_total", task="tiny-ner", status="200") >= 1
    assert metric(text, "serve_requests_total", task="tiny-ner", status="422") >= 1
    assert metric(text, "serve_requests_total", task="-", status="400") >= 1  # the client's task name is no label
    assert metric(text, "serve_requests_total", task="-", status="404") >= 1 and 'task="nope"' not in text
    assert metric(text, "serve_request_duration_seconds_count", task="squad") >= 1
    assert metric(text, "serve_batch_requests_count") >= 3 and metric(text, "serve_forward_rows_count") >= 3
    assert metric(text, "serve_forward_rows_sum") >= 3  # rows of three requests, QA windows included
    assert metric(text, "serve_queue_depth") == 0 and metric(text, "serve_in_flight") == 0
    assert metric(text, "serve_refused_total", reason="queue_full") == 0


def test_info_names_the_encoder_its_fingerprint_the_tasks_and_the_limits(client, engine):
    info = client.get("/info").json()
    assert info["encoder"] == engine.backbone_name and info["fingerprint"] == engine.fingerprint
    assert info["tasks"]["tiny-ner"] == {"family": "ner", "method": "prefix", "placement": "shared"}
    assert info["tasks"]["cb"]["method"] == "prompt" and info["tasks"]["cb"]["placement"] == "shared-encoder"
    assert info["limits"]["max_request_rows"] == 6 and info["limits"]["max_queue"] == 256
    assert {"max_body_bytes", "max_batch", "request_timeout", "drain_seconds"} <= info["limits"].keys()
    assert info["version"] and info["precision"] == "fp32"


def test_the_openapi_document_shows_each_tasks_input_and_output(client):
    document = client.get("/openapi.json").json()
    schemas = document["components"]["schemas"]
    operation = document["paths"]["/predict"]["post"]
    asked = [ref["$ref"].rsplit("/", 1)[1] for ref in
             operation["requestBody"]["content"]["application/json"]["schema"]["oneOf"]]
    assert {"tiny_ner_request", "tiny_ner_requests", "squad_request", "sst2_request", "cb_requests"} <= set(asked)
    assert schemas["tiny_ner_request"]["properties"]["task"]["const"] == "tiny-ner"
    assert set(schemas["NerInput"]["properties"]) == {"tokens", "text"}
    assert set(schemas["QaInput"]["required"]) == {"question", "context"}
    assert "sentence" in schemas["sst2_input"]["properties"]  # the GLUE task's own text field
    assert {"premise", "hypothesis"} <= set(schemas["cb_input"]["properties"])
    answered = [ref["$ref"].rsplit("/", 1)[1] for ref in
                operation["responses"]["200"]["content"]["application/json"]["schema"]["oneOf"]]
    assert {"tiny_ner_answer", "tiny_ner_answers", "squad_answer"} <= set(answered)
    assert set(schemas["NerOutput"]["properties"]) == {"tokens", "tags"}
    assert {"413", "422", "503"} <= operation["responses"].keys()
    assert client.get("/docs").status_code == 200


@pytest.mark.parametrize("task, payload, words", [
    ("tiny-ner", {"text": 5}, "input.text: Input should be a valid string"),
    ("tiny-ner", {"tokens": ["john", 3]}, "input.tokens[1]"),
    ("squad", {"question": "who"}, "input.context: Field required"),
    ("sst2", {"sentence": ["a"]}, "input.sentence"),
])
def test_a_malformed_input_is_a_422_naming_its_field(client, task, payload, words):
    response = predict(client, {"task": task, "input": payload})
    assert response.status_code == 422 and words in response.json()["error"], response.text


@pytest.mark.parametrize("body, words", [
    (b'{"task": "tiny-ner", "input": {"text": ' + b"[" * 65 + b"]" * 65 + b"}}", "nested deeper than"),
    (b'{"task": "tiny-ner", "input": {"text": ' + b"7" * 5000 + b"}}", "more than 4300 digits"),
])
def test_the_json_guards_still_come_before_the_typed_check(client, body, words):
    response = client.post("/predict", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 400 and words in response.json()["error"]


def test_several_inputs_are_answered_in_order_with_one_bad_item_among_good_ones(client):
    inputs = [{"text": "john lives in paris"}, {"text": 5}, {"tokens": []}, {"tokens": ["peter", "said"]}]
    response = predict(client, {"task": "tiny-ner", "inputs": inputs})
    assert response.status_code == 200, response.text
    outputs = response.json()["outputs"]
    assert len(outputs) == 4 and response.json()["task"] == "tiny-ner"
    for index in (0, 3):
        alone = predict(client, {"task": "tiny-ner", "input": inputs[index]}).json()["output"]
        assert outputs[index] == {"output": alone}  # the same answer as the input alone
    assert outputs[1]["status"] == 422 and "inputs[1].text" in outputs[1]["error"]  # the typed check
    assert outputs[2]["status"] == 422 and '"tokens"' in outputs[2]["error"]  # the task's own reader


def test_inputs_count_against_max_request_rows(client, engine):
    too_many = predict(client, {"task": "sst2", "inputs": [{"sentence": "a"}] * 7})
    assert too_many.status_code == 413 and "--max-request-rows" in too_many.json()["error"]
    payload = {"question": "who", "context": " ".join(["john lives in paris and london"] * 8)}
    rows = engine.prepare("squad", payload).rows
    assert 1 < rows <= 6  # a few windows: alone within the bound, together over it
    windows = predict(client, {"task": "squad", "inputs": [payload] * (6 // rows + 1)})
    assert windows.status_code == 413 and "encoder rows together" in windows.json()["error"]
    assert predict(client, {"task": "sst2", "inputs": [{"sentence": "a"}] * 6}).status_code == 200


def test_a_request_has_input_or_inputs(client):
    both = predict(client, {"task": "sst2", "input": {"sentence": "a"}, "inputs": [{"sentence": "a"}]})
    empty = predict(client, {"task": "sst2", "inputs": []})
    assert both.status_code == empty.status_code == 400 and '"inputs"' in empty.json()["error"]


def test_an_app_cannot_hold_other_engine_bounds_than_its_engine(engine):
    with pytest.raises(ValueError, match="max_request_rows"):
        create_app(engine, max_request_rows=7)


def test_the_engine_answers_several_inputs_through_its_one_route(engine):
    single = engine.answer([("tiny-ner", {"text": "john lives"}), ("sst2", {"sentence": "a b"})])
    mixed, = engine.answer([("tiny-ner", Inputs([{"text": "john lives"}, {"words": 1}]))])
    assert mixed[0] == single[0] and mixed[1].status == 422
    assert json.dumps(single[1])

"""``python -m tasks.serve`` over HTTP on a free localhost port (four tiny tasks on one encoder): health, batched
concurrent requests of every task, clear 4xx errors; and the JSONL mode answering through the same engine."""
from __future__ import annotations

import json

import pytest

from conftest import save_tiny_model
from served_tasks import REQUESTS, make_artifacts


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """``python -m tasks.serve`` on a free localhost port with four tiny tasks; yields (base URL, artifacts)."""
    from conftest import subprocess_env
    from tasks.serve.launch import start_server

    folder = tmp_path_factory.mktemp("serve")
    paths = make_artifacts(save_tiny_model(folder / "encoder"), folder)
    args = [*(a for p in paths.values() for a in ("--artifact", str(p))), "--batch-wait-ms", "20", "--max-batch", "8"]
    server, url = start_server(args, subprocess_env())
    yield url, paths
    server.terminate()
    server.wait(timeout=10)


def test_health_and_tasks(served):
    import requests

    url, _ = served
    health = requests.get(f"{url}/health").json()
    assert health["status"] == "ok" and sorted(health["tasks"]) == ["cb", "squad", "sst2", "tiny-ner"]
    assert requests.get(f"{url}/tasks").json()["cb"]["shared_backbone"] is False
    assert requests.get(f"{url}/tasks").json()["cb"]["artifact"] == "cb"  # the folder's name, not its path
    assert requests.get(f"{url}/ready").json()["status"] == "ready"


def test_concurrent_requests_of_every_task_get_their_own_answers(served):
    import requests
    from concurrent.futures import ThreadPoolExecutor

    url, _ = served

    def ask(request):
        name, payload = request
        response = requests.post(f"{url}/predict", json={"task": name, "input": payload}, timeout=60)
        return name, response.status_code, response.json()

    with ThreadPoolExecutor(max_workers=12) as pool:
        answers = list(pool.map(ask, REQUESTS * 4))
    for (name, status, body), (asked, payload) in zip(answers, REQUESTS * 4):
        assert status == 200 and body["task"] == asked == name
        output = body["output"]
        if asked == "tiny-ner":  # each answer in its own task's form: nobody got another task's head
            assert len(output["tags"]) == len(payload.get("tokens") or payload["text"].split())
        elif asked == "squad":
            assert "answer" in output
        else:
            assert "label" in output
    assert requests.get(f"{url}/health").json()["batches"] < len(answers)  # requests were batched together


@pytest.mark.parametrize("body, status, words", [
    (b"{not json", 400, "malformed JSON"),
    (b'{"input": {}}', 400, '"task"'),
    (b'{"task": "nope", "input": {}}', 404, "unknown task 'nope'"),
    (b'{"task": "tiny-ner", "input": {"words": 1}}', 422, '"tokens"'),
    (json.dumps({"task": "tiny-ner", "input": {"text": " ".join(["paris"] * 60)}}).encode(), 413, "sub-tokens"),
])
def test_clear_4xx_errors(served, body, status, words):
    import requests

    url, _ = served
    response = requests.post(f"{url}/predict", data=body, headers={"content-type": "application/json"})
    assert response.status_code == status and words in response.json()["error"]


def test_the_jsonl_mode_answers_through_the_same_engine(tmp_path, served):
    from conftest import run_cli

    _, paths = served
    source = tmp_path / "requests.jsonl"
    lines = [{"id": i, "task": name, "input": payload} for i, (name, payload) in enumerate(REQUESTS)]
    lines.append({"id": "bad", "task": "nope", "input": {}})
    source.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    result = run_cli([*(a for p in paths.values() for a in ("--artifact", p)), "--input", source, "--output",
                      tmp_path / "answers.jsonl"], module="tasks.serve")
    assert result.returncode == 1, result.stderr  # the exit status counts the failed lines: "bad"
    answers = [json.loads(line) for line in (tmp_path / "answers.jsonl").read_text().splitlines()]
    assert [a["id"] for a in answers] == [*range(len(REQUESTS)), "bad"]
    assert answers[0]["output"]["tags"] and answers[-1]["status"] == 404
    assert f"{len(REQUESTS)} answered, 1 refused" in result.stdout
    source.write_text('{"task": "sst2", "input": {}}\n{broken\n')
    bad = run_cli([*(a for p in paths.values() for a in ("--artifact", p)), "--input", source, "--output",
                   tmp_path / "x.jsonl"], module="tasks.serve")
    assert bad.returncode == 2 and f"{source}: line 2: invalid JSON" in bad.stderr  # two failed lines
    records = [json.loads(line) for line in (tmp_path / "x.jsonl").read_text().splitlines()]
    assert [(r["line"], r["status"]) for r in records] == [(1, 422), (2, 400)]  # the bad line did not stop the run
    missing = run_cli([*(a for p in paths.values() for a in ("--artifact", p)), "--input", tmp_path / "nope.jsonl",
                       "--output", tmp_path / "y.jsonl"], module="tasks.serve")
    assert missing.returncode == 2 and "nope.jsonl: file not found" in missing.stderr
    assert not (tmp_path / "y.jsonl").exists()

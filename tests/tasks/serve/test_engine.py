"""Serving many tasks on one backbone: rows of different tasks in one forward pass give each task's own
logits; the engine refuses another encoder's artifact; requests get each task's own answer form."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import HIDDEN, save_tiny_model
from heads import SequenceClassificationHead, SpanHead, TokenClassificationHead
from models.adapted import build_model
from models.methods import PrefixConfig, PromptConfig
from tasks.common.artifacts import load_artifact, save_artifact
from tasks.serve.engine import Engine, RequestError, TooLong, UnknownTask

NER_LABELS = ["O", "B-LOC", "I-LOC", "B-PER", "I-PER"]


def perturbed(model):
    generator = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.add_(0.5 * torch.randn(p.shape, generator=generator))
    return model


def make_artifacts(encoder: Path, out: Path) -> dict[str, Path]:
    """Four tasks on one encoder: NER (prefix 3), SST-2-style classification (prefix 5, mean pooling, layer mix),
    QA (prefix 2), and a prompt-tuned CB (its own forward)."""
    torch.manual_seed(0)
    specs = {
        "ner": (TokenClassificationHead(HIDDEN, len(NER_LABELS)), "prefix", PrefixConfig(prefix_len=3), "last",
                {"family": "ner", "dataset": "tiny-ner", "labels": NER_LABELS, "max_length": 32}),
        "sst2": (SequenceClassificationHead(HIDDEN, 2, pooling="mean"), "prefix", PrefixConfig(prefix_len=5), "mix",
                 {"family": "glue", "benchmark": "glue", "name": "sst2", "labels": ["0", "1"], "max_length": 32}),
        "qa": (SpanHead(HIDDEN), "prefix", PrefixConfig(prefix_len=2), "last",
               {"family": "qa", "dataset": "squad", "version2": False, "max_length": 48, "doc_stride": 16,
                "max_answer_length": 10, "n_best": 5, "null_threshold": 0.0}),
        "cb": (SequenceClassificationHead(HIDDEN, 3), "prompt", PromptConfig(prompt_len=2), "last",
               {"family": "superglue", "benchmark": "superglue", "name": "cb",
                "labels": ["entailment", "contradiction", "neutral"], "max_length": 32}),
    }
    paths = {}
    for name, (head, method, config, layers, record) in specs.items():
        model = perturbed(build_model(str(encoder), head, method, config, layers=layers))
        paths[name] = out / name
        save_artifact(model, paths[name], record)
    return paths


REQUESTS = [
    ("tiny-ner", {"tokens": ["john", "smith", "lives", "in", "paris"]}),
    ("sst2", {"sentence": "the city is new"}),
    ("squad", {"question": "who lives in paris", "context": "john smith lives in paris and london for acme corp"}),
    ("tiny-ner", {"text": "peter blackburn said"}),
    ("cb", {"premise": "john lives in paris", "hypothesis": "john lives in london"}),
    ("sst2", {"sentence": "british lamb"}),
]


@pytest.mark.parametrize("arch", ["bert", "roberta", "deberta-v2"])
def test_a_mixed_batch_gives_every_task_its_own_logits(tmp_path, arch):
    encoder = save_tiny_model(tmp_path / "encoder", arch=arch)
    paths = make_artifacts(encoder, tmp_path)
    engine = Engine([str(p) for p in paths.values()])
    assert sorted(engine.tasks) == ["cb", "squad", "sst2", "tiny-ner"]
    pending = [engine.prepare(name, payload) for name, payload in REQUESTS]
    mixed = engine.logits(pending)
    alone_models = {"tiny-ner": "ner", "sst2": "sst2", "squad": "qa", "cb": "cb"}
    for (name, _), p, logits in zip(REQUESTS, pending, mixed):
        model = load_artifact(paths[alone_models[name]]).model  # its own encoder copy, the task alone
        inputs = dict(p.batch)
        with torch.no_grad():
            alone = model(**inputs).logits.numpy()
        finite = np.isfinite(alone) & (alone > -1e30)  # the span head masks padding with the dtype's minimum
        assert logits.shape == alone.shape, name
        np.testing.assert_allclose(logits[finite], alone[finite], atol=1e-5, rtol=0, err_msg=f"{arch} {name}")


def test_answers_come_in_each_tasks_own_form(tmp_path):
    paths = make_artifacts(save_tiny_model(tmp_path / "encoder"), tmp_path)
    engine = Engine([str(p) for p in paths.values()])
    ner, sst2, qa, ner2, cb, _ = engine.answer(REQUESTS)
    assert ner["tokens"] == ["john", "smith", "lives", "in", "paris"] and len(ner["tags"]) == 5
    assert set(ner["tags"]) <= set(NER_LABELS) and ner2["tokens"] == ["peter", "blackburn", "said"]
    assert sst2["label"] in ("0", "1") and cb["label"] in ("entailment", "contradiction", "neutral")
    assert isinstance(qa["answer"], str) and qa["answer"] in REQUESTS[2][1]["context"]
    memory = engine.memory()
    assert memory["backbone_bytes"] > 10 * memory["tiny-ner_bytes"]  # a task costs a prefix and a head


def test_bad_requests_are_refused_one_by_one(tmp_path):
    paths = make_artifacts(save_tiny_model(tmp_path / "encoder"), tmp_path)
    engine = Engine([str(paths["ner"]), f"sentiment={paths['sst2']}"])
    long_text = " ".join(["paris"] * 60)  # 60 words: more than the 32 tokens the NER artifact reads
    results = engine.answer([("nope", {}), ("tiny-ner", {"words": 3}), ("tiny-ner", {"text": long_text}),
                             ("sentiment", {"sentence": "john lives"})])
    assert isinstance(results[0], UnknownTask) and "sentiment, " not in str(results[0]) and "tiny-ner" in str(
        results[0])
    assert isinstance(results[1], RequestError) and results[1].status == 422 and '"tokens"' in str(results[1])
    assert isinstance(results[2], TooLong) and results[2].status == 413
    assert results[3]["label"] in ("0", "1")  # the others are answered all the same


def test_an_artifact_of_another_encoder_is_refused(tmp_path):
    from tasks.common.errors import DataError

    paths = make_artifacts(save_tiny_model(tmp_path / "encoder"), tmp_path)
    other = save_tiny_model(tmp_path / "other", seed=3)
    model = build_model(str(other), TokenClassificationHead(HIDDEN, 5), "prefix", PrefixConfig(prefix_len=2))
    save_artifact(model, tmp_path / "foreign", {"family": "ner", "dataset": "x", "labels": NER_LABELS,
                                                "max_length": 32})
    with pytest.raises(DataError, match="not on the served encoder"):
        Engine([str(paths["ner"]), str(tmp_path / "foreign")])


def test_a_multitask_artifact_serves_every_member(tmp_path):
    encoder = save_tiny_model(tmp_path / "encoder")
    mt = build_model(str(encoder), {"a": TokenClassificationHead(HIDDEN, 5), "b": TokenClassificationHead(HIDDEN, 3)},
                     "prefix", PrefixConfig(prefix_len=3))
    records = {"a": {"family": "ner", "dataset": "a", "labels": NER_LABELS, "max_length": 32},
               "b": {"family": "ner", "dataset": "b", "labels": ["O", "B-X", "I-X"], "max_length": 32}}
    save_artifact(perturbed(mt), tmp_path / "mt", records)
    engine = Engine([str(tmp_path / "mt")])
    a, b = engine.answer([("a", {"text": "john lives"}), ("b", {"text": "john lives"})])
    assert set(a["tags"]) <= set(NER_LABELS) and set(b["tags"]) <= {"O", "B-X", "I-X"}
    assert json.loads((tmp_path / "mt" / "adapter_config.json").read_text())["members"]["b"]["task"]["dataset"] == "b"
    named = Engine([f"mt={tmp_path / 'mt'}"])  # a named multi-task artifact: its members under the name
    assert sorted(named.tasks) == ["mt.a", "mt.b"] and named.answer([("mt.b", {"text": "john"})])[0]["tags"]


# --------------------------------------------------------------------------- HTTP and JSONL
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

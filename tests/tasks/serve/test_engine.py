"""Serving many tasks on one backbone: rows of different tasks in one forward pass give each task's own
logits; the engine refuses another encoder's artifact; requests get each task's own answer form."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from conftest import HIDDEN, save_tiny_model
from heads import TokenClassificationHead
from models.adapted import build_model
from models.methods import PrefixConfig
from served_tasks import NER_LABELS, REQUESTS, make_artifacts, perturbed
from tasks.common.artifacts import load_artifact, save_artifact
from tasks.serve.engine import Engine, RequestError, TooLong, UnknownTask


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
    assert json.loads((tmp_path / "mt" / "ptv2_config.json").read_text())["members"]["b"]["task"]["dataset"] == "b"
    named = Engine([f"mt={tmp_path / 'mt'}"])  # a named multi-task artifact: its members under the name
    assert sorted(named.tasks) == ["mt.a", "mt.b"] and named.answer([("mt.b", {"text": "john"})])[0]["tags"]

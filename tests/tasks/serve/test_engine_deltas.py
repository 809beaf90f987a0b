"""The prefix with per-task deltas inside the encoder (``prefix-bias``, ``prefix-lora``) has everything the plain
prefix has: rows of its tasks share one forward with the plain prefix's rows and get what each task alone gets; its
artifact predicts with the family CLI; it trains several datasets at once.  (The model-level invariants are in
tests/models/test_prefix_deltas.py.)"""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from conftest import HIDDEN, save_tiny_model, write_tagged_conll
from heads import SequenceClassificationHead, TokenClassificationHead
from models.adapted import build_model
from models.methods import get_method
from served_tasks import NER_LABELS, perturbed
from tasks.common.artifacts import load_artifact, save_artifact
from tasks.serve.engine import Engine

NER = {"family": "ner", "dataset": "tiny-ner", "labels": NER_LABELS, "max_length": 32}


def glue_record(name: str, labels: tuple[str, ...] = ("0", "1")) -> dict:
    return {"family": "glue", "benchmark": "glue", "name": name, "labels": list(labels), "max_length": 32}


def delta_artifacts(encoder, out) -> dict[str, object]:
    """Four tasks on one encoder: two with low-rank deltas, one with bias deltas, one plain prefix; every trained
    tensor (the deltas too) moved away from its zero start, so a delta that leaked to another row would show."""
    torch.manual_seed(0)
    specs = {
        "tiny-ner": (TokenClassificationHead(HIDDEN, len(NER_LABELS)), "prefix-lora", NER),
        "sst2": (SequenceClassificationHead(HIDDEN, 2, pooling="mean"), "prefix-lora", glue_record("sst2")),
        "qnli": (SequenceClassificationHead(HIDDEN, 2), "prefix-bias",
                 glue_record("qnli", ("entailment", "not_entailment"))),
        "mrpc": (SequenceClassificationHead(HIDDEN, 2), "prefix", glue_record("mrpc")),
    }
    paths = {}
    for name, (head, method, record) in specs.items():
        config = get_method(method).config_class(prefix_len=3)
        paths[name] = out / name
        save_artifact(perturbed(build_model(str(encoder), head, method, config)), paths[name], record)
    return paths


REQUESTS = [("tiny-ner", {"tokens": ["john", "smith", "lives", "in", "paris"]}),
            ("sst2", {"sentence": "the city is new"}),
            ("qnli", {"question": "who lives in paris", "sentence": "john smith lives in paris"}),
            ("tiny-ner", {"text": "peter blackburn said"}),
            ("mrpc", {"sentence1": "john lives in paris", "sentence2": "john lives in london"}),
            ("sst2", {"sentence": "british lamb"})]


@pytest.mark.parametrize("arch", ["bert", "deberta-v2"])
def test_a_mixed_batch_of_delta_tasks_equals_each_task_alone(tmp_path, arch, monkeypatch):
    paths = delta_artifacts(save_tiny_model(tmp_path / "encoder", arch=arch), tmp_path)
    engine = Engine([str(p) for p in paths.values()], device="cpu")  # the "alone" models below run on the CPU
    forwards = []
    original = engine._forward
    monkeypatch.setattr(engine, "_forward", lambda group: forwards.append(len(group)) or original(group))
    pending = [engine.prepare(name, payload) for name, payload in REQUESTS]
    mixed = engine.logits(pending)
    assert 4 in forwards  # the four low-rank-delta rows of two tasks went through one forward
    for (name, _), p, logits in zip(REQUESTS, pending, mixed):
        with torch.no_grad():
            alone = load_artifact(paths[name]).model(**dict(p.batch)).logits.numpy()
        np.testing.assert_allclose(logits, alone, atol=1e-5, rtol=0, err_msg=f"{arch} {name}")
    answers = engine.answer(REQUESTS)
    assert set(answers[0]["tags"]) <= set(NER_LABELS) and answers[1]["label"] in ("0", "1")


@pytest.mark.parametrize("method", ["prefix-lora", "prefix-bias"])
def test_a_delta_artifact_predicts_with_the_family_cli(method, tmp_path, tiny_model_dir):
    from tasks.ner.__main__ import main

    train = write_tagged_conll(tmp_path / "train.conll", 16, seed=0)
    dev = write_tagged_conll(tmp_path / "dev.conll", 6, seed=1)
    out = tmp_path / "run"
    main(["--method", method, "--model", str(tiny_model_dir), "--train-file", str(train), "--dev-file", str(dev),
          "--max-length", "32", "--epochs", "1", "--batch-size", "4", "--prefix-len", "3", "--output-dir", str(out)])
    config = json.loads((out / "ptv2_config.json").read_text())
    assert config["method"]["name"] == method and config["method"]["config"]["delta_lr"] == 3e-3
    main(["predict", "--artifact", str(out), "--input", str(dev), "--output", str(tmp_path / "tags.conll")])
    tags = [line.split()[-1] for line in (tmp_path / "tags.conll").read_text().split("\n") if line]
    assert len(tags) == 6 * 6 and set(tags) <= set(config["task"]["labels"])


def test_prefix_lora_trains_several_datasets_at_once(tmp_path, tiny_model_dir, shared_data_root):
    from safetensors.torch import load_file

    from tasks.multitask.__main__ import run

    out = tmp_path / "mt"
    metrics = run(["ner", "--tasks", "conll2003", "conll2004", "--method", "prefix-lora", "--model",
                   str(tiny_model_dir), "--max-length", "32", "--max-train-samples", "16", "--max-eval-samples", "4",
                   "--epochs", "1", "--prefix-len", "3", "--data-dir", str(shared_data_root), "--output-dir", str(out)])
    assert set(metrics["members"]) == {"conll2003", "conll2004"}
    names = set(load_file(str(out / "adapter.safetensors")))
    assert any(n.startswith("method.up.") for n in names) and any(n.startswith("method.down.") for n in names)
    assert {"members.conll2003.head.classifier.weight", "members.conll2004.head.classifier.weight"} <= names

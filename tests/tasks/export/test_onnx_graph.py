"""ONNX export: one graph (encoder + prefix as constants + head) with dynamic batch and length answers as the torch
model does on padded batches of other shapes than the traced one, for every head kind; decoding both gives the same
tags, labels and spans; a multi-task artifact gives one graph per member; ``predict --runtime onnx`` writes what torch
writes."""
from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest
import torch

from conftest import HIDDEN, save_tiny_model, write_tagged_conll
from heads import build_head
from models.adapted import build_model
from models.methods import PrefixConfig
from served_tasks import NER_LABELS, make_artifacts, perturbed
from tasks.common.artifacts import load_artifact, save_artifact

pytestmark = pytest.mark.skipif(importlib.util.find_spec("onnxruntime") is None or importlib.util.find_spec("onnx")
                                is None, reason="needs the optional packages onnx and onnxruntime")


@pytest.fixture(scope="module")
def encoder(tmp_path_factory):
    return save_tiny_model(tmp_path_factory.mktemp("encoder"))


def runner(loaded, folder):
    from tasks.export.onnx_graph import OnnxRunner

    return OnnxRunner.from_loaded(loaded, folder)


def padded(shape: tuple[int, ...], seed: int = 3) -> dict[str, torch.Tensor]:
    """Random ids with every row but the first padded at a different length (5 rows: not the traced 2)."""
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, 99, shape, generator=generator)
    mask = torch.ones(shape, dtype=torch.long)
    for row in range(1, shape[0]):
        mask[row, ..., max(1, shape[-1] - 2 * row):] = 0
    return {"input_ids": ids * mask, "attention_mask": mask, "token_type_ids": torch.zeros(shape, dtype=torch.long)}


HEADS = [
    ("token-classification", {"num_labels": 4}, "prefix", {}),
    ("span", {}, "prefix", {}),
    ("sequence-classification", {"num_labels": 3, "pooling": "mean"}, "prefix", {"layers": "mix"}),
    ("regression", {"pooling": "first"}, "prefix", {}),
    ("multiple-choice", {"pooling": "mean"}, "prefix", {}),
    ("span-pair-classification", {"num_labels": 2}, "prefix", {}),
    ("token-classification", {"num_labels": 3}, "prefix", {"reparameterize": True, "hidden_size": 8}),
]


@pytest.mark.parametrize("head, head_config, method, extra", HEADS)
def test_onnx_logits_equal_torch_logits_on_a_padded_batch(tmp_path, encoder, head, head_config, method, extra):
    extra = dict(extra)
    layers = extra.pop("layers", "last")
    model = build_model(str(encoder), build_head(head, hidden_size=HIDDEN, **head_config), method,
                        PrefixConfig(prefix_len=4, **extra), layers=layers)
    save_artifact(perturbed(model), tmp_path / "artifact", {"family": "ner", "labels": ["O"], "max_length": 32})
    loaded = load_artifact(tmp_path / "artifact")
    batch = padded((5, 3, 11) if head == "multiple-choice" else (5, 11))
    if head == "span-pair-classification":
        batch["span1_mask"] = torch.zeros_like(batch["input_ids"]).index_fill_(1, torch.tensor([1, 2]), 1)
        batch["span2_mask"] = torch.zeros_like(batch["input_ids"]).index_fill_(1, torch.tensor([3]), 1)
    with torch.no_grad():
        expected = loaded.model(**batch).logits
    got = runner(loaded, tmp_path / "onnx")(**batch).logits
    assert got.shape == expected.shape
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=0)


@pytest.mark.parametrize("name", ["ner", "sst2", "qa", "cb"])
def test_decoding_onnx_logits_gives_what_torch_gives(tmp_path, encoder, name):
    from tasks.families import get_family

    paths = make_artifacts(encoder, tmp_path)
    loaded = load_artifact(paths[name])
    family = get_family(loaded.record["family"])
    task = family.bind(loaded.record, loaded.tokenizer)
    payloads = {"ner": [{"tokens": ["john", "smith", "lives", "in", "paris", "new", "york"]}, {"text": "peter said"}],
                "sst2": [{"sentence": "the city is new and london"}, {"sentence": "lamb"}],
                "qa": [{"question": "who lives in paris", "context": "john smith lives in paris and london"},
                       {"question": "who said", "context": "peter blackburn said it"}],
                "cb": [{"premise": "john lives in paris", "hypothesis": "john lives"},
                       {"premise": "it", "hypothesis": "the eu"}]}[name]
    examples = [e for payload in payloads for e in task.parse_request(payload)]
    encoded = task.encode(examples, train=False)
    batch = task.collate([{k: v for k, v in f.items() if k != "labels"} for f in encoded.features])
    assert bool((batch["attention_mask"] == 0).any()), "the batch must be padded"
    with torch.no_grad():
        expected = loaded.model(**batch).logits.numpy()
    got = runner(loaded, tmp_path / "onnx")(**batch).logits.numpy()
    real = expected > -1e30  # the span head's masked padding
    np.testing.assert_allclose(got[real], expected[real], atol=1e-4, rtol=0)
    assert task.render(examples, task.decode(examples, encoded, got)) == task.render(
        examples, task.decode(examples, encoded, expected))


def test_the_graph_alone_tokenizes_runs_and_labels_with_onnxruntime(tmp_path, encoder):
    """Without this package: the tokenizer and the labels come from the graph's metadata, and the tags equal ours."""
    import onnxruntime
    from transformers import AutoTokenizer

    from tasks.export.onnx_graph import export_onnx

    loaded = load_artifact(make_artifacts(encoder, tmp_path)["ner"])
    path = export_onnx(loaded, tmp_path / "ner.onnx")
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    meta = session.get_modelmeta().custom_metadata_map
    assert meta["ptv2.head"] == "token-classification" and meta["ptv2.family"] == "ner"
    labels = json.loads(meta["ptv2.labels"])
    tokenizer = AutoTokenizer.from_pretrained(meta["ptv2.tokenizer"])
    words = [["john", "smith", "lives", "in", "paris"], ["peter", "said"]]
    batch = tokenizer(words, is_split_into_words=True, padding=True, return_tensors="np")
    feeds = {i.name: batch[i.name].astype(np.int64) for i in session.get_inputs()}
    got = session.run(["logits"], feeds)[0]
    with torch.no_grad():
        ours = loaded.model(**{k: torch.from_numpy(v) for k, v in feeds.items()}).logits.numpy()
    real = batch["attention_mask"].astype(bool)
    np.testing.assert_allclose(got[real], ours[real], atol=1e-4, rtol=0)
    top = np.sort(ours, axis=-1)
    clear = real & (top[..., -1] - top[..., -2] > 1e-3)  # a tiny random model's near-ties may go either way
    tags = np.array(labels)[got.argmax(-1)]
    assert tags[clear].tolist() == np.array(loaded.record["labels"])[ours.argmax(-1)][clear].tolist()


def test_a_multitask_artifact_gives_one_graph_per_member(tmp_path, encoder):
    from tasks.export.__main__ import main

    heads = {"a": build_head("token-classification", hidden_size=HIDDEN, num_labels=5),
             "b": build_head("token-classification", hidden_size=HIDDEN, num_labels=3)}
    records = {"a": {"family": "ner", "dataset": "a", "labels": NER_LABELS, "max_length": 32},
               "b": {"family": "ner", "dataset": "b", "labels": ["O", "B-X", "I-X"], "max_length": 32}}
    save_artifact(perturbed(build_model(str(encoder), heads, "prefix", PrefixConfig(prefix_len=3))), tmp_path / "mt",
                  records)
    main(["--artifact", str(tmp_path / "mt"), "--format", "onnx", "--output", str(tmp_path / "graphs")])
    from tasks.export.onnx_graph import OnnxRunner

    batch = padded((4, 9))
    for member, labels in (("a", 5), ("b", 3)):
        with torch.no_grad():
            expected = load_artifact(tmp_path / "mt", member=member).model(**batch).logits
        got = OnnxRunner(tmp_path / "graphs" / f"{member}.onnx")(**batch).logits
        assert got.shape == (4, 9, labels)
        torch.testing.assert_close(got, expected, atol=1e-4, rtol=0)


def test_predict_with_the_onnx_runtime_writes_what_torch_writes(tmp_path, encoder):
    from tasks.ner.__main__ import main

    train = write_tagged_conll(tmp_path / "train.conll", 16, seed=0)
    dev = write_tagged_conll(tmp_path / "dev.conll", 6, seed=1)
    out = tmp_path / "run"
    main(["--model", str(encoder), "--train-file", str(train), "--dev-file", str(dev), "--test-file", str(dev),
          "--prefix-len", "2", "--epochs", "1", "--batch-size", "8", "--max-length", "32", "--output-dir", str(out)])
    outputs = {}
    for runtime in ("torch", "onnx"):
        outputs[runtime] = tmp_path / f"{runtime}.conll"
        main(["predict", "--artifact", str(out), "--input", str(dev), "--output", str(outputs[runtime]),
              "--runtime", runtime, "--eval-batch-size", "4"])
    assert outputs["onnx"].read_text() == outputs["torch"].read_text()

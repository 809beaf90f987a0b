"""The inference benchmark (``python -m benchmarks inference``) on a tiny NER artifact: every runtime gets a row on
the same rows, torch fp32 is its own reference, onnxruntime gives fp32's logits, and the page reads the target."""
from __future__ import annotations

import importlib.util
import json

import pytest

from conftest import save_tiny_model, write_tagged_conll

pytestmark = pytest.mark.skipif(importlib.util.find_spec("onnxruntime") is None or importlib.util.find_spec("onnx")
                                is None, reason="needs the optional packages onnx and onnxruntime")


def test_every_runtime_answers_the_same_rows_and_the_page_reads_the_target(tmp_path):
    from benchmarks.inference import InferenceOptions, run_inference
    from tasks.ner.__main__ import main

    encoder = save_tiny_model(tmp_path / "encoder")
    train = write_tagged_conll(tmp_path / "train.conll", 16, seed=0)
    dev = write_tagged_conll(tmp_path / "dev.conll", 7, seed=1)
    artifact = tmp_path / "run"
    main(["--model", str(encoder), "--train-file", str(train), "--dev-file", str(dev), "--test-file", str(dev),
          "--prefix-len", "2", "--epochs", "1", "--batch-size", "8", "--max-length", "32", "--output-dir",
          str(artifact)])

    page = run_inference(InferenceOptions(artifact, dev, rows=5, batch_sizes=(1, 4), warmup=1, out=tmp_path))
    result = json.loads((tmp_path / "inference.json").read_text())
    rows = {(r["runtime"], r["batch_size"]): r for r in result["results"]}
    runtimes = ("torch fp32", "torch bf16", "torch int8", "onnxruntime fp32")
    assert set(rows) == {(name, size) for name in runtimes for size in (1, 4)}
    for size in (1, 4):
        assert rows["torch fp32", size]["rows"] == 5 and rows["torch fp32", size]["same_labels_percent"] == 100.0
        onnx = rows["onnxruntime fp32", size]  # its logits (a tiny random model's labels may sit on near-ties)
        assert onnx["rows"] == 5 and onnx["max_logit_diff"] < 1e-3 and onnx["same_labels_percent"] is not None
        bf16 = rows["torch bf16", size]
        assert bf16["rows"] == 5 or "no native bf16" in bf16["notes"][0]
    text = page.read_text()
    assert "| onnxruntime at batch 1 | >= 1.5x torch fp32 rows/s, equal answers |" in text
    assert "the first 5 examples" in text

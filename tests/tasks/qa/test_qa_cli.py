"""``python -m tasks.qa``: smoke runs on a few articles of the shared dev files with the bundled encoder,
and bad input ending in one line on stderr with exit code 2."""
from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO as ROOT, data_root
from tasks.qa.__main__ import main

SHARED = data_root()  # $PTV2_DATA_DIR, else ../shared/data beside the checkout
DEV = {"squad": SHARED / "qa" / "squad_v1" / "dev-v1.1.json.gz",
       "squad_v2": SHARED / "qa" / "squad_v2" / "dev-v2.0.json.gz"}
FAST = ["--epochs", "1", "--max-length", "96", "--doc-stride", "32", "--batch-size", "4", "--prefix-len", "4",
        "--max-train-samples", "4", "--logging-steps", "100"]


def few_articles(dataset: str, out: Path) -> Path:
    """4 articles x 2 paragraphs x 3 questions (the first two and the last: unanswerable ones come last in 2.0)."""
    raw = json.loads(gzip.decompress(DEV[dataset].read_bytes()))
    raw["data"] = [{"title": a["title"], "paragraphs": [{"context": p["context"], "qas": p["qas"][:2] + p["qas"][-1:]}
                                                        for p in a["paragraphs"][:2]]} for a in raw["data"][:4]]
    out.write_text(json.dumps(raw))
    return out


@pytest.mark.bundled
@pytest.mark.parametrize("dataset", ["squad", "squad_v2"])
def test_train_evaluate_and_predict_on_a_few_articles(dataset, tmp_path, capsys):
    if not DEV[dataset].is_file():
        pytest.skip("shared SQuAD dev file not present")
    data = few_articles(dataset, tmp_path / "few.json")
    run = tmp_path / "run"
    main(["--dataset", dataset, "--dev-file", str(data), "--split-by-article", "0.5", "--output-dir", str(run), *FAST])
    out = capsys.readouterr().out
    assert "first part: 2 articles, 12 questions" in out and "rest: 2 articles, 12 questions" in out
    metrics = json.loads((run / "metrics.json").read_text())
    key = "exact" if dataset == "squad_v2" else "exact_match"
    assert 0.0 <= metrics["eval"][key] <= 100.0 and metrics["eval"]["total"] == 12
    if dataset == "squad_v2":
        assert {"HasAns_f1", "NoAns_f1", "best_f1", "best_f1_thresh"} <= set(metrics["eval"])
    assert (run / "adapter.safetensors").is_file()

    preds = tmp_path / "preds"
    main(["predict", "--artifact", str(run), "--input", str(data), "--output-dir", str(preds)])
    ids = [q["id"] for a in json.loads(data.read_text())["data"] for p in a["paragraphs"] for q in p["qas"]]
    predictions = json.loads((preds / "predictions.json").read_text())
    assert sorted(predictions) == sorted(ids) and all(isinstance(v, str) for v in predictions.values())
    assert (preds / "null_odds.json").is_file() == (dataset == "squad_v2")
    out = capsys.readouterr().out
    assert "few.json: EM" in out and "wrote" in out


def test_bad_input_is_one_line_and_exit_code_2(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"data": [{"title": "T", "paragraphs": [{"context": "The Broncos won.", "qas": [
        {"id": "q-1", "question": "Who?", "answers": [{"text": "Broncos", "answer_start": 0}]}]}]}]}))
    done = subprocess.run([sys.executable, "-m", "tasks.qa", "--dev-file", str(bad), "--split-by-article", "0.5"],
                          cwd=ROOT, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"error: {bad}: example q-1: answer 'Broncos' is not at answer_start 0 (context has 'The Bro' there)"]


@pytest.mark.parametrize("argv, message", [
    (["--dev-file", "{dev}"], "only an evaluation (dev) file was found"),
    (["--dev-file", "{dev}", "--split-by-article", "2"], "--split-by-article must be between 0 and 1"),
    (["--dev-file", "{missing}", "--split-by-article", "0.5"], "missing.json: file not found"),
    pytest.param(["--dev-file", "{dev}", "--split-by-article", "0.5", "--doc-stride", "400"], "--doc-stride 400",
                 marks=pytest.mark.bundled),  # checked against the (bundled) tokenizer's limits
    (["--dev-file", "{dev}", "--split-by-article", "0.5", "--n-best", "0"],
     "argument --n-best: must be at least 1, got 0"),
    (["predict", "--artifact", "{tmp}", "--input", "{dev}", "--output-dir", "{tmp}"], "not a trained artifact"),
])
def test_bad_flags_and_files_exit_2(tmp_path, capsys, argv, message):
    dev = tmp_path / "dev.json"
    dev.write_text(json.dumps({"data": [{"title": t, "paragraphs": [{"context": "Broncos won.", "qas": [
        {"id": t, "question": "Who?", "answers": [{"text": "Broncos", "answer_start": 0}]}]}]} for t in "AB"]}))
    names = {"dev": dev, "missing": tmp_path / "missing.json", "tmp": tmp_path}
    with pytest.raises(SystemExit) as caught:
        main([arg.format(**names) for arg in argv])
    assert caught.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert message in lines[-1]
    assert len(lines) == 1 or lines[0].startswith("usage:")  # argparse's own errors come after the usage


@pytest.mark.parametrize("mode, layers, dropout", [("prefix", "mix", 0.0), ("finetune", "last", None)])
def test_qa_defaults_are_the_token_level_recipe(mode, layers, dropout):
    """QA adopts NER's recipe (the SQuAD search, benchmarks/README.md): the layer mix without prefix dropout,
    fine-tuning on the last layer; a flag given still wins."""
    from tasks.common.cli import run_settings, train_parser
    from tasks.qa.family import FAMILY

    def model(*argv):
        return run_settings(train_parser(FAMILY).parse_args(["--mode", mode, *argv]), FAMILY, [None]).model

    assert model().layers == layers
    assert getattr(model().method_config, "dropout", None) == dropout
    assert model("--layers", "last").layers == "last"

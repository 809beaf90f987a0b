"""``python -m benchmarks gpu-check``: its parts on the CPU with tiny shapes (the whole check's dry run is
``--quick --device cpu``, minutes), the encoder it builds when the bundled one is missing, and how it reads
pytest's counts, also when the suite is cut short."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

from benchmarks import cli
from benchmarks import gpu_check as check
from conftest import REPO, data_root

CONLL_WORDS = "EU rejects German call to boycott British lamb . Peter Blackburn BRUSSELS 1996-08-22 Müller".split()


def test_the_entry_point_has_the_check(capsys):
    with pytest.raises(SystemExit) as done:
        cli.main(["gpu-check", "--help"])
    text = capsys.readouterr().out
    assert done.value.code == 0 and "--out" in text and "--quick" in text and "--budget" in text
    assert "gpu-check" in cli.catalogue()


def test_the_random_encoder_has_the_bundled_shape_and_reads_conll_words(tmp_path):
    from models.backbone import load_backbone, load_tokenizer

    vocab = check.wordpiece_vocab(CONLL_WORDS * 3 + ["rare"], 200)
    assert len(vocab) == 200 and len(set(vocab)) == 200 and vocab[:5] == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    shape = dict(check.BUNDLED_SHAPE)
    try:  # a tiny model of the same construction (the real shape takes seconds to save)
        check.BUNDLED_SHAPE.update(vocab_size=200, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                   intermediate_size=37, max_position_embeddings=64)
        folder = check.random_encoder(tmp_path / "encoder", CONLL_WORDS)
    finally:
        check.BUNDLED_SHAPE.clear()
        check.BUNDLED_SHAPE.update(shape)
    tokenizer = load_tokenizer(str(folder), pre_split_words=True)
    ids = tokenizer(CONLL_WORDS, is_split_into_words=True)["input_ids"]
    pieces = tokenizer.convert_ids_to_tokens(ids)
    assert tokenizer.unk_token_id not in ids and not any(p.startswith("##") for p in pieces)  # every piece whole
    assert "muller" in pieces  # accents stripped, as the uncased tokenizer does
    assert {"1996", "-", "08", "22", "eu", "rejects"} <= set(pieces)
    backbone = load_backbone(str(folder))
    assert backbone.config.hidden_size == 32 and backbone.config.vocab_size == 200
    assert check.BUNDLED_SHAPE == {"vocab_size": 30522, "hidden_size": 384, "num_hidden_layers": 6,
                                   "num_attention_heads": 12, "intermediate_size": 1536, "max_position_embeddings": 512}


@pytest.mark.parametrize("text,expected", [
    ("....F.s\n=== 1 failed, 5 passed, 1 skipped, 2 warnings in 3.20s ===\n", (5, 1, 0, 1)),
    ("..\n12 passed, 3 deselected in 1.0s\n", (12, 0, 0, 0)),
    ("ERROR tests/x.py\n1 error in 0.5s\n", (0, 0, 1, 0)),
    ("....................F......s   [ 40%]\n.....E..\n", (33, 1, 1, 1)),  # cut short: the progress so far
])
def test_pytests_counts_are_read_from_its_summary_or_its_progress(text, expected):
    counts = check.summary_counts(text)
    assert (counts["passed"], counts["failed"], counts["errors"], counts["skipped"]) == expected


def test_a_failing_part_is_logged_and_the_next_one_runs(tmp_path):
    report = check.Report(tmp_path / "out")
    check.part(report, "broken", lambda: 1 / 0)
    check.part(report, "fine", lambda: {"x": 1.5})
    log = (tmp_path / "out" / check.LOG).read_text()
    numbers = json.loads((tmp_path / "out" / check.NUMBERS).read_text())
    assert "FAILED: ZeroDivisionError" in log and "=== fine" in log
    assert numbers["broken"] == {"error": "ZeroDivisionError: division by zero"} and numbers["fine"] == {"x": 1.5}
    assert set(numbers["seconds"]) == {"broken", "fine"}


def test_the_bf16_comparison_runs_each_way_on_a_tiny_encoder(native_bf16, tmp_path):
    from conftest import save_tiny_model

    encoder = save_tiny_model(tmp_path / "encoder", vocab_size=1100)  # fake batches draw ids from 1000 up
    report = check.Report(tmp_path / "out")
    options = check.CheckOptions(out=tmp_path / "out", quick=True)
    rows = check.bf16_ways(report, options, str(encoder), torch.device("cpu"))
    assert [(r["what"], r["way"]) for r in rows] == [(what, way) for what in ("train step", "inference")
                                                     for way in ("fp32", "bf16 autocast", "bf16 cast once")]
    casts = {(r["what"], r["way"]): r["casts"] for r in rows}
    # autocast casts the frozen weights on every call; cast once does not
    assert casts[("inference", "bf16 autocast")] > casts[("inference", "bf16 cast once")]
    assert all(r["median_s"] > 0 and r["kernels"] is None for r in rows)


def test_the_test_suite_part_runs_pytest_and_counts(tmp_path, monkeypatch):
    tests = tmp_path / "suite"
    tests.mkdir()
    (tests / "test_tiny.py").write_text("import pytest\n\ndef test_a():\n    pass\n\n"
                                        "@pytest.mark.skip\ndef test_b():\n    pass\n")
    report = check.Report(tmp_path / "out")
    options = check.CheckOptions(out=tmp_path / "out", tests=[str(tests)])
    monkeypatch.setattr(check, "bundled_installed", lambda: True)
    result = check.test_suite(report, options, deadline=0.0, work=tmp_path, device=torch.device("cpu"))
    assert (result["passed"], result["skipped"], result["failed"], result["exit"]) == (1, 1, 0, 0)
    assert "-x" in result["command"] and not result["timed_out"]


@pytest.mark.skipif(not (data_root() / "ner" / "conll2003" / "test.txt").is_file(), reason="needs CoNLL-2003")
def test_the_data_is_found_under_the_data_root(monkeypatch):
    monkeypatch.setenv("PTV2_DATA_DIR", str(data_root()))
    assert (check.conll_folder(None) / "train.txt").is_file()
    monkeypatch.setenv("PTV2_DATA_DIR", str(REPO / "no-such-folder"))
    with pytest.raises(FileNotFoundError, match="ner/conll2003"):
        check.conll_folder(None)


def test_the_wheel_list_names_one_version_of_each_and_the_download_script_reads_it():
    lines = [line.split("#")[0].strip() for line in (REPO / "benchmarks" / "gpu_wheels.txt").read_text().splitlines()]
    specs = [line for line in lines if line]
    names = [spec.split("==")[0].lower().replace("_", "-") for spec in specs]
    assert all("==" in spec for spec in specs) and len(names) == len(set(names))
    assert {"seqeval", "fastapi", "pydantic-core", "datasets"} <= set(names)
    script = (REPO / "benchmarks" / "gpu_wheels.sh").read_text()
    assert "--python-version 3.12" in script and "gpu_wheels.txt" in script
    assert Path(sys.executable).exists()

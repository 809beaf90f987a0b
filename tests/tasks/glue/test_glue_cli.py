"""CLI smoke (bundled encoder, tiny budgets) for GLUE and SuperGLUE, submission files, and bad input -> exit 2.

Every run on the default encoder is marked ``bundled``, the bad-input ones too: the CLI resolves ``--pooling auto``
from the encoder's own pooling config before it reads any data."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import data_root

from tasks.common.cli import main as run
from tasks.glue.family import FAMILIES


def main(benchmark: str, argv: list[str]) -> None:
    """``python -m tasks.glue|superglue ARGV`` in-process."""
    run(FAMILIES[benchmark], argv)

SHARED = data_root()  # $PTV2_DATA_DIR, as CI sets it


@pytest.fixture
def needs_shared_data():
    if not (SHARED / "glue" / "rte" / "train.jsonl").is_file():
        pytest.fail(f"GLUE/SuperGLUE data not found under {SHARED}/glue; set PTV2_DATA_DIR to the shared data root")


needs_shared = pytest.mark.usefixtures("needs_shared_data")
TINY = ["--max-train-samples", "16", "--max-eval-samples", "24", "--epochs", "1", "--prefix-len", "4",
        "--batch-size", "8", "--max-length", "64", "--logging-steps", "100"]


@pytest.fixture(autouse=True)
def no_hub(monkeypatch):
    """Never touch the network: a hub lookup fails at once, as it does offline."""
    def offline(*_args, **_kwargs):
        raise ConnectionError("Couldn't reach the Hub (test)")

    monkeypatch.setattr("tasks.glue.data.load_hub", offline)


def exit_code(capsys, benchmark: str, argv: list[str]) -> tuple[int, str]:
    with pytest.raises(SystemExit) as err:
        main(benchmark, argv)
    return err.value.code, capsys.readouterr().err


@pytest.mark.bundled
@needs_shared
def test_glue_cola_train_then_predict_test_file(tmp_path):
    out = tmp_path / "cola"
    main("glue", ["--task", "cola", "--data-dir", str(SHARED), "--output-dir", str(out), *TINY])
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["dev"]["examples"] == 24 and -100.0 <= metrics["dev"]["matthews"] <= 100.0
    assert {"accuracy", "matthews"} <= set(metrics["dev"]) and (out / "adapter.safetensors").is_file()
    # flags left to the family's recipe are recorded as given (None, auto) and as used
    assert metrics["args"]["lr"] is None and metrics["args"]["pooling"] == "auto"
    resolved = metrics["resolved"]
    assert resolved["lr"] == resolved["head_lr"] == 1e-2 and resolved["pooling"] == "mean"
    assert resolved["method"] == "prefix" and resolved["method_config"]["prefix_len"] == 4
    test = tmp_path / "test.tsv"  # CoLA's test file has a header (index, sentence)
    test.write_text("index\tsentence\n0\tBill whistled past the house.\n1\tThe car honked its way.\n")
    main("glue", ["predict", "--artifact", str(out), "--input", str(test), "--output-dir", str(tmp_path / "sub")])
    lines = (tmp_path / "sub" / "CoLA.tsv").read_text().splitlines()
    assert lines[0] == "index\tprediction" and [line.split("\t")[0] for line in lines[1:]] == ["0", "1"]
    assert all(line.split("\t")[1] in ("0", "1") for line in lines[1:])


@pytest.mark.bundled
@needs_shared
def test_superglue_wic_train_then_predict_dev(tmp_path, capsys):
    out = tmp_path / "wic"
    main("superglue", ["--task", "wic", "--data-dir", str(SHARED), "--output-dir", str(out), *TINY])
    metrics = json.loads((out / "metrics.json").read_text())
    assert 0.0 <= metrics["dev"]["accuracy"] <= 100.0
    config = json.loads((out / "ptv2_config.json").read_text())
    assert config["head"]["name"] == "span-pair-classification" and config["method"]["name"] == "prefix"
    capsys.readouterr()
    dev = tmp_path / "glue" / "wic" / "val.jsonl"  # a 40-example dev split keeps the test short
    dev.parent.mkdir(parents=True)
    dev.write_text("".join((SHARED / "glue" / "wic" / "val.jsonl").open().readlines()[:40]))
    main("superglue", ["predict", "--artifact", str(out), "--split", "dev", "--data-dir", str(tmp_path)])
    rows = [json.loads(line) for line in (out / "predictions" / "WiC-dev.jsonl").read_text().splitlines()]
    assert len(rows) == 40 and rows[0]["idx"] == 0 and {r["label"] for r in rows} <= {"true", "false"}
    assert "dev (40 examples): accuracy" in capsys.readouterr().out


@pytest.mark.bundled
@needs_shared
def test_superglue_multirc_submission_is_nested(tmp_path):
    out = tmp_path / "multirc"
    argv = ["--task", "multirc", "--data-dir", str(SHARED), "--output-dir", str(out), *TINY]
    argv[argv.index("--max-train-samples") + 1] = "4"  # questions (about 5 answer options each)
    argv[argv.index("--max-eval-samples") + 1] = "6"
    main("superglue", argv)
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["dev"]) >= {"f1a", "em"} and metrics["dev"]["examples"] == 6
    sample = tmp_path / "test.jsonl"
    passage = json.loads((SHARED / "glue" / "multirc" / "val.jsonl").open().readline())
    for question in passage["passage"]["questions"]:
        for answer in question["answers"]:
            del answer["label"]  # test files carry no labels
    sample.write_text(json.dumps(passage) + "\n")
    main("superglue", ["predict", "--artifact", str(out), "--input", str(sample), "--output-dir", str(tmp_path)])
    [row] = [json.loads(line) for line in (tmp_path / "MultiRC.jsonl").read_text().splitlines()]
    questions = row["passage"]["questions"]
    assert row["idx"] == 0 and len(questions) == len(passage["passage"]["questions"])
    given = passage["passage"]["questions"][0]["answers"]
    assert [a["idx"] for a in questions[0]["answers"]] == [a["idx"] for a in given]
    assert all(a["label"] in (0, 1) for q in questions for a in q["answers"])


# ---------------------------------------------------------------- bad input: one line, exit code 2
@pytest.mark.bundled
def test_wrong_column_count_exits_2(tmp_path, capsys):
    folder = tmp_path / "glue" / "sst2"
    folder.mkdir(parents=True)
    (folder / "train.tsv").write_text("sentence\tlabel\ngood\t1\nbad\t0\textra\n")
    (folder / "dev.tsv").write_text("sentence\tlabel\ngood\t1\n")
    code, err = exit_code(capsys, "glue", ["--task", "sst2", "--data-dir", str(tmp_path)])
    assert code == 2 and err.count("\n") == 1
    assert f"{folder / 'train.tsv'}: line 3: 3 tab-separated columns, expected 2" in err


@pytest.mark.bundled
def test_unparseable_stsb_score_exits_2(tmp_path, capsys):
    header = "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore\n"
    (tmp_path / "train.tsv").write_text(header + "0\tg\tf\t2012\t1\tnone\tnone\tA plane.\tAn air plane.\t5.000\n"
                                        "1\tg\tf\t2012\t4\tnone\tnone\tA man.\tA flute.\tabout 3\n")
    (tmp_path / "dev.tsv").write_text(header)
    code, err = exit_code(capsys, "glue", ["--task", "stsb", "--data-dir", str(tmp_path)])
    assert code == 2 and "train.tsv: line 3: score 'about 3' is not a number in [0, 5]" in err


@pytest.mark.bundled
def test_label_outside_label_set_and_missing_field_exit_2(tmp_path, capsys):
    (tmp_path / "train.jsonl").write_text(json.dumps({"premise": "p", "hypothesis": "h", "label": "neutral"}) + "\n")
    (tmp_path / "val.jsonl").write_text(json.dumps({"premise": "p", "label": "entailment"}) + "\n")
    code, err = exit_code(capsys, "superglue", ["--task", "rte", "--data-dir", str(tmp_path)])
    assert code == 2 and 'train.jsonl: line 1: label "neutral" is not one of the rte labels' in err
    (tmp_path / "train.jsonl").write_text(json.dumps({"premise": "p", "hypothesis": "h", "label": "entailment"}) + "\n")
    code, err = exit_code(capsys, "superglue", ["--task", "rte", "--data-dir", str(tmp_path)])
    assert code == 2 and "val.jsonl: line 1: missing field 'hypothesis'" in err


@pytest.mark.bundled
@needs_shared
def test_missing_train_split_exits_2(capsys):
    code, err = exit_code(capsys, "superglue", ["--task", "boolq", "--data-dir", str(SHARED)])
    assert code == 2 and "train split of superglue boolq is unavailable locally" in err and err.count("\n") == 1
    assert "--split-dev" in err


@pytest.mark.bundled
@needs_shared
def test_boolq_trains_on_one_part_of_dev_and_evaluates_on_the_other(tmp_path, capsys):
    out = tmp_path / "boolq"
    main("superglue", ["--task", "boolq", "--split-dev", "0.5", "--data-dir", str(SHARED), "--output-dir", str(out),
                       *TINY])
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["train"]["examples"] == 16 and metrics["dev"]["examples"] == 24
    assert metrics["dev"]["source"].endswith("val.jsonl [1636-3270]")
    assert "train on dev examples 1-1635, evaluate on 1636-3270" in capsys.readouterr().out
    code, err = exit_code(capsys, "superglue", ["--task", "boolq", "--split-dev", "1.0", "--data-dir", str(SHARED)])
    assert code == 2 and "leaves one side" in err


def test_predict_without_artifact_exits_2(tmp_path, capsys):
    code, err = exit_code(capsys, "glue", ["predict", "--artifact", str(tmp_path)])
    assert code == 2 and "not a trained artifact" in err


# ---------------------------------------------------------------- tasks whose data is not here: synthetic folders
MNLI_HEADER = ["index", "promptID", "pairID", "genre", "sentence1_binary_parse", "sentence2_binary_parse",
               "sentence1_parse", "sentence2_parse", "sentence1", "sentence2"]


def _mnli_folder(root: Path) -> Path:
    folder = root / "glue" / "mnli"
    folder.mkdir(parents=True)
    pairs = [("A man plays.", "A person plays.", "entailment"), ("A man plays.", "Nobody plays.", "contradiction"),
             ("A man plays.", "He plays well.", "neutral")] * 4
    rows = lambda labelled: [  # noqa: E731
        [str(i), "1", f"{i}n", "fiction", "( a )", "( b )", "(ROOT a)", "(ROOT b)", a, b]
        + ([label, label] if labelled else []) for i, (a, b, label) in enumerate(pairs)]
    for name in ("train", "dev_matched", "dev_mismatched"):
        header = MNLI_HEADER + (["label1", "gold_label"])
        (folder / f"{name}.tsv").write_text("\n".join("\t".join(r) for r in [header, *rows(True)]) + "\n")
    for name in ("test_matched", "test_mismatched"):
        (folder / f"{name}.tsv").write_text("\n".join("\t".join(r) for r in [MNLI_HEADER, *rows(False)]) + "\n")
    return folder


@pytest.mark.bundled
def test_mnli_matched_and_mismatched(tmp_path):
    _mnli_folder(tmp_path)
    out = tmp_path / "run"
    main("glue", ["--task", "mnli", "--data-dir", str(tmp_path), "--output-dir", str(out), *TINY])
    metrics = json.loads((out / "metrics.json").read_text())
    assert "accuracy" in metrics["dev_matched"] and "accuracy" in metrics["dev_mismatched"]
    main("glue", ["predict", "--artifact", str(out), "--data-dir", str(tmp_path)])
    for name in ("MNLI-m.tsv", "MNLI-mm.tsv"):
        lines = (out / "predictions" / name).read_text().splitlines()
        assert lines[0] == "index\tprediction" and len(lines) == 13
        assert {line.split("\t")[1] for line in lines[1:]} <= {"entailment", "neutral", "contradiction"}


@pytest.mark.bundled
def test_record_synthetic_train_and_submission(tmp_path):
    folder = tmp_path / "glue" / "record"
    folder.mkdir(parents=True)
    text = "Tracy Morgan sued Walmart.\n@highlight\nMorgan was hurt in New Jersey"
    entities = [{"start": 0, "end": 11}, {"start": 18, "end": 24}, {"start": 38, "end": 43}, {"start": 57, "end": 66}]
    line = lambda i, answers: {"idx": i, "passage": {"text": text, "entities": entities}, "qas": [  # noqa: E731
        {"query": "@placeholder was driving the truck", "idx": 10 * i, **answers}]}
    gold = {"answers": [{"start": 18, "end": 24, "text": "Walmart"}]}
    for name in ("train.jsonl", "val.jsonl"):
        (folder / name).write_text("".join(json.dumps(line(i, gold)) + "\n" for i in range(6)))
    (folder / "test.jsonl").write_text("".join(json.dumps(line(i, {})) + "\n" for i in range(3)))
    out = tmp_path / "run"
    main("superglue", ["--task", "record", "--data-dir", str(tmp_path), "--output-dir", str(out), *TINY])
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["dev"]) >= {"f1", "em"} and metrics["dev"]["examples"] == 6
    main("superglue", ["predict", "--artifact", str(out), "--data-dir", str(tmp_path)])
    rows = [json.loads(r) for r in (out / "predictions" / "ReCoRD.jsonl").read_text().splitlines()]
    assert [r["idx"] for r in rows] == [0, 10, 20]
    assert all(r["label"] in ("Tracy Morgan", "Walmart", "Morgan", "New Jersey") for r in rows)

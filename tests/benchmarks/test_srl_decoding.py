"""The SRL decoding comparison (``python -m benchmarks srl-decoding``): argmax read from each run's metrics, bio from
the scores predict writes (``--scores``), grouped by the study's marking, and a run decoded otherwise is refused."""
from __future__ import annotations

import json

import pytest

from benchmarks import srl_decoding


def _run(folder, decoding: str, f1: float):
    folder.mkdir(parents=True)
    dev = {"f1": f1, "perfect_propositions": 10.0, "seqeval_f1": f1 + 10}
    (folder / "metrics.json").write_text(json.dumps({"args": {"decoding": decoding}, "dev": dev}))
    return folder


def test_the_table_pairs_each_artifact_s_two_decodings(tmp_path, monkeypatch):
    runs = tmp_path / "runs"
    for name, f1 in (("conll2005-8k-markers", 30.0), ("conll2005-8k-markers-seed1", 32.0),
                     ("conll2005-8k-segment", 20.0)):
        _run(runs / name, "argmax", f1)
    real = srl_decoding.subprocess.run

    def fake(command, **kwargs):  # predict's written scores; the environment's own commands (git) run
        if "tasks.srl" not in command:
            return real(command, **kwargs)
        f1 = 40.0 if "segment" in command[command.index("--artifact") + 1] else 50.0
        scores = {"dev": {"f1": f1, "perfect_propositions": 25.15, "seqeval_f1": 67.51, "roles": {"A0": {"f1": 1}}}}
        with open(command[command.index("--scores") + 1], "w") as out:
            json.dump(scores, out)
        return type("Done", (), {"returncode": 0, "stderr": "", "stdout": ""})

    monkeypatch.setattr(srl_decoding.subprocess, "run", fake)
    page = srl_decoding.run_decoding(runs, tmp_path / "dev.words", tmp_path)
    text = page.read_text()
    assert "| markers | 31.00 ± 1.41 (n=2) | 50.00 ± 0.00 (n=2) | 19.00 ± 1.41 (n=2) |" in text
    assert "| segment | 20.00 | 40.00 | 20.00 |" in text  # one artifact: its values alone


def test_a_run_decoded_with_bio_is_not_taken_for_argmax(tmp_path):
    with pytest.raises(SystemExit, match="trained with --decoding bio"):
        srl_decoding.argmax_scores(_run(tmp_path / "run", "bio", 50.0))

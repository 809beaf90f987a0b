"""The frozen-features probe (``python -m benchmarks frozen-probe``): its two readers find a signal that is there,
the page holds every layer's probe and every rate's head, and a task it cannot read is refused with exit code 2."""
from __future__ import annotations

import json

import numpy as np
import pytest

from benchmarks import frozen_probe
from conftest import LAYERS, TOKENIZER_WORDS


def separable(n: int, seed: int):
    """Vectors whose first coordinate's sign is the label, the rest noise."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 8)).astype(np.float32)
    return x, (x[:, 0] > 0).astype(int)


def test_both_readers_find_a_linear_signal():
    train, held, dev = separable(400, 0), separable(100, 1), separable(100, 2)
    assert frozen_probe.linear_probe(*train, held, dev)["dev_mcc"] > 90
    head = frozen_probe.head_alone(*train, held, dev, rate=1e-2, seed=0, epochs=3, batch=16)
    assert head["dev_mcc"] > 80 and 0.3 < head["dev_positive"] < 0.7


def test_the_page_holds_every_layer_and_rate(tmp_path, tiny_model_dir, monkeypatch):
    monkeypatch.setattr(frozen_probe, "SEEDS", (42, 1))  # the mean ± sd needs two
    folder = tmp_path / "glue" / "cola"
    folder.mkdir(parents=True)
    for split, n in (("train", 60), ("dev", 20)):
        rows = [f"src\t{k % 2}\t\t{' '.join(TOKENIZER_WORDS[(k * 3 + i) % 20] for i in range(3 + k % 4))}"
                for k in range(n)]
        (folder / f"{split}.tsv").write_text("\n".join(rows) + "\n")
    page = frozen_probe.run_probe("cola", str(tiny_model_dir), str(tmp_path), 32, 1.0, 8, tmp_path)
    result = json.loads(page.with_suffix(".json").read_text())
    assert len(result["probes"]) == 2 * (LAYERS + 1) + 1 and len(result["heads"]) == 2 * len(frozen_probe.RATES)
    assert result["examples"] == {"fit": 54, "held_out": 6, "dev": 20}
    assert all(-100 <= p["dev_mcc"] <= 100 for p in result["probes"])
    assert f"| layer {LAYERS}, mean |" in page.read_text()


def test_a_task_it_cannot_read_is_refused(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        frozen_probe.run_probe("stsb", None, str(tmp_path), 32, 1.0, 8, tmp_path)
    assert exit_.value.code == 2 and "two-class" in capsys.readouterr().err

"""The distributed path: ``torchrun --nproc-per-node 2`` of a tiny NER run (CPU and gloo, or a GPU per process).

Part of the default suite (and CI); one torchrun of a tiny local encoder, well under a minute.

Where: with fewer GPUs than processes (none on CI, or one) the children run with ``CUDA_VISIBLE_DEVICES=""``, so
``torch.cuda.is_available()`` is False in them and the training code takes its CPU path (``use_cpu`` in
tasks/common/training.py: gloo), as on CI; left to see a single GPU, both ranks would go to NCCL with one GPU
between them, which it refuses. With a GPU per process the children see the GPUs and train on them, one each (NCCL).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from conftest import REPO, subprocess_env, write_tagged_conll

pytestmark = pytest.mark.distributed

TRAIN_SAMPLES, BATCH, PROCESSES = 16, 4, 2


def torchrun_env() -> dict[str, str]:
    """The children's environment: no GPU at all unless there is one for each process (module docstring)."""
    if torch.cuda.device_count() < PROCESSES:
        return subprocess_env(CUDA_VISIBLE_DEVICES="")
    return subprocess_env()




def ner_flags(model_dir: Path, train: Path, dev: Path, out: Path) -> list[str]:
    return ["--model", str(model_dir), "--train-file", str(train), "--dev-file", str(dev),
            "--max-train-samples", str(TRAIN_SAMPLES), "--max-length", "32", "--epochs", "1",
            "--batch-size", str(BATCH), "--prefix-len", "4", "--output-dir", str(out)]


@pytest.fixture(scope="module")
def torchrun(tmp_path_factory, tiny_model_dir):
    import subprocess

    folder = tmp_path_factory.mktemp("torchrun")
    train = write_tagged_conll(folder / "train.conll", 24, seed=0)
    dev = write_tagged_conll(folder / "dev.conll", 10, seed=1)
    out = folder / "run"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={PROCESSES}",
               "-m", "tasks.ner", *ner_flags(tiny_model_dir, train, dev, out)]
    result = subprocess.run(command, cwd=REPO, env=torchrun_env(), capture_output=True, text=True, timeout=180)
    return result, out, (train, dev)


def test_two_process_run_completes(torchrun):
    result, out, _ = torchrun
    assert result.returncode == 0, f"stdout:\n{result.stdout}\nstderr:\n{result.stderr[-4000:]}"
    assert "Traceback" not in result.stderr
    assert result.stdout.count("dev: precision") == 1  # reports come from rank 0 only
    metrics = json.loads((out / "metrics.json").read_text())
    assert 0.0 <= metrics["dev"]["f1"] <= 100.0 and metrics["dev"]["alignment"]["sentences"] == 10


def test_two_process_run_writes_the_same_artifact_format(torchrun, tiny_model_dir, tmp_path):
    """Same files, config keys and tensor names/shapes as a single-process model built by the same CLI code."""
    from heads import TokenClassificationHead
    from tasks.common.artifacts import CONFIG, WEIGHTS, artifact_names, load_artifact, save_artifact
    from tasks.common.cli import family_settings, run_settings, train_parser
    from tasks.common.pipeline import build_task_model
    from tasks.ner.family import FAMILY

    result, out, (train, dev) = torchrun
    assert result.returncode == 0, result.stderr[-4000:]
    parsed = train_parser(FAMILY).parse_args(ner_flags(tiny_model_dir, train, dev, tmp_path))
    settings = run_settings(parsed, FAMILY, [family_settings(FAMILY, parsed)])
    labels = json.loads((out / "metrics.json").read_text())["task"]["labels"]
    single = build_task_model(settings.model, TokenClassificationHead(32, len(labels)), settings.train.max_length,
                              settings.train.seed)
    save_artifact(single, tmp_path, {"family": "ner", "dataset": "conll2003", "labels": labels, "max_length": 32})

    distributed_config = json.loads((out / CONFIG).read_text())
    single_config = json.loads((tmp_path / CONFIG).read_text())
    assert distributed_config == single_config  # same format, encoder, fingerprint, method, head, task
    tensors, expected = load_file(str(out / WEIGHTS)), load_file(str(tmp_path / WEIGHTS))
    assert {k: v.shape for k, v in tensors.items()} == {k: v.shape for k, v in expected.items()}
    assert not any(k.startswith("module.") for k in tensors)  # no DDP wrapper names

    model = load_artifact(out).model  # loads back onto its encoder
    names = artifact_names(model)
    own = {names[k]: v for k, v in model.state_dict().items() if k in names}
    for name, tensor in tensors.items():
        assert torch.equal(own[name], tensor)
    checkpoint = sorted((out / "checkpoints").iterdir())[-1]
    assert set(load_file(str(checkpoint / "model.safetensors"))) == set(names)  # checkpoints: the model's own names


def test_two_processes_share_the_data(torchrun):
    """With real data parallelism each optimizer step consumes BATCH examples per process."""
    result, out, _ = torchrun
    assert result.returncode == 0
    state = json.loads((sorted((out / "checkpoints").iterdir())[-1] / "trainer_state.json").read_text())
    assert state["global_step"] == TRAIN_SAMPLES // (BATCH * PROCESSES)


def test_multitask_training_runs_under_torchrun(tmp_path, tiny_model_dir):
    """Two members with local CoNLL folders, two processes: one artifact with both heads, reports from rank 0."""
    import subprocess

    for name, seed in (("a", 0), ("b", 2)):
        folder = tmp_path / name
        folder.mkdir()
        write_tagged_conll(folder / "train.txt", 16, seed=seed)
        write_tagged_conll(folder / "dev.txt", 6, seed=seed + 1)
    out = tmp_path / "run"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={PROCESSES}",
               "-m", "tasks.multitask", "ner", "--tasks", f"a={tmp_path / 'a'}", f"b={tmp_path / 'b'}",
               "--model", str(tiny_model_dir), "--max-length", "32", "--epochs", "1", "--batch-size", str(BATCH),
               "--prefix-len", "4", "--output-dir", str(out)]
    result = subprocess.run(command, cwd=REPO, env=torchrun_env(), capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, f"stdout:\n{result.stdout}\nstderr:\n{result.stderr[-4000:]}"
    assert result.stdout.count("--- a") == 1  # rank 0 alone reports
    config = json.loads((out / "ptv2_config.json").read_text())
    assert set(config["members"]) == {"a", "b"}

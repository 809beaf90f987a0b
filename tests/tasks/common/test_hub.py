"""The Hub both ways: ``--artifact user/name`` (predict, serve, ``--init-from``) reads a snapshot of the Hub cache,
laid out as huggingface_hub lays it out, offline; pushing sends the artifact's files and nothing else (the Hub is
unreachable here: ``HfApi`` is replaced by a recorder)."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import torch

from conftest import HIDDEN, write_tagged_conll
from heads import TokenClassificationHead
from models.adapted import build_model
from models.methods import PrefixConfig
from served_tasks import NER_LABELS, perturbed
from tasks.common.artifacts import CARD, CONFIG, WEIGHTS, init_from, load_artifact, save_artifact
from tasks.common.errors import DataError

REPO, REVISION = "someone/tiny-ner", "0123456789abcdef0123456789abcdef01234567"
RECORD = {"family": "ner", "dataset": "tiny-ner", "labels": NER_LABELS, "max_length": 32}


def cached_snapshot(cache: Path, repo: str, folder: Path) -> Path:
    """``folder``'s files as huggingface_hub caches a repo: blobs, a snapshot of symlinks to them, refs/main."""
    root = cache / f"models--{repo.replace('/', '--')}"
    snapshot, blobs = root / "snapshots" / REVISION, root / "blobs"
    for path in (snapshot, blobs, root / "refs"):
        path.mkdir(parents=True, exist_ok=True)
    (root / "refs" / "main").write_text(REVISION)
    for file in folder.iterdir():
        if file.is_file():
            data = file.read_bytes()
            blob = hashlib.sha256(data).hexdigest()
            (blobs / blob).write_bytes(data)
            (snapshot / file.name).symlink_to(Path("..") / ".." / "blobs" / blob)
    return snapshot


@pytest.fixture
def hub_cache(tmp_path, monkeypatch):
    """An empty Hub cache (HF_HUB_CACHE) with the Hub offline."""
    from huggingface_hub import constants

    cache = tmp_path / "hub-cache"
    cache.mkdir()
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    return cache


@pytest.fixture
def pushed_artifact(tmp_path, tiny_model_dir) -> Path:
    model = build_model(str(tiny_model_dir), TokenClassificationHead(HIDDEN, len(NER_LABELS)), "prefix",
                        PrefixConfig(prefix_len=2))
    save_artifact(perturbed(model), tmp_path / "artifact", RECORD)
    return tmp_path / "artifact"


def test_an_artifact_named_by_its_hub_repo_loads_from_the_cache_offline(hub_cache, pushed_artifact):
    cached_snapshot(hub_cache, REPO, pushed_artifact)
    ids = torch.tensor([[2, 7, 9, 3], [2, 8, 3, 0]])
    with torch.no_grad():
        local = load_artifact(pushed_artifact).model(input_ids=ids, attention_mask=(ids > 0).long()).logits
        loaded = load_artifact(REPO)
        hub = loaded.model(input_ids=ids, attention_mask=(ids > 0).long()).logits
    assert loaded.path.parts[-2:] == ("snapshots", REVISION)
    torch.testing.assert_close(hub, local, atol=0, rtol=0)
    assert load_artifact(f"{REPO}@main").path == loaded.path


def test_predict_serve_and_init_from_take_a_hub_repo(hub_cache, pushed_artifact, tmp_path, tiny_model_dir):
    from tasks.ner.__main__ import main
    from tasks.serve.engine import Engine

    cached_snapshot(hub_cache, REPO, pushed_artifact)
    text = tmp_path / "in.txt"
    text.write_text("john smith lives in paris\npeter said\n")
    for artifact, out in ((str(pushed_artifact), "local.conll"), (REPO, "hub.conll")):
        main(["predict", "--artifact", artifact, "--input", str(text), "--format", "text", "--output",
              str(tmp_path / out)])
    assert (tmp_path / "hub.conll").read_text() == (tmp_path / "local.conll").read_text()
    answer = Engine([REPO]).answer([("tiny-ner", {"text": "john lives"})])[0]
    assert set(answer["tags"]) <= set(NER_LABELS)
    fresh = build_model(str(tiny_model_dir), TokenClassificationHead(HIDDEN, len(NER_LABELS)), "prefix",
                        PrefixConfig(prefix_len=2))
    assert "the head of the artifact (same labels)" in init_from(fresh, REPO, {"task": RECORD})


def test_a_repo_not_in_the_cache_offline_is_one_line(hub_cache):
    with pytest.raises(DataError, match="not in the Hub cache and the Hub cannot be reached"):
        load_artifact("someone/missing")


class RecordingApi:
    """``HfApi`` as far as a push goes, recording what it would send."""

    calls: list = []

    def __init__(self, *args, **kwargs) -> None:
        pass

    def create_repo(self, repo_id, private=False, exist_ok=False, **kwargs):
        RecordingApi.calls.append(("create_repo", repo_id, private, exist_ok))

    def upload_folder(self, repo_id, folder_path, allow_patterns=None, commit_message=None, **kwargs):
        from huggingface_hub.utils import filter_repo_objects

        files = sorted(filter_repo_objects([p.relative_to(folder_path).as_posix() for p in
                                            Path(folder_path).rglob("*") if p.is_file()],
                                           allow_patterns=allow_patterns))
        RecordingApi.calls.append(("upload_folder", repo_id, files))
        return type("CommitInfo", (), {"commit_url": f"https://huggingface.co/{repo_id}/commit/1"})()


@pytest.fixture
def recording_hub(monkeypatch):
    import huggingface_hub

    RecordingApi.calls = []
    monkeypatch.setattr(huggingface_hub, "HfApi", RecordingApi)
    return RecordingApi.calls


def test_push_sends_the_artifact_files_and_nothing_else(pushed_artifact, recording_hub, capsys):
    from tasks.export.__main__ import main

    (pushed_artifact / "checkpoints" / "checkpoint-4").mkdir(parents=True)
    (pushed_artifact / "checkpoints" / "checkpoint-4" / "adapter.safetensors").write_bytes(b"x")
    (pushed_artifact / "run.json").write_text("{}")
    (pushed_artifact / "metrics.json").write_text(json.dumps({"test": {"f1": 50.0}, "headline": {
        "split": "test", "metric": "f1", "value": 50.0}}))
    main(["push", "--artifact", str(pushed_artifact), "--repo", "someone/ner", "--private"])
    assert recording_hub == [("create_repo", "someone/ner", True, True),
                             ("upload_folder", "someone/ner", sorted([CARD, "metrics.json", CONFIG, WEIGHTS]))]
    assert "https://huggingface.co/someone/ner/commit/1" in capsys.readouterr().out


def test_a_training_run_pushes_and_leaves_its_history(tmp_path, tiny_model_dir, recording_hub):
    from tasks.ner.__main__ import main

    train = write_tagged_conll(tmp_path / "train.conll", 16, seed=0)
    dev = write_tagged_conll(tmp_path / "dev.conll", 4, seed=1)
    out = tmp_path / "run"
    main(["--model", str(tiny_model_dir), "--train-file", str(train), "--dev-file", str(dev), "--test-file", str(dev),
          "--prefix-len", "2", "--epochs", "2", "--batch-size", "8", "--max-length", "32", "--logging-steps", "1",
          "--output-dir", str(out), "--push-to-hub", "someone/run", "--report-to", "none"])
    assert recording_hub[-1][:2] == ("upload_folder", "someone/run") and CONFIG in recording_hub[-1][2]
    metrics = json.loads((out / "metrics.json").read_text())
    steps = [entry for entry in metrics["history"] if "loss" in entry]
    assert [entry["step"] for entry in steps] == [1, 2, 3, 4]
    assert all(isinstance(entry["loss"], float) and "learning_rate" in entry for entry in steps)
    assert "train_loss" in metrics["history"][-1]


def test_metrics_args_keep_their_json_types():
    from tasks.common.pipeline import typed_args

    flags = {"lr": None, "epochs": 2.0, "seed": 3, "select_best": False, "tasks": ("a", "b"), "output_dir": Path("x"),
             "pooling": "auto"}
    assert typed_args(flags) == {"lr": None, "epochs": 2.0, "seed": 3, "select_best": False, "tasks": ["a", "b"],
                                 "output_dir": "x", "pooling": "auto"}

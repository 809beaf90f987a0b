"""Where a run's model runs: ``predict --device`` puts the artifact's model there and predicts there, and torchrun
with more processes per node than GPUs stops with one line (exit 2).  CUDA is stubbed: these run on any machine."""
from __future__ import annotations


import pytest
import torch

from conftest import write_tagged_conll

from tasks.common.devices import check_processes, resolve_device, too_many_processes
from tasks.common.errors import UsageError



def gpus(monkeypatch, count: int) -> None:
    """torch sees ``count`` CUDA devices from now on (nothing is ever run on them here)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: count > 0)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: count)


def test_the_device_defaults_to_the_gpu_when_there_is_one(monkeypatch):
    gpus(monkeypatch, 0)
    assert resolve_device(None) == torch.device("cpu")
    gpus(monkeypatch, 2)
    assert resolve_device(None) == torch.device("cuda", 0) == resolve_device("cuda") == resolve_device("cuda:0")
    assert resolve_device("cpu") == torch.device("cpu")


@pytest.mark.parametrize("name,count,message", [
    ("cuda", 0, "no CUDA device is visible"),
    ("cuda:3", 2, "only 2 CUDA device(s)"),
    ("cuda:1", 2, "CUDA_VISIBLE_DEVICES=1 and --device cuda"),
    ("tpu", 1, "expected cpu, cuda or cuda:N"),
    ("nonsense", 1, "expected cpu, cuda or cuda:N"),
])
def test_a_device_that_is_not_there_is_a_usage_error(monkeypatch, name, count, message):
    gpus(monkeypatch, count)
    with pytest.raises(UsageError) as caught:
        resolve_device(name)
    assert message in str(caught.value)


def test_more_torchrun_processes_than_gpus_is_refused_with_the_two_ways_out():
    assert too_many_processes(2, 0) is None  # CPU processes (gloo)
    assert too_many_processes(2, 2) is None and too_many_processes(1, 4) is None
    reason = too_many_processes(4, 1)
    assert "4 processes" in reason and "only 1 GPU(s)" in reason
    assert "--nproc-per-node 1" in reason and "CUDA_VISIBLE_DEVICES= to run 4 CPU processes" in reason
    assert "\n" not in reason


def test_the_rule_exits_2_with_one_line_from_the_first_process_only(capsys):
    check_processes({}, gpus=1)  # not under torchrun
    check_processes({"LOCAL_WORLD_SIZE": "2", "LOCAL_RANK": "0"}, gpus=2)
    for rank, lines in (("0", 1), ("1", 0)):
        with pytest.raises(SystemExit) as caught:
            check_processes({"LOCAL_WORLD_SIZE": "2", "LOCAL_RANK": rank}, gpus=1)
        assert caught.value.code == 2
        err = capsys.readouterr().err
        assert len(err.splitlines()) == lines and (not lines or err.startswith("error: torchrun started 2"))


def test_a_task_cli_under_torchrun_stops_before_anything_else(monkeypatch, capsys, tmp_path):
    from tasks.ner.__main__ import main

    gpus(monkeypatch, 1)
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_RANK", "0")
    with pytest.raises(SystemExit) as caught:
        main(["--output-dir", str(tmp_path / "never")])
    err = capsys.readouterr().err
    assert caught.value.code == 2 and err.count("\n") == 1 and "--nproc-per-node 1" in err
    assert not (tmp_path / "never").exists()


# --------------------------------------------------------------------------- predict --device
@pytest.fixture(scope="module")
def artifact(tmp_path_factory, tiny_model_dir):
    """A tiny NER artifact trained in-process on the CPU (CUDA hidden, on any machine)."""
    from tasks.ner.__main__ import main

    folder = tmp_path_factory.mktemp("device-artifact")
    train, dev = write_tagged_conll(folder / "train.conll", 12, 0), write_tagged_conll(folder / "dev.conll", 4, 1)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(torch.cuda, "is_available", lambda: False)
        main(["--model", str(tiny_model_dir), "--train-file", str(train), "--dev-file", str(dev), "--max-length",
              "32", "--epochs", "1", "--batch-size", "4", "--prefix-len", "4", "--output-dir", str(folder / "run")])
    return folder / "run", dev


def test_predict_runs_the_artifacts_model_on_the_device_given(monkeypatch, artifact, tmp_path):
    import tasks.common.pipeline as pipeline
    from tasks.ner.__main__ import main

    out, dev = artifact
    seen = []
    real = pipeline.Predictor

    def spy(model, *args, **kwargs):
        seen.append(next(model.parameters()).device)
        return real(model, *args, **kwargs)

    monkeypatch.setattr(pipeline, "Predictor", spy)
    gpus(monkeypatch, 0)
    main(["predict", "--artifact", str(out), "--input", str(dev), "--output", str(tmp_path / "a.conll"),
          "--device", "cpu"])
    main(["predict", "--artifact", str(out), "--input", str(dev), "--output", str(tmp_path / "b.conll")])  # default
    assert seen == [torch.device("cpu")] * 2
    assert (tmp_path / "a.conll").read_text() == (tmp_path / "b.conll").read_text()


def test_predict_moves_the_loaded_model_to_the_resolved_device(monkeypatch, artifact):
    """The GPU path without a GPU: with one visible, the default device is cuda:0 and the model goes there."""
    import tasks.common.pipeline as pipeline
    from tasks.common.cli import predict_parser, predict_settings
    from tasks.ner.family import FAMILY

    out, dev = artifact
    gpus(monkeypatch, 1)
    parsed = predict_parser(FAMILY).parse_args(["--artifact", str(out), "--input", str(dev), "--output", "x"])
    settings = predict_settings(parsed, FAMILY)
    assert settings.device == "cuda:0"
    moved, real_load = [], pipeline.load_artifact

    def load(*args, **kwargs):
        loaded = real_load(*args, **kwargs)
        loaded.model.to = lambda device: moved.append(device) or loaded.model  # recorded, not moved
        return loaded

    class Stop(Exception):
        pass

    def stop(*args, **kwargs):
        raise Stop

    monkeypatch.setattr(pipeline, "load_artifact", load)
    monkeypatch.setattr(pipeline, "answer_chunks", stop)
    with pytest.raises(Stop):
        pipeline.predict_with_artifact(FAMILY, settings)
    assert moved == ["cuda:0"]


def test_prediction_uses_the_cpu_exactly_when_the_model_is_there(monkeypatch, artifact, tmp_path):
    import tasks.common.training as training
    from tasks.common.artifacts import load_artifact
    from tasks.ner.family import FAMILY
    from transformers import DataCollatorWithPadding

    out, _ = artifact
    loaded = load_artifact(out, FAMILY)
    devices, forward = [], loaded.model.forward
    monkeypatch.setattr(loaded.model, "forward", lambda input_ids, **kw: devices.append(input_ids.device)
                        or forward(input_ids, **kw))
    rows = [dict(loaded.tokenizer(text)) for text in ("john lives in paris", "acme corp")]
    logits = training.predict(loaded.model, rows, DataCollatorWithPadding(loaded.tokenizer), 4, tmp_path)
    assert {d.type for d in devices} == {"cpu"} and logits.shape[:2] == (2, max(len(r["input_ids"]) for r in rows))
    assert next(loaded.model.parameters()).device.type == "cpu"  # left where it was, also on a GPU machine


@pytest.mark.parametrize("flags,count,message", [
    (["--device", "cuda"], 0, "no CUDA device is visible"),
    (["--device", "cuda", "--precision", "int8"], 1, "runs on the CPU only"),
])
def test_predict_refuses_a_device_or_precision_it_cannot_run_in_one_line(monkeypatch, capsys, artifact, tmp_path,
                                                                       flags, count, message):
    from tasks.ner.__main__ import main

    out, dev = artifact
    gpus(monkeypatch, count)
    with pytest.raises(SystemExit) as caught:
        main(["predict", "--artifact", str(out), "--input", str(dev), "--output", str(tmp_path / "x"), *flags])
    err = capsys.readouterr().err
    assert caught.value.code == 2 and err.count("\n") == 1 and message in err and "Traceback" not in err

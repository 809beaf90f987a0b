"""``--bf16`` training: a frozen encoder is cast to bf16 once by the model and the Trainer does not autocast on top;
a method that trains encoder tensors keeps the Trainer's autocast.  Dev evaluation in fp32 during a cast run sees
the exact fp32 encoder; after training the encoder is fp32 and unchanged, and the prefix has trained."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import DataCollatorForTokenClassification

from conftest import HIDDEN, model_from_flags, tagging_dataset, train_with_flags
from heads import TokenClassificationHead
from models.precision import weights_cast
from tasks.common.training import CHECKPOINT_WEIGHTS, CHECKPOINTS

FLAGS = ("--batch-size", "4", "--lr", "0.01", "--logging-steps", "1", "--epochs", "1")


def build(model_dir: Path, method: str):
    length = ["--prefix-len", "4"] if method == "prefix" else []
    return model_from_flags(TokenClassificationHead(HIDDEN, 3, dropout=0.0), "--model", str(model_dir), "--method",
                            method, *length)


def cpu_copy(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: p.detach().to("cpu", copy=True) for name, p in module.named_parameters()}


def watcher(seen: list):
    """A dev evaluator that records the encoder's state as training hands it over, and inside fp32 inference."""
    def evaluate(model) -> dict[str, float]:
        seen.append(("given", weights_cast(model.backbone), model.precision))
        with model.inference("fp32") as runner:
            seen.append(("fp32", weights_cast(runner.backbone), next(runner.backbone.parameters()).dtype))
        return {"f1": 50.0}
    return evaluate


def test_a_frozen_encoder_trains_cast_once_without_the_trainers_autocast(native_bf16, tmp_path, tiny_model_dir,
                                                                         tiny_tokenizer):
    model = build(tiny_model_dir, "prefix")
    encoder, prefix = cpu_copy(model.backbone), cpu_copy(model.method)
    seen: list = []
    trainer = train_with_flags(model, tmp_path, tagging_dataset(), DataCollatorForTokenClassification(tiny_tokenizer),
                               "--bf16", *FLAGS, "--eval-every", "2", evaluator=watcher(seen),
                               selection_metric="f1")
    assert trainer.args.bf16 is False  # the Trainer does not autocast: the encoder is already bf16
    assert seen[:2] == [("given", True, "bf16"), ("fp32", False, torch.float32)]
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    assert len(losses) == 4 and all(math.isfinite(loss) for loss in losses)
    assert not weights_cast(model.backbone) and model.precision == "fp32"
    after = cpu_copy(model.backbone)
    assert all(after[name].dtype == torch.float32 and torch.equal(after[name], encoder[name]) for name in encoder)
    assert any(not torch.equal(p, prefix[name]) for name, p in cpu_copy(model.method).items())
    saved = load_file(str(tmp_path / CHECKPOINTS / "checkpoint-4" / CHECKPOINT_WEIGHTS))
    assert saved and all(t.dtype == torch.float32 for t in saved.values())
    assert not any(name.startswith("backbone.") for name in saved)


@pytest.mark.parametrize("method", ["finetune", "bitfit"])
def test_methods_that_train_encoder_tensors_keep_the_trainers_autocast(native_bf16, tmp_path, tiny_model_dir,
                                                                       tiny_tokenizer, method):
    model = build(tiny_model_dir, method)
    seen: list = []
    trainer = train_with_flags(model, tmp_path, tagging_dataset(), DataCollatorForTokenClassification(tiny_tokenizer),
                               "--bf16", *FLAGS, "--eval-every", "4", evaluator=watcher(seen),
                               selection_metric="f1")
    assert trainer.args.bf16 is True
    assert seen[0] == ("given", False, "fp32")
    assert all(p.dtype == torch.float32 for p in model.backbone.parameters())


def test_the_cli_records_how_bf16_ran_and_the_steps(native_bf16, tmp_path, tiny_model_dir, capsys):
    from tasks.ner.__main__ import main

    words = "john smith lives in paris acme corp".split()
    tags = {"john": "B-PER", "smith": "I-PER", "paris": "B-LOC", "acme": "B-ORG", "corp": "I-ORG"}
    for split, count in (("train", 8), ("dev", 3)):
        (tmp_path / f"{split}.conll").write_text("\n\n".join(
            "\n".join(f"{w} {tags.get(w, 'O')}" for w in words[i % 3:] + words[: i % 3]) for i in range(count)) + "\n")
    out = tmp_path / "run"
    main(["--model", str(tiny_model_dir), "--train-file", str(tmp_path / "train.conll"), "--dev-file",
          str(tmp_path / "dev.conll"), "--max-length", "32", "--max-steps", "2", "--batch-size", "4", "--prefix-len",
          "4", "--bf16", "--output-dir", str(out)])
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["resolved"]["bf16"] == "cast" and metrics["steps"] == 2
    assert metrics["device"].split(":")[0] in ("cpu", "cuda")
    assert "--bf16: the frozen encoder's weights cast to bf16 once" in capsys.readouterr().out

"""The reference training protocol: dev evaluation during training, best-dev selection that survives a
resume, the per-epoch exponential schedule, and a head learning rate of its own (the prefix initialisations the
protocol uses are tested in tests/models/test_prefix_init.py)."""
from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file
from transformers import DataCollatorForTokenClassification

from conftest import HIDDEN, tagging_dataset, train_with_flags
from heads import TokenClassificationHead
from models.adapted import build_model
from models.methods import PrefixConfig
from tasks.common.training import CHECKPOINT_WEIGHTS, CHECKPOINTS

NUM_LABELS = 3


class Scripted:
    """A dev 'metric' that returns the given scores in turn (one per evaluation), and counts the calls."""

    def __init__(self, *scores: float) -> None:
        self.scores, self.calls = list(scores), 0

    def __call__(self, model) -> dict[str, float]:
        self.calls += 1
        return {"f1": self.scores.pop(0)}


class Killed(Exception):
    pass


def run(model_dir, out, tokenizer, evaluator, *flags, kill_at: int | None = None):
    torch.manual_seed(0)
    model = build_model(str(model_dir), TokenClassificationHead(HIDDEN, NUM_LABELS), "prefix",
                        PrefixConfig(prefix_len=4))
    steps = [0]

    def count(module, _args):
        if module.training:
            steps[0] += 1
            if steps[0] == kill_at:
                raise Killed()
    model.head.register_forward_pre_hook(count)
    collator = DataCollatorForTokenClassification(tokenizer)
    try:
        trainer = train_with_flags(model, out, tagging_dataset(), collator, "--batch-size", "4", "--lr", "0.01",
                                   "--logging-steps", "1", *flags, evaluator=evaluator, selection_metric="f1")
    except Killed:
        return model, None
    return model, trainer


def test_select_best_loads_the_best_dev_checkpoint(tmp_path, tiny_model_dir, tiny_tokenizer):
    dev = Scripted(50.0, 80.0, 60.0)  # epoch 2 is the best
    model, trainer = run(tiny_model_dir, tmp_path, tiny_tokenizer, dev, "--epochs", "3", "--select-best")
    assert dev.calls == 3 and trainer.state.best_global_step == 8 and trainer.state.best_metric == 80.0
    best = load_file(str(tmp_path / CHECKPOINTS / "checkpoint-8" / CHECKPOINT_WEIGHTS))
    # the files load onto the CPU; the model is where the Trainer put it (the GPU, where there is one)
    for name, tensor in model.trainable_state_dict().items():
        assert torch.equal(tensor.cpu(), best[name]), f"{name} is not the best checkpoint's"
    last = load_file(str(tmp_path / CHECKPOINTS / "checkpoint-12" / CHECKPOINT_WEIGHTS))
    assert any(not torch.equal(last[n], t.cpu()) for n, t in model.trainable_state_dict().items())
    logged = [e for e in trainer.state.log_history if "eval_f1" in e]
    assert [e["epoch"] for e in logged] == [1.0, 2.0, 3.0] and all(e["train_seconds"] >= 0 for e in logged)


def test_the_best_so_far_survives_a_kill_and_resume(tmp_path, tiny_model_dir, tiny_tokenizer):
    first = Scripted(50.0, 80.0)
    run(tiny_model_dir, tmp_path, tiny_tokenizer, first, "--epochs", "3", "--select-best", kill_at=10)
    assert first.calls == 2  # epochs 1 and 2 were evaluated before the kill in epoch 3
    model, trainer = run(tiny_model_dir, tmp_path, tiny_tokenizer, Scripted(60.0), "--epochs", "3",
                         "--select-best", "--resume")
    assert trainer.state.best_metric == 80.0 and trainer.state.best_global_step == 8
    best = load_file(str(tmp_path / CHECKPOINTS / "checkpoint-8" / CHECKPOINT_WEIGHTS))
    assert all(torch.equal(t.cpu(), best[n]) for n, t in model.trainable_state_dict().items())  # file: on the CPU


def test_eval_every_n_steps_evaluates_and_saves_at_those_steps(tmp_path, tiny_model_dir, tiny_tokenizer):
    dev = Scripted(*range(10))
    _, trainer = run(tiny_model_dir, tmp_path, tiny_tokenizer, dev, "--epochs", "2", "--eval-every", "3")
    assert [e["step"] for e in trainer.state.log_history if "eval_f1" in e] == [3, 6, 8]  # and the last step
    assert (tmp_path / CHECKPOINTS / "checkpoint-6").is_dir()


def test_the_exponential_schedule_steps_once_per_epoch(tmp_path, tiny_model_dir, tiny_tokenizer):
    _, trainer = run(tiny_model_dir, tmp_path, tiny_tokenizer, None, "--epochs", "3", "--schedule", "exponential",
                     "--lr-decay", "0.5")
    rates = [e["learning_rate"] for e in trainer.state.log_history if "learning_rate" in e]
    assert len(rates) == 12  # 4 steps per epoch, logged every step
    assert rates == pytest.approx([0.01] * 4 + [0.005] * 4 + [0.0025] * 4)


def test_the_head_gets_its_own_learning_rate(tmp_path, tiny_model_dir, tiny_tokenizer):
    _, trainer = run(tiny_model_dir, tmp_path, tiny_tokenizer, None, "--epochs", "1", "--head-lr", "0.002")
    model = trainer.model
    by_param = {id(p): group["lr"] for group in trainer.optimizer.param_groups for p in group["params"]}
    initial = {id(p): group["initial_lr"] for group in trainer.optimizer.param_groups for p in group["params"]}
    assert {initial[id(p)] for p in model.head.parameters()} == {0.002}
    assert initial[id(model.method.encoder.embedding.weight)] == 0.01
    assert set(by_param.values()) == {0.0}  # both decayed linearly to 0 by the last step

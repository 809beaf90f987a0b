"""Artifacts (trained tensors + config naming the encoder) and checkpoint/resume through the Trainer.

The encoders here are tiny random BERTs saved with ``save_pretrained`` (plus a tokenizer) into a
temporary folder, so ``build_model``/``load_artifact`` load them by local path like any encoder.
"""
from __future__ import annotations

import dataclasses
import importlib.util
import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import DataCollatorForTokenClassification

from conftest import HIDDEN, cli_settings, save_tiny_model, tagging_dataset, train_with_flags
from heads import TokenClassificationHead
from models.adapted import build_model
from models.backbone import fingerprint
from models.methods import get_method
from tasks.common.artifacts import (CONFIG, FORMAT, WEIGHTS, artifact_names, load_artifact, read_artifact_config,
                                    save_artifact)
from conftest import cli_settings as parse_flags
from tasks.common.settings import train_subset
from tasks.common.errors import DataError
from tasks.common.training import CHECKPOINT_WEIGHTS, CHECKPOINTS, COMPLETE

NUM_LABELS = 3
needs_peft = pytest.mark.skipif(importlib.util.find_spec("peft") is None, reason="needs the optional package peft")
TASK = {"name": "ner", "labels": ["O", "B-X", "I-X"], "max_length": 32}


def make_model(model_dir: Path, method: str = "prefix", head_dropout: float = 0.1, **config):
    head = TokenClassificationHead(HIDDEN, NUM_LABELS, dropout=head_dropout)
    if method == "prefix":
        config.setdefault("prefix_len", 4)
    if method == "prompt":
        config = {"prompt_len": 4}
    return build_model(str(model_dir), head, method, get_method(method).config_class(**config))


def sample_inputs(seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, 99, (3, 10), generator=generator)
    mask = torch.ones_like(ids)
    mask[1, 6:] = 0
    mask[2, 3:] = 0
    return {"input_ids": ids.masked_fill(mask == 0, 0), "attention_mask": mask}


@torch.no_grad()
def logits_of(model, inputs) -> torch.Tensor:
    return model.eval()(**inputs)["logits"]


def perturb_trainable(model, seed: int = 1) -> None:
    """Move the trainable tensors away from their initial values (as training would)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in model.parameters():
            if parameter.requires_grad:
                parameter.add_(0.5 * torch.randn(parameter.shape, generator=generator))


# --------------------------------------------------------------------------- save / load
@pytest.mark.parametrize("method, prefix", [
    ("prefix", {}),
    ("prefix", {"reparameterize": True, "hidden_size": 16}),
    ("prompt", {}),
    ("finetune", {}),
    pytest.param("lora", {"r": 2}, marks=needs_peft),
    ("bitfit", {"layernorm": True}),
    pytest.param("peft-ptuning", {"prompt_len": 3, "hidden_size": 8}, marks=needs_peft),
])
def test_save_then_load_gives_identical_logits(tmp_path, tiny_model_dir, method, prefix):
    model = make_model(tiny_model_dir, method, **prefix)
    perturb_trainable(model)
    inputs = sample_inputs()
    expected = logits_of(model, inputs)

    sizes = save_artifact(model, tmp_path / "artifact", TASK)
    artifact = load_artifact(tmp_path / "artifact")
    loaded, config = artifact.model, artifact.config
    assert not loaded.training
    torch.testing.assert_close(logits_of(loaded, inputs), expected, atol=0, rtol=0)

    assert config["format"] == FORMAT and config["method"]["name"] == method and config["task"] == TASK
    assert config["method"]["config"] == dataclasses.asdict(model.method.config)
    assert config["backbone"] == str(tiny_model_dir)
    assert config["backbone_fingerprint"] == model.backbone_fingerprint
    assert config["head"] == {"name": "token-classification",
                              "config": {"hidden_size": HIDDEN, "num_labels": NUM_LABELS, "dropout": 0.1}}
    tensors = load_file(str(tmp_path / "artifact" / WEIGHTS))
    assert set(tensors) == set(artifact_names(model).values()) and len(tensors) == len(model.trainable_state_dict())
    # the format's names, whatever the model calls them: the method, the head, and encoder weights a method trains
    assert {name.split(".")[0] for name in tensors} <= {"method", "head", "backbone"}
    assert any(name.startswith("head.") for name in tensors)
    if method not in ("finetune", "lora", "bitfit"):  # only what was trained, never the frozen encoder
        assert not any(name.startswith("backbone.") for name in tensors)
    trained_bytes = sum(t.numel() * t.element_size() for t in tensors.values())
    assert trained_bytes <= sizes["artifact_bytes"] < trained_bytes + 8192  # the tensors plus a small header
    assert sizes["backbone_bytes"] == sum(p.numel() * p.element_size() for p in model.backbone.parameters())


def test_loading_onto_a_different_backbone_is_a_data_error(tmp_path, tiny_model_dir, other_tiny_model_dir):
    model = make_model(tiny_model_dir)
    save_artifact(model, tmp_path / "artifact", TASK)
    with pytest.raises(DataError) as info:
        load_artifact(tmp_path / "artifact", backbone=str(other_tiny_model_dir))
    message = str(info.value)
    assert str(tmp_path / "artifact" / CONFIG) in message
    assert "fingerprint" in message and str(other_tiny_model_dir) in message and str(tiny_model_dir) in message
    # the same encoder named explicitly is fine
    load_artifact(tmp_path / "artifact", backbone=str(tiny_model_dir))


def test_loading_onto_a_different_architecture_is_a_data_error(tmp_path, tiny_model_dir):
    wider = save_tiny_model(tmp_path / "wider", hidden_size=48)
    save_artifact(make_model(tiny_model_dir), tmp_path / "artifact", TASK)
    with pytest.raises(DataError, match="fingerprint"):
        load_artifact(tmp_path / "artifact", backbone=str(wider))


def test_fingerprint_sees_a_change_in_the_last_layer_only(make_backbone):
    # two checkpoints of one base model may differ only near the top (e.g. a fine-tuned encoder)
    backbone = make_backbone("bert")
    before = fingerprint(backbone)
    assert fingerprint(backbone) == before
    last = backbone.encoder.layer[-1].output.dense.weight
    with torch.no_grad():
        last.view(-1)[-1] += 1e-3
    assert fingerprint(backbone) != before


def test_not_an_artifact_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="not a trained artifact"):
        read_artifact_config(tmp_path)
    (tmp_path / CONFIG).write_text('{"format": "something-else"}')
    with pytest.raises(DataError, match="unknown artifact format"):
        read_artifact_config(tmp_path)
    (tmp_path / CONFIG).write_text("{broken")
    with pytest.raises(DataError, match="line 1"):
        read_artifact_config(tmp_path)


def test_artifact_with_wrong_tensors_is_a_data_error(tmp_path, tiny_model_dir):
    save_artifact(make_model(tiny_model_dir, prefix_len=4), tmp_path / "artifact", TASK)
    config = json.loads((tmp_path / "artifact" / CONFIG).read_text())
    config["method"] = {"name": "prompt", "config": {"prompt_len": 4, "dropout": 0.0}}  # tensors of a prefix
    (tmp_path / "artifact" / CONFIG).write_text(json.dumps(config))
    with pytest.raises(DataError, match="do not match"):
        load_artifact(tmp_path / "artifact")


# --------------------------------------------------------------------------- Trainer checkpoints and resume
def cli_args(output_dir: Path, *extra: str):
    """Flags for a 16-example, batch-4 run: 4 steps per epoch."""
    return ["--batch-size", "4", "--lr", "0.01", "--logging-steps", "1", *extra]


class SimulatedKill(Exception):
    pass


class TrainingSteps:
    """Counts training forwards (one per optimizer step here) and can simulate a crash at one of them.

    ``first_prefix`` is on the model's device: the Trainer moves the model to the GPU where there is one, while
    checkpoint files load onto the CPU; comparisons with a file bring the model's side to the CPU.
    """

    def __init__(self, model, crash_at: int | None = None) -> None:
        self.count, self.crash_at, self.first_prefix = 0, crash_at, None
        self.model = model
        model.head.register_forward_pre_hook(self)

    def __call__(self, module, _args):
        if not module.training:
            return
        self.count += 1
        if self.count == 1:
            self.first_prefix = self.model.method.encoder.embedding.weight.detach().clone()
        if self.count == self.crash_at:
            raise SimulatedKill(f"killed during step {self.count}")


def trainer_state(checkpoint: Path) -> dict:
    return json.loads((checkpoint / "trainer_state.json").read_text())


def run(model_dir: Path, output_dir: Path, tokenizer, *extra: str, crash_at: int | None = None, seed: int = 0,
        dropout: float = 0.1):
    torch.manual_seed(seed)
    model = make_model(model_dir, head_dropout=dropout, dropout=dropout)
    steps = TrainingSteps(model, crash_at)
    collator = DataCollatorForTokenClassification(tokenizer)
    trainer = None
    try:
        trainer = train_with_flags(model, output_dir, tagging_dataset(), collator, *cli_args(output_dir, *extra))
    except SimulatedKill:
        pass
    return model, steps, trainer


def checkpoints(output_dir: Path) -> list[str]:
    return sorted((p.name for p in (output_dir / CHECKPOINTS).iterdir()), key=lambda n: int(n.split("-")[1]))


def test_checkpoints_hold_only_trainable_tensors(tmp_path, tiny_model_dir, tiny_tokenizer):
    model, steps, trainer = run(tiny_model_dir, tmp_path, tiny_tokenizer, "--epochs", "1")
    assert trainer.state.global_step == steps.count == 4
    assert checkpoints(tmp_path) == ["checkpoint-4"]  # one per epoch by default
    saved = load_file(str(tmp_path / CHECKPOINTS / "checkpoint-4" / CHECKPOINT_WEIGHTS))
    assert set(saved) == set(model.trainable_state_dict())
    for name, tensor in model.trainable_state_dict().items():
        assert torch.equal(saved[name], tensor.cpu())  # the model may be on the GPU (the Trainer moved it there)


def test_resume_after_a_kill_mid_epoch_continues_from_the_checkpoint_step(tmp_path, tiny_model_dir, tiny_tokenizer):
    # 2 epochs x 4 steps, a checkpoint every 3 steps; the process "dies" during step 8
    _, killed, _ = run(tiny_model_dir, tmp_path, tiny_tokenizer, "--epochs", "2", "--save-steps", "3", crash_at=8)
    assert killed.count == 8
    assert checkpoints(tmp_path) == ["checkpoint-3", "checkpoint-6"]
    assert trainer_state(tmp_path / CHECKPOINTS / "checkpoint-6")["global_step"] == 6
    saved = load_file(str(tmp_path / CHECKPOINTS / "checkpoint-6" / CHECKPOINT_WEIGHTS))

    # a fresh process: new model (random init), same flags plus --resume
    model, resumed, trainer = run(tiny_model_dir, tmp_path, tiny_tokenizer, "--epochs", "2", "--save-steps", "3",
                                  "--resume", seed=123)
    assert resumed.count == 2, "only steps 7 and 8 remain after checkpoint-6"
    assert torch.equal(resumed.first_prefix.cpu(), saved["methods.shared.encoder.embedding.weight"]), \
        "training must continue from the checkpoint's tensors"
    assert trainer.state.global_step == 8
    assert checkpoints(tmp_path)[-1] == "checkpoint-8"
    state = trainer_state(tmp_path / CHECKPOINTS / "checkpoint-8")
    assert state["global_step"] == 8 and state["epoch"] == pytest.approx(2.0)
    logged_steps = [entry["step"] for entry in state["log_history"] if "loss" in entry]
    assert logged_steps == list(range(1, 9)), "log history: steps 1-6 from the checkpoint, then 7 and 8"


def test_resume_keeps_every_completed_epoch(tmp_path, tiny_model_dir, tiny_tokenizer):
    # epoch checkpoints only; the run dies in the middle of epoch 3 (step 10 of 12)
    _, killed, _ = run(tiny_model_dir, tmp_path, tiny_tokenizer, "--epochs", "3", crash_at=10)
    assert checkpoints(tmp_path) == ["checkpoint-4", "checkpoint-8"]
    model, resumed, trainer = run(tiny_model_dir, tmp_path, tiny_tokenizer, "--epochs", "3", "--resume", seed=7)
    assert resumed.count == 4 and trainer.state.global_step == 12
    assert trainer_state(tmp_path / CHECKPOINTS / "checkpoint-12")["epoch"] == pytest.approx(3.0)


def test_resume_without_a_checkpoint_starts_fresh(tmp_path, tiny_model_dir, tiny_tokenizer, capsys):
    _, steps, trainer = run(tiny_model_dir, tmp_path, tiny_tokenizer, "--epochs", "1", "--resume")
    assert steps.count == 4 and trainer.state.global_step == 4
    assert "no checkpoint" in capsys.readouterr().out


def test_resumed_training_equals_uninterrupted_training(tmp_path, tiny_tokenizer):
    no_dropout = save_tiny_model(tmp_path / "enc", hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    full, _, _ = run(no_dropout, tmp_path / "full", tiny_tokenizer, "--epochs", "2", "--save-steps", "3", dropout=0)
    run(no_dropout, tmp_path / "cut", tiny_tokenizer, "--epochs", "2", "--save-steps", "3", crash_at=8, dropout=0)
    resumed, _, _ = run(no_dropout, tmp_path / "cut", tiny_tokenizer, "--epochs", "2", "--save-steps", "3",
                        "--resume", dropout=0)
    for name, tensor in full.trainable_state_dict().items():
        torch.testing.assert_close(resumed.trainable_state_dict()[name], tensor, atol=1e-6, rtol=0)


def test_max_train_samples_is_a_seeded_subset_in_file_order():
    items = list(range(100))
    settings = cli_settings("--max-train-samples", "10", "--seed", "3")
    count, seed = settings.data.max_train_samples, settings.train.seed
    picked = train_subset(items, count, seed)
    assert len(picked) == 10 and picked == sorted(picked) and picked == train_subset(items, count, seed)
    assert picked != items[:10]  # not simply the head of a file ordered by source (CoLA)
    other = cli_settings("--max-train-samples", "10")
    assert train_subset(items, other.data.max_train_samples, other.train.seed) != picked  # another seed
    nothing = cli_settings()
    assert train_subset(items, nothing.data.max_train_samples, nothing.train.seed) == items
    assert train_subset(items[:5], count, seed) == items[:5]


@pytest.mark.parametrize("argv, message", [
    (["--max-train-samples", "0"], "argument --max-train-samples: must be at least 1, got 0"),
    (["--max-eval-samples", "-3"], "argument --max-eval-samples: must be at least 1, got -3"),
    (["--batch-size", "0"], "argument --batch-size: must be at least 1, got 0"),
    (["--prefix-len", "-1"], "argument --prefix-len: must be at least 0, got -1"),
    (["--max-length", "x"], "argument --max-length: not an integer: 'x'"),
])
def test_counts_are_checked_by_the_parser(capsys, argv, message):
    with pytest.raises(SystemExit) as caught:
        parse_flags(*argv)
    assert caught.value.code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1].endswith(message)


def test_prefix_len_0_is_a_linear_probe(tmp_path, tiny_tokenizer):
    """--prefix-len 0: only the head trains; the frozen encoder's features are the control for the prefix."""
    encoder = str(save_tiny_model(tmp_path / "enc"))
    head = lambda hidden: TokenClassificationHead(hidden, 3)  # noqa: E731
    model = build_model(encoder, head, "prefix", get_method("prefix").config_class(prefix_len=0))
    trainable = {name for name, p in model.named_parameters() if p.requires_grad and p.numel()}
    assert trainable and all(name.startswith("heads.") for name in trainable)
    batch = tiny_tokenizer(["a b c", "d"], padding=True, return_tensors="pt")
    out = model(**batch, labels=torch.zeros_like(batch["input_ids"]))
    out["loss"].backward()
    assert out["logits"].shape[:2] == batch["input_ids"].shape


def test_resume_skips_a_checkpoint_cut_short_and_says_so(tmp_path, tiny_model_dir, tiny_tokenizer, capsys):
    # a checkpoint every 3 steps; then checkpoint-6 is damaged as if the process died while writing it
    run(tiny_model_dir, tmp_path, tiny_tokenizer, "--epochs", "2", "--save-steps", "3", crash_at=8)
    newest = tmp_path / CHECKPOINTS / "checkpoint-6"
    assert (newest / COMPLETE).is_file() and (tmp_path / CHECKPOINTS / "checkpoint-3" / COMPLETE).is_file()
    (newest / COMPLETE).unlink()
    weights = newest / CHECKPOINT_WEIGHTS
    weights.write_bytes(weights.read_bytes()[:100])
    saved = load_file(str(tmp_path / CHECKPOINTS / "checkpoint-3" / CHECKPOINT_WEIGHTS))
    capsys.readouterr()

    model, resumed, trainer = run(tiny_model_dir, tmp_path, tiny_tokenizer, "--epochs", "2", "--save-steps", "3",
                                  "--resume", seed=5)
    out = capsys.readouterr().out
    assert f"skipping {newest}: incomplete" in out and f"resuming from {tmp_path / CHECKPOINTS / 'checkpoint-3'}" in out
    assert resumed.count == 5 and trainer.state.global_step == 8  # steps 4-8 after checkpoint-3
    assert torch.equal(resumed.first_prefix.cpu(), saved["methods.shared.encoder.embedding.weight"])


def test_checkpoint_saves_the_state_dict_the_trainer_hands_over(tmp_path, tiny_model_dir, tiny_tokenizer):
    """FSDP/DeepSpeed gather full tensors into ``state_dict``: those are what must be written."""
    _, _, trainer = run(tiny_model_dir, tmp_path / "run", tiny_tokenizer, "--epochs", "1")
    model = trainer.model
    handed = {name: torch.full_like(t, 7.0) for name, t in model.state_dict().items()}
    trainer._save(str(tmp_path / "saved"), state_dict=handed)
    saved = load_file(str(tmp_path / "saved" / CHECKPOINT_WEIGHTS))
    assert set(saved) == set(model.trainable_state_dict())
    assert all(torch.equal(t, torch.full_like(t, 7.0)) for t in saved.values())


class Exploding(torch.nn.Module):
    """loss = (w * 10)^2 from w = 1: a large learning rate makes it explode within a step or two."""

    accepts_loss_kwargs = False

    def __init__(self) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.ones(1))

    def forward(self, x, labels=None, **_):
        return {"loss": ((self.w * 10) ** 2).sum() + 0 * x.sum()}


def test_a_diverging_run_stops_with_the_step_and_a_lower_rate_hint(tmp_path):
    from tasks.common.training import AdapterTrainer, TrainingDiverged
    from transformers import TrainingArguments

    arguments = TrainingArguments(output_dir=str(tmp_path), learning_rate=1e3, per_device_train_batch_size=1,
                                  num_train_epochs=1, report_to="none", use_cpu=True, save_strategy="no",
                                  remove_unused_columns=False)
    data = [{"x": torch.ones(1), "labels": torch.zeros(1)} for _ in range(8)]
    trainer = AdapterTrainer(model=Exploding(), args=arguments, train_dataset=data)
    with pytest.raises(TrainingDiverged) as caught:
        trainer.train()
    message = str(caught.value)
    assert "training diverged at step 2" in message and "--lr, now 1000" in message
    assert "no checkpoint was written" in message

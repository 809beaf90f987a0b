"""What training may and may not touch: frozen encoder, trainable set and its size, learning, prefix cache."""
from __future__ import annotations

import pytest
import torch

from conftest import HIDDEN, LAYERS, tiny_backbone
from heads import IGNORE_INDEX, TokenClassificationHead
from models.adapted import AdaptedModel
from models.methods import PrefixConfig, PromptConfig

NUM_LABELS = 3
PREFIX_LEN = 5


def build(method: str, arch: str = "bert", prefix_len: int = PREFIX_LEN, seed: int = 0, **prefix) -> AdaptedModel:
    backbone = tiny_backbone(arch, seed=seed)
    head = TokenClassificationHead(HIDDEN, NUM_LABELS, dropout=0.0)
    prefix.setdefault("dropout", 0.0)
    configs = {"prefix": PrefixConfig(prefix_len=prefix_len, **prefix), "prompt": PromptConfig(prompt_len=prefix_len)}
    return AdaptedModel(backbone, head, method, configs.get(method))


def head_parameter_count() -> int:
    return HIDDEN * NUM_LABELS + NUM_LABELS


def tagging_batch(size: int, seed: int, length: int = 12):
    """A learnable synthetic tagging task: the tag of a token is its id modulo 3.

    Tokens come from 9 ids only, so that even a frozen random 32-dim encoder separates them
    (a linear head on top of it cannot separate 94 arbitrary ids).  Rows are padded at the end.
    """
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, 14, (size, length), generator=generator)
    lengths = torch.randint(4, length + 1, (size,), generator=generator)
    mask = (torch.arange(length)[None, :] < lengths[:, None]).long()
    ids = ids.masked_fill(mask == 0, 0)
    labels = (ids % NUM_LABELS).masked_fill(mask == 0, IGNORE_INDEX)
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def frozen_snapshot(model: AdaptedModel) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.backbone.state_dict().items()}


# --------------------------------------------------------------------------- frozen encoder
@pytest.mark.parametrize("method", ["prefix", "prompt"])
def test_backbone_is_bit_identical_after_optimizer_steps_and_gets_no_grads(method):
    model = build(method)
    before = frozen_snapshot(model)
    # every parameter goes to the optimizer, with weight decay: only the gradient decides what moves
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.1)
    trainable_before = {k: v.clone() for k, v in model.trainable_state_dict().items()}
    model.train()
    for step in range(5):
        loss = model(**tagging_batch(8, seed=step))["loss"]
        optimizer.zero_grad()
        loss.backward()
        for name, parameter in model.backbone.named_parameters():
            assert parameter.grad is None, f"frozen {name} received a gradient"
        optimizer.step()
    after = model.backbone.state_dict()
    assert before.keys() == after.keys()
    for name, tensor in before.items():
        assert torch.equal(tensor, after[name]), f"frozen {name} changed"
    moved = [k for k, v in model.trainable_state_dict().items() if not torch.equal(v, trainable_before[k])]
    assert any(k.startswith("methods.") for k in moved)
    assert any(k.startswith("heads.") for k in moved)


def test_finetune_does_move_the_backbone():
    """The check above can fail: with fine-tuning the same loop does change the encoder."""
    model = build("finetune")
    before = frozen_snapshot(model)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model.train()
    loss = model(**tagging_batch(8, seed=0))["loss"]
    loss.backward()
    optimizer.step()
    assert any(not torch.equal(v, model.backbone.state_dict()[k]) for k, v in before.items())


def test_backbone_is_bit_identical_after_training_with_the_trainer(tmp_path, tiny_tokenizer):
    from transformers import DataCollatorForTokenClassification

    from conftest import train_with_flags

    model = build("prefix", reparameterize=True, hidden_size=16)
    before = frozen_snapshot(model)
    prefix_before = model.method.encoder.embedding.weight.detach().clone()
    batch = tagging_batch(16, seed=5)
    dataset = [{k: v[i][batch["attention_mask"][i].bool()].tolist() for k, v in batch.items()} for i in range(16)]
    trainer = train_with_flags(model, tmp_path, dataset, DataCollatorForTokenClassification(tiny_tokenizer),
                               "--mode", "prefix", "--epochs", "2", "--batch-size", "4", "--weight-decay", "0.1",
                               "--lr", "0.01", "--logging-steps", "1")
    assert trainer.state.global_step == 8
    # the snapshots were taken on the CPU; the Trainer moved the model to the GPU where there is one
    for name, tensor in before.items():
        assert torch.equal(tensor, model.backbone.state_dict()[name].cpu()), f"frozen {name} changed"
    assert not torch.equal(prefix_before, model.method.encoder.embedding.weight.cpu())


# --------------------------------------------------------------------------- trainable set and size
def trainable_names(model: AdaptedModel) -> set[str]:
    return {name for name, p in model.named_parameters() if p.requires_grad}


def test_only_prefix_and_head_require_grad(arch):
    model = build("prefix", arch)
    names = trainable_names(model)
    assert names == {"methods.shared.encoder.embedding.weight", "heads.task.classifier.weight",
                     "heads.task.classifier.bias"}
    assert not any(p.requires_grad for p in model.backbone.parameters())


def test_only_prompt_and_head_require_grad():
    names = trainable_names(build("prompt"))
    assert names == {"methods.shared.embedding", "heads.task.classifier.weight", "heads.task.classifier.bias"}


def test_reparameterized_prefix_trains_embedding_mlp_and_head():
    names = trainable_names(build("prefix", reparameterize=True, hidden_size=16))
    assert {n.split(".")[0] for n in names} == {"methods", "heads"}
    assert {n for n in names if n.startswith("methods.")} == {
        "methods.shared.encoder.embedding.weight", "methods.shared.encoder.mlp.0.weight",
        "methods.shared.encoder.mlp.0.bias", "methods.shared.encoder.mlp.2.weight", "methods.shared.encoder.mlp.2.bias"}


@pytest.mark.parametrize("prefix_len", [1, 5, 16])
def test_trainable_count_matches_formula(arch, prefix_len):
    model = build("prefix", arch, prefix_len=prefix_len)
    expected = LAYERS * 2 * HIDDEN * prefix_len + head_parameter_count()
    counts = model.parameter_counts()
    assert counts["trainable"] == expected
    backbone_total = sum(p.numel() for p in model.backbone.parameters())
    assert counts["total"] == backbone_total + expected
    assert counts["trainable_percent"] == pytest.approx(100 * expected / (backbone_total + expected))


@pytest.mark.parametrize("prefix_len, mlp_hidden", [(4, 16), (8, 512)])
def test_trainable_count_with_reparameterization(prefix_len, mlp_hidden):
    model = build("prefix", prefix_len=prefix_len, reparameterize=True, hidden_size=mlp_hidden)
    out = LAYERS * 2 * HIDDEN
    mlp = (HIDDEN * mlp_hidden + mlp_hidden) + (mlp_hidden * out + out)
    assert model.parameter_counts()["trainable"] == prefix_len * HIDDEN + mlp + head_parameter_count()


def test_prompt_count_and_finetune_count():
    assert build("prompt", prefix_len=7).parameter_counts()["trainable"] == 7 * HIDDEN + head_parameter_count()
    finetune = build("finetune").parameter_counts()
    assert finetune["trainable"] == finetune["total"]


# --------------------------------------------------------------------------- learning
def eval_loss(model: AdaptedModel, batch) -> float:
    model.eval()
    with torch.no_grad():
        return model(**batch)["loss"].item()


def fit(model: AdaptedModel, lr: float, steps: int, parameters=None) -> tuple[float, float]:
    held_out = tagging_batch(64, seed=1000)
    start = eval_loss(model, held_out)
    optimizer = torch.optim.Adam(parameters or [p for p in model.parameters() if p.requires_grad], lr=lr)
    for step in range(steps):
        model.train()
        loss = model(**tagging_batch(32, seed=step))["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return start, eval_loss(model, held_out)


@pytest.mark.parametrize("method, lr", [("prefix", 1e-2), ("prompt", 1e-2), ("finetune", 1e-3)])
def test_loss_decreases_on_a_learnable_tagging_task(method, lr):
    model = build(method)
    adapter_before = {k: v.clone() for k, v in model.trainable_state_dict().items() if not k.startswith("heads.")}
    start, end = fit(model, lr, steps=60)
    assert start > 0.9  # chance level for 3 tags is ln 3 = 1.10
    assert end < 0.4 * start and end < 0.5, f"{method}: held-out loss {start:.3f} -> {end:.3f}"
    moved = [k for k, v in adapter_before.items() if not torch.equal(v, model.trainable_state_dict()[k])]
    assert moved, f"{method}: only the head learned"


# --------------------------------------------------------------------------- eval-mode prefix cache
def test_eval_mode_prefix_table_is_cached_and_invalidated_by_train():
    model = build("prefix", reparameterize=True, hidden_size=16)
    calls = []
    model.method.encoder.mlp.register_forward_hook(lambda *_: calls.append(1))
    batch = tagging_batch(4, seed=3)
    inputs = {k: batch[k] for k in ("input_ids", "attention_mask")}

    model.eval()
    with torch.no_grad():
        first = model(**inputs)["logits"]
        second = model(**inputs)["logits"]
    assert torch.equal(first, second)
    assert len(calls) == 1, "the MLP must run once in eval mode, then the table is reused"

    model.train()
    assert model.method.encoder._cache is None
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.5)
    model(**batch)["loss"].backward()
    optimizer.step()
    assert len(calls) == 2  # training always runs the MLP

    model.eval()
    with torch.no_grad():
        third = model(**inputs)["logits"]
        fourth = model(**inputs)["logits"]
    assert len(calls) == 3  # recomputed once after train(), not stale
    assert torch.equal(third, fourth)
    assert not torch.allclose(third, first), "eval after training must use the updated prefix, not the old cache"


def test_loading_weights_in_eval_mode_invalidates_the_cache():
    model = build("prefix", reparameterize=True, hidden_size=16).eval()
    other = build("prefix", reparameterize=True, hidden_size=16)  # same encoder, other prefix and head
    with torch.no_grad():
        for parameter in other.parameters():
            if parameter.requires_grad:
                parameter.add_(torch.randn_like(parameter))
    batch = tagging_batch(4, seed=3)
    inputs = {k: batch[k] for k in ("input_ids", "attention_mask")}
    with torch.no_grad():
        before = model(**inputs)["logits"]
        model.load_state_dict(other.trainable_state_dict(), strict=False)
        after = model(**inputs)["logits"]
        expected = other.eval()(**inputs)["logits"]
    assert not torch.allclose(before, after)
    torch.testing.assert_close(after, expected, atol=1e-6, rtol=0)


def test_prefix_dropout_only_in_training():
    model = build("prefix", dropout=0.5)
    inputs = {k: v for k, v in tagging_batch(4, seed=3).items() if k != "labels"}
    model.train()
    model.backbone.eval()  # isolate the prefix dropout
    with torch.no_grad():
        a, b = model(**inputs)["logits"], model(**inputs)["logits"]
        assert not torch.equal(a, b)
        model.eval()
        c, d = model(**inputs)["logits"], model(**inputs)["logits"]
    assert torch.equal(c, d)


def test_trainer_averages_the_loss_over_gradient_accumulation(tmp_path, tiny_tokenizer):
    """The heads return a mean loss, so the Trainer must divide by the accumulation steps itself.

    (A model whose forward takes **kwargs is assumed by the Trainer to normalise by
    ``num_items_in_batch`` itself; then the logged loss -- and the gradient -- would be the
    sum over micro-batches instead of their mean.)
    """
    from transformers import DataCollatorForTokenClassification

    from conftest import train_with_flags

    model = build("prefix")
    model.backbone.config.hidden_dropout_prob = 0.0
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
    batch = tagging_batch(8, seed=11, length=6)
    batch["attention_mask"][:] = 1  # equal lengths, every token labelled: micro-batch means average to the mean
    batch["labels"] = batch["input_ids"] % NUM_LABELS
    dataset = [{k: v[i].tolist() for k, v in batch.items()} for i in range(8)]
    with torch.no_grad():
        expected = model.eval()(**batch)["loss"].item()
    trainer = train_with_flags(model, tmp_path, dataset, DataCollatorForTokenClassification(tiny_tokenizer),
                               "--epochs", "1", "--batch-size", "4", "--grad-accum", "2", "--lr", "0",
                               "--logging-steps", "1")
    assert trainer.state.global_step == 1
    logged = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    assert logged[0] == pytest.approx(expected, rel=1e-3), f"logged {logged[0]:.4f}, mean loss {expected:.4f}"


@pytest.mark.parametrize("flags, expected", [
    ([], 3e-2), (["--reparam"], 1e-3), (["--reparam", "--lr", "5e-3"], 5e-3),
    (["--mode", "finetune"], 5e-5), (["--mode", "peft-prefix", "--reparam"], 1e-3), (["--mode", "prompt"], 1e-2),
])
def test_default_learning_rate_follows_mode_and_reparameterization(flags, expected):
    """--reparam lowers the default (its MLP amplifies each step); an explicit --lr always wins."""
    from conftest import cli_settings
    from tasks.common.pipeline import learning_rate

    settings = cli_settings(*flags)
    assert learning_rate(settings.train, settings.model) == expected


def test_model_from_args_starts_from_the_seed(tiny_model_dir):
    """--seed fixes the initial head and prefix, whatever the process's RNG state was before."""
    from conftest import model_from_flags

    def initial(seed: int) -> dict[str, torch.Tensor]:
        torch.rand(7)  # advance the global RNG: a stray draw before the build must not matter
        model = model_from_flags(lambda hidden: TokenClassificationHead(hidden, NUM_LABELS),
                                 "--model", str(tiny_model_dir), "--prefix-len", "4", "--seed", str(seed))
        return {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}

    first, again, other = initial(1), initial(1), initial(2)
    assert first.keys() == again.keys() and any(n.startswith("methods.shared.encoder") for n in first)
    for name in first:
        torch.testing.assert_close(first[name], again[name])
        assert not torch.equal(first[name], other[name]) or first[name].abs().sum() == 0, name


def test_heads_import_alone():
    """``from heads import TokenClassificationHead`` pulls in neither models/ nor tasks/."""
    import subprocess
    import sys

    from conftest import REPO, subprocess_env

    code = ("import sys; from heads import TokenClassificationHead; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('models', 'tasks')))")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=subprocess_env(), capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_the_eval_prefix_cache_follows_the_model_to_another_dtype_or_device():
    model = build("prefix").eval()
    batch = tagging_batch(2, seed=4)
    inputs = {k: batch[k] for k in ("input_ids", "attention_mask")}
    with torch.no_grad():
        model(**inputs)  # builds the float32 cache
        model.to(torch.float64)  # .to(device) takes the same path (Module._apply)
        assert model.method.encoder._cache is None
        logits = model(**inputs)["logits"]
    assert logits.dtype == torch.float64 and model.method.encoder._cache.dtype == torch.float64

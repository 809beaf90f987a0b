"""The methods beyond the paper: the deep prefix plus per-task deltas inside the frozen encoder (bias deltas, or
low-rank deltas on the attention value and output projections), added per row so that tasks share one forward."""
from __future__ import annotations

import pytest
import torch

from conftest import HIDDEN, LAYERS, tiny_backbone
from heads import TokenClassificationHead
from models.adapted import AdaptedModel, Segment
from models.methods import get_method

METHODS = ("prefix-bias", "prefix-lora")


def build(method: str, arch: str = "bert", seed: int = 0, prefix_len: int = 3) -> AdaptedModel:
    backbone = tiny_backbone(arch)
    backbone.pooler = None
    torch.manual_seed(seed)
    return AdaptedModel(backbone, TokenClassificationHead(HIDDEN, 3), method,
                        get_method(method).config_class(prefix_len=prefix_len, dropout=0.0)).eval()


def inputs(seed: int = 0, rows: int = 3) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, 99, (rows, 8), generator=generator)
    mask = torch.ones_like(ids)
    mask[-1, 5:] = 0
    return {"input_ids": ids, "attention_mask": mask}


def perturb(model: AdaptedModel, seed: int) -> AdaptedModel:
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.add_(0.3 * torch.randn(p.shape, generator=generator))
    return model


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("arch", ["bert", "deberta-v2", "distilbert"])
def test_untrained_deltas_compute_the_plain_prefix(method, arch):
    ours, plain = build(method, arch), build("prefix", arch)
    plain.method.encoder.load_state_dict(ours.method.encoder.state_dict())
    plain.head.load_state_dict(ours.head.state_dict())
    torch.testing.assert_close(ours(**inputs()).logits, plain(**inputs()).logits)


@pytest.mark.parametrize("method", METHODS)
def test_the_encoder_stays_frozen_and_the_deltas_learn(method):
    model = build(method).train()
    frozen = {n: p.detach().clone() for n, p in model.backbone.named_parameters()}
    deltas = {n: p.detach().clone() for n, p in model.method.named_parameters() if not n.startswith("encoder.")}
    assert deltas and all(not p.requires_grad for p in model.backbone.parameters())
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.1)
    for step in range(3):
        batch = inputs(step)
        loss = model(**batch, labels=batch["input_ids"] % 3).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert all(torch.equal(p, frozen[n]) for n, p in model.backbone.named_parameters())
    moved = [n for n, p in model.method.named_parameters() if n in deltas and not torch.equal(p, deltas[n])]
    assert moved


def test_trainable_counts():
    prefix = 3 * LAYERS * 2 * HIDDEN
    head = HIDDEN * 3 + 3
    bias = build("prefix-bias")
    biases = sum(m.bias.numel() for m in bias.backbone.modules() if getattr(m, "bias", None) is not None)
    assert bias.parameter_counts()["trainable"] == prefix + head + biases
    lora = build("prefix-lora")
    assert lora.parameter_counts()["trainable"] == prefix + head + LAYERS * 2 * 4 * (HIDDEN + HIDDEN)


@pytest.mark.parametrize("method", METHODS)
def test_a_mixed_batch_equals_each_task_alone(method):
    """Two tasks (different prefixes and deltas, even different prefix lengths) on one encoder in one forward."""
    model = build(method)
    perturb(model, 1)
    other = build(method, prefix_len=5, seed=3)
    perturb(other, 2)
    model.add_method("other", other.method.__class__(model.backbone, other.method.config))
    model.methods["other"].load_state_dict(other.method.state_dict())
    model.add_task("b", other.head, method="other")
    a, b = inputs(0, rows=3), inputs(1, rows=2)
    width = max(a["input_ids"].shape[1], b["input_ids"].shape[1])
    stacked = {k: torch.cat([a[k], b[k]]) for k in a if a[k].shape[1] == width}
    with torch.no_grad():
        mixed = model.segment_logits(stacked["input_ids"], stacked["attention_mask"], None,
                                     [Segment("task", 3), Segment("b", 2)])
        alone_a = model.segment_logits(a["input_ids"], a["attention_mask"], None, [Segment("task", 3)])[0]
        alone_b = model.segment_logits(b["input_ids"], b["attention_mask"], None, [Segment("b", 2)])[0]
    torch.testing.assert_close(mixed[0], alone_a, atol=1e-5, rtol=0)
    torch.testing.assert_close(mixed[1], alone_b, atol=1e-5, rtol=0)


def test_the_deltas_train_at_their_own_rate_and_the_prefix_at_the_runs(tmp_path, tiny_model_dir, tiny_tokenizer):
    from transformers import DataCollatorForTokenClassification

    from conftest import tagging_dataset, train_with_flags
    from models.adapted import build_model

    model = build_model(str(tiny_model_dir), TokenClassificationHead(HIDDEN, 3), "prefix-bias",
                        get_method("prefix-bias").config_class(prefix_len=2, delta_lr=1e-3))
    trainer = train_with_flags(model, tmp_path, tagging_dataset(8), DataCollatorForTokenClassification(tiny_tokenizer),
                               "--lr", "2e-2", "--head-lr", "5e-2", "--max-steps", "1", "--batch-size", "4")
    rates = {}
    for group in trainer.optimizer.param_groups:
        for parameter in group["params"]:
            rates[id(parameter)] = group.get("initial_lr", group["lr"])
    named = dict(model.named_parameters())
    assert {rates[id(named[n])] for n in named if ".biases." in n} == {1e-3}
    assert rates[id(named["methods.shared.encoder.embedding.weight"])] == 2e-2
    assert {rates[id(p)] for n, p in named.items() if n.startswith("heads.")} == {5e-2}

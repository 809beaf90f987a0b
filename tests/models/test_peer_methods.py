"""The peer methods in the harness: PEFT's LoRA, BitFit and PEFT's P-tuning on the same encoder and heads."""
from __future__ import annotations

import pytest
import torch

from conftest import HIDDEN, LAYERS, tiny_backbone
from heads import TokenClassificationHead
from models.adapted import AdaptedModel
from models.methods import get_method

LABELS = 3
HEAD = HIDDEN * LABELS + LABELS


def build(method: str, arch: str = "bert", **config) -> AdaptedModel:
    backbone = tiny_backbone(arch)
    backbone.pooler = None  # as models.backbone.load_backbone leaves it: heads pool for themselves
    return AdaptedModel(backbone, TokenClassificationHead(HIDDEN, LABELS), method,
                        get_method(method).config_class(**config))


def batch(seed: int = 0) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, 99, (4, 9), generator=generator)
    mask = torch.ones_like(ids)
    mask[1, 6:] = 0
    return {"input_ids": ids, "attention_mask": mask, "labels": (ids % LABELS).masked_fill(mask == 0, -100)}


def trainable(model: AdaptedModel) -> set[str]:
    return {name for name, p in model.named_parameters() if p.requires_grad}


def test_bitfit_trains_the_biases_and_nothing_else_of_the_encoder():
    model = build("bitfit")
    encoder = {n for n in trainable(model) if n.startswith("backbone.")}
    assert encoder and all(n.endswith(".bias") for n in encoder)
    biases = {f"backbone.{n}" for n, _ in model.backbone.named_parameters() if n.endswith(".bias")}
    assert encoder == biases
    with_norms = {n for n in trainable(build("bitfit", layernorm=True)) if n.startswith("backbone.")}
    assert with_norms - encoder and all("LayerNorm.weight" in n for n in with_norms - encoder)


def test_bitfit_refuses_an_encoder_without_biases():
    with pytest.raises(ValueError, match="no bias terms"):
        build("bitfit", arch="modernbert")


def test_lora_at_rank_p_over_2_has_the_trainable_count_of_a_prefix_of_length_p():
    pytest.importorskip("peft")
    lora, prefix = build("lora", r=4), build("prefix", prefix_len=8)
    assert lora.parameter_counts()["trainable"] == prefix.parameter_counts()["trainable"] == \
        8 * LAYERS * 2 * HIDDEN + HEAD
    names = {n for n in trainable(lora) if n.startswith("backbone.")}
    assert names and all(".lora_A." in n or ".lora_B." in n for n in names)
    assert {n.split(".lora_")[0].rsplit(".", 1)[-1] for n in names} == {"query", "value"}


@pytest.mark.parametrize("arch", ["bert", "distilbert", "deberta-v2", "modernbert"])
def test_lora_finds_its_default_targets_on_every_supported_architecture(arch):
    pytest.importorskip("peft")
    model = build("lora", arch=arch, r=2)
    assert any(".lora_A." in n for n in trainable(model))


def test_lora_names_a_target_that_is_not_there():
    pytest.importorskip("peft")
    from models.prefix import UnsupportedArchitecture

    with pytest.raises(UnsupportedArchitecture, match="no such linear layer"):
        build("lora", r=2, target_modules=["nope"])


def test_peft_ptuning_trains_its_prompt_encoder_and_spends_input_positions():
    pytest.importorskip("peft")
    model = build("peft-ptuning", prompt_len=3, hidden_size=8)
    assert trainable(model) - {n for n in trainable(model) if n.startswith("heads.")} == \
        {n for n in trainable(model) if n.startswith("methods.shared.prompt_encoder.")}
    assert model.max_input_length() == 64 - 3


@pytest.mark.parametrize("method, config", [("lora", {"r": 2}), ("bitfit", {}),
                                            ("peft-ptuning", {"prompt_len": 3})])
def test_frozen_encoder_weights_stay_bit_identical_while_the_method_learns(method, config):
    if method != "bitfit":
        pytest.importorskip("peft")
    model = build(method, **config)
    frozen = {n: p.detach().clone() for n, p in model.named_parameters() if not p.requires_grad}
    start = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.1)  # every parameter, with decay
    model.train()
    losses = []
    for step in range(30):
        loss = model(**batch(step % 3)).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss))
    for name, parameter in model.named_parameters():
        if name in frozen:
            assert parameter.grad is None and torch.equal(parameter, frozen[name]), name
    moved = [n for n, p in model.named_parameters() if n in start and not torch.equal(p, start[n])]
    assert any(not n.startswith("heads.") for n in moved)  # the method's own tensors moved, not only the head
    assert sum(losses[-3:]) < sum(losses[:3])


def test_a_new_lora_starts_as_the_frozen_encoder():
    """B starts at zero: before training, LoRA computes exactly what the encoder computes."""
    pytest.importorskip("peft")
    plain = build("prefix", prefix_len=0).eval()
    lora = build("lora", r=2).eval()
    lora.head.load_state_dict(plain.head.state_dict())
    inputs = {k: v for k, v in batch().items() if k != "labels"}
    torch.testing.assert_close(lora(**inputs).logits, plain(**inputs).logits)

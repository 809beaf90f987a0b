"""The peers on decoders: LoRA on the decoder's own projection names, PEFT's prefix tuning through transformers'
``cache`` argument, the prefix with per-task deltas (prefix-lora, prefix-bias) on the decoder's modules, and full
fine-tuning.  Each trains (its trainable tensors get a gradient, nothing else of the base does)."""
from __future__ import annotations

import copy

import pytest
import torch
from test_decoders import ATOL, DECODERS, HIDDEN, NO_SDPA, decoder_batch, prefixed, tiny_decoder

from heads import TokenClassificationHead
from models.adapted import AdaptedModel
from models.methods.configs import LoraConfig, PeftPrefixConfig, PrefixBiasConfig, PrefixLoraConfig

CONFIGS = {"lora": lambda: LoraConfig(r=2), "peft-prefix": lambda: PeftPrefixConfig(prefix_len=2),
           "prefix-lora": lambda: PrefixLoraConfig(prefix_len=2), "prefix-bias": lambda: PrefixBiasConfig(prefix_len=2),
           "finetune": lambda: None}
# what gets a gradient at the first step (LoRA's A and prefix-lora's down projection get none while their zero-started
# partner is zero)
MOVING = {"lora": (".lora_B.",), "peft-prefix": ("prompt_encoder",), "prefix-lora": ("up.", "encoder."),
          "prefix-bias": ("biases.", "encoder."), "finetune": ("backbone.",)}


def _base(model_type: str):
    return tiny_decoder(model_type, "eager" if model_type in NO_SDPA else "sdpa")


def cases():
    for model_type in DECODERS:
        for method in CONFIGS:
            if method == "prefix-lora" and model_type == "gpt2":
                continue  # refused: see test_prefix_lora_on_gpt2_is_refused
            yield model_type, method


@pytest.mark.parametrize("model_type, method", list(cases()))
def test_peer_trains_on_a_decoder(model_type, method):
    if method in ("lora", "peft-prefix"):
        pytest.importorskip("peft")
    model = AdaptedModel(_base(model_type), TokenClassificationHead(HIDDEN, 3), method, CONFIGS[method]()).train()
    ids, mask = decoder_batch()
    model(ids, mask, labels=torch.randint(0, 3, ids.shape).masked_fill(mask == 0, -100))["loss"].backward()
    trainable = {name: p for name, p in model.named_parameters() if p.requires_grad}
    moving = [name for name in trainable if any(part in name for part in MOVING[method])]
    assert moving, f"no {MOVING[method]} tensor trains"
    for name in moving:
        assert trainable[name].grad is not None and trainable[name].grad.abs().sum() > 0, name
    if method != "finetune":
        frozen = [n for n, p in model.backbone.named_parameters() if not p.requires_grad]
        assert frozen and all(model.backbone.get_parameter(n).grad is None for n in frozen)


def test_lora_uses_the_decoder_projection_names():
    pytest.importorskip("peft")
    model = AdaptedModel(_base("llama"), TokenClassificationHead(HIDDEN, 3), "lora", LoraConfig(r=2))
    adapted = {name.split(".lora_")[0].rsplit(".", 1)[-1] for name, _ in model.named_parameters() if ".lora_" in name}
    assert adapted == {"q_proj", "v_proj"}


@pytest.mark.parametrize("model_type", ["llama", "gemma3_text", "phi3", "gpt2"])
def test_peft_prefix_without_position_shift_equals_our_prefix(model_type):
    """PEFT's prefix in transformers' cache, the tokens at 0..n-1: with the same rows it computes what ours does
    (PEFT sizes the prefix by the key/value heads too)."""
    pytest.importorskip("peft")
    backbone = _base(model_type)
    ours = prefixed(copy.deepcopy(backbone), prefix_len=3)
    peft = AdaptedModel(backbone, TokenClassificationHead(HIDDEN, 3), "peft-prefix",
                        PeftPrefixConfig(prefix_len=3, position_shift=False)).eval()
    (weight,) = list(peft.method.parameters())
    with torch.no_grad():
        weight.copy_(ours.method.encoder.embedding.weight)  # same (P, layers * 2 * kv_width) layout
        ids, mask = decoder_batch()
        real = mask.bool()
        torch.testing.assert_close(peft.encode(ids, mask)[real], ours.encode(ids, mask)[real], atol=ATOL, rtol=0)


def test_prefix_lora_on_gpt2_is_refused():
    with pytest.raises(ValueError, match="'gpt2'"):
        AdaptedModel(_base("gpt2"), TokenClassificationHead(HIDDEN, 3), "prefix-lora", PrefixLoraConfig(prefix_len=2))


def test_prefix_bias_adapts_the_decoder_norms():
    """Llama has no bias term anywhere: the deltas go on its RMSNorm outputs."""
    model = AdaptedModel(_base("llama"), TokenClassificationHead(HIDDEN, 3), "prefix-bias",
                         PrefixBiasConfig(prefix_len=2))
    keys = list(model.method.biases.keys())
    assert keys and all("layernorm" in key or key == "norm" for key in keys)

"""A quantised frozen base (``--quantize-base``, ``models/quantize.py``): every offered scheme passes the gradient
through to the prefix (cosine > 0.99 to the fp32 base's prefix gradient, non-zero), no gradient reaches the frozen
weights, refused schemes get one line, and an artifact records the scheme and holds only what trained."""
from __future__ import annotations

import importlib.util
import json

import pytest
import torch
from test_decoders import HIDDEN, decoder_batch, save_tiny_decoder, tiny_decoder

from heads import SequenceClassificationHead, TokenClassificationHead
from models.adapted import AdaptedModel, build_model
from models.methods import LoraConfig, PrefixConfig
from models.quantize import QUANTIZE_SCHEMES, Int8Linear, QuantizationUnavailable, check_scheme, quantize_base

HAS_BNB = importlib.util.find_spec("bitsandbytes") is not None


def offered() -> list:
    """The schemes this install offers; nf4 only with bitsandbytes and a GPU (where it quantises)."""
    return [pytest.param("nf4", marks=pytest.mark.skipif(not (HAS_BNB and torch.cuda.is_available()),
                                                         reason="nf4 needs bitsandbytes and a GPU"))
            if scheme == "nf4" else scheme for scheme in QUANTIZE_SCHEMES]


def _prefix_gradient(model_type: str, scheme: str | None) -> tuple[torch.Tensor, AdaptedModel]:
    backbone = tiny_decoder(model_type)
    if scheme is not None:
        quantize_base(backbone, scheme)
    torch.manual_seed(1)
    model = AdaptedModel(backbone, TokenClassificationHead(HIDDEN, 3, dropout=0.0), "prefix",
                         PrefixConfig(prefix_len=3, dropout=0.0)).train()
    device = "cuda" if scheme == "nf4" else "cpu"
    model.to(device)
    ids, mask = (t.to(device) for t in decoder_batch())
    labels = torch.randint(0, 3, ids.shape, generator=torch.Generator().manual_seed(1)).to(device)
    model(ids, mask, labels=labels.masked_fill(mask == 0, -100))["loss"].backward()
    return model.method.encoder.embedding.weight.grad.detach().cpu(), model


@pytest.mark.parametrize("scheme", offered())
@pytest.mark.parametrize("model_type", ["llama", "gpt2"])  # nn.Linear layers; GPT-2's Conv1D layers
def test_every_offered_scheme_passes_the_gradient_to_the_prefix(model_type, scheme):
    reference, _ = _prefix_gradient(model_type, None)
    grad, model = _prefix_gradient(model_type, scheme)
    assert grad.abs().sum() > 0
    cosine = torch.nn.functional.cosine_similarity(grad.flatten(), reference.flatten(), dim=0)
    assert cosine > 0.99, f"{scheme}: cosine {float(cosine):.4f} to the fp32 base's prefix gradient"
    for name, parameter in model.backbone.named_parameters():
        assert parameter.grad is None and not parameter.requires_grad, name
    for name, buffer in model.backbone.named_buffers():
        assert buffer.grad is None, name
    if scheme == "int8":
        layers = [m for m in model.backbone.modules() if isinstance(m, Int8Linear)]
        assert layers and all(m.weight_int8.dtype == torch.int8 for m in layers)
        assert not any(type(m).__name__ == "Conv1D" or type(m) is torch.nn.Linear for m in model.backbone.modules())


def test_int8_linear_is_close_to_the_fp32_layer():
    torch.manual_seed(0)
    linear = torch.nn.Linear(16, 8)
    quantized = Int8Linear(linear.weight, linear.bias)
    x = torch.randn(4, 16)
    assert torch.allclose(quantized(x), linear(x), atol=0.02)
    assert quantized.weight.shape == linear.weight.shape and quantized.in_features == 16


@pytest.mark.parametrize("scheme, words", [("dynamic-int8", "cuts the gradient"), ("fp8", "unknown")])
def test_refused_schemes_get_one_line(scheme, words):
    with pytest.raises(QuantizationUnavailable, match=words) as info:
        check_scheme(scheme)
    assert "\n" not in str(info.value)


def test_nf4_without_bitsandbytes_is_one_line(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_bnb(name, *args, **kwargs):
        if name == "bitsandbytes" or name.startswith("bitsandbytes."):
            raise ImportError("No module named 'bitsandbytes'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_bnb)
    with pytest.raises(QuantizationUnavailable, match="bitsandbytes") as info:
        quantize_base(tiny_decoder("llama"), "nf4")
    assert "\n" not in str(info.value)


def test_a_refused_scheme_from_the_cli_is_a_usage_error(tmp_path):
    from conftest import model_from_flags
    from tasks.common.errors import UsageError

    folder = save_tiny_decoder(tmp_path / "llama")
    with pytest.raises(UsageError, match="cuts the gradient"):
        model_from_flags(TokenClassificationHead(HIDDEN, 3), "--model", str(folder), "--quantize-base", "dynamic-int8")


def test_finetune_on_a_quantized_base_is_refused():
    backbone = tiny_decoder("llama")
    quantize_base(backbone, "int8")
    with pytest.raises(ValueError, match="quantize-base"):
        AdaptedModel(backbone, TokenClassificationHead(HIDDEN, 3), "finetune")


def test_lora_trains_on_an_int8_base():
    pytest.importorskip("peft")
    backbone = tiny_decoder("qwen2")
    quantize_base(backbone, "int8")
    model = AdaptedModel(backbone, TokenClassificationHead(HIDDEN, 3), "lora", LoraConfig(r=2)).train()
    ids, mask = decoder_batch()
    model(ids, mask, labels=torch.zeros_like(ids))["loss"].backward()
    lora = {n: p.grad for n, p in model.named_parameters() if ".lora_B" in n}  # A gets none while B is zero
    assert lora and all(g is not None and g.abs().sum() > 0 for g in lora.values())


def test_artifact_records_the_scheme_and_holds_only_what_trained(tmp_path):
    from safetensors.torch import load_file

    from tasks.common.artifacts import load_artifact, save_artifact

    folder = save_tiny_decoder(tmp_path / "llama")
    head = SequenceClassificationHead(HIDDEN, 2, pooling="last")
    model = build_model(str(folder), head, "prefix", PrefixConfig(prefix_len=2, dropout=0.0),
                        attention="bidirectional", quantize_base="int8").eval()
    save_artifact(model, tmp_path / "artifact", {"family": "glue", "name": "rte"})
    config = json.loads((tmp_path / "artifact" / "ptv2_config.json").read_text())
    assert config["base"] == {"attention": "bidirectional", "quantize": "int8"}
    tensors = load_file(str(tmp_path / "artifact" / "adapter.safetensors"))
    assert tensors and not any("backbone" in name or "int8" in name for name in tensors)

    loaded = load_artifact(tmp_path / "artifact").model  # rebuilds the same base: int8, bidirectional
    assert any(isinstance(m, Int8Linear) for m in loaded.backbone.modules())
    assert loaded.backbone.config.is_causal is False
    ids, mask = decoder_batch()
    ids = ids % 200 + 3  # ids of the byte-level tokenizer's vocabulary
    with torch.no_grad():
        torch.testing.assert_close(loaded(ids, mask)["logits"], model(ids, mask)["logits"], atol=1e-6, rtol=0)


def test_a_bf16_checkpoint_loads_as_an_fp32_base_and_quantises_as_the_fp32_load_does(tmp_path):
    """transformers loads a checkpoint in its saved dtype (decoders ship bf16): the base is fp32 all the same (bf16
    is --precision's choice), and a base to quantise, loaded as saved to halve the transient memory, gets the int8
    rows and scales that quantising the fp32 load gives, and fp32 everywhere else."""
    from transformers import AutoModel

    from models.backbone import load_backbone
    from test_decoders import save_tiny_decoder

    folder = save_tiny_decoder(tmp_path / "bf16")
    AutoModel.from_pretrained(folder, dtype=torch.float32).to(torch.bfloat16).save_pretrained(folder)
    base = load_backbone(str(folder))
    assert {p.dtype for p in base.parameters()} == {torch.float32}
    reference = load_backbone(str(folder))
    quantize_base(reference, "int8")
    quantized = load_backbone(str(folder), quantize="int8")
    assert {t.dtype for t in quantized.parameters()} | {t.dtype for t in quantized.buffers() if t.is_floating_point()} \
        == {torch.float32}
    theirs = dict(reference.named_buffers())
    for name, buffer in quantized.named_buffers():
        assert torch.equal(buffer, theirs[name]), name
    theirs = dict(reference.named_parameters())
    for name, parameter in quantized.named_parameters():
        assert torch.equal(parameter, theirs[name]), name

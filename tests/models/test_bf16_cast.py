"""bf16 by casting a frozen encoder once: the methods that freeze the encoder get its weights in bf16 (the fp32 ones
kept and put back bit for bit), those that train encoder tensors keep autocast; a training step through a bf16
encoder reaches the fp32 prefix and leaves the encoder as it was.

As in tests/test_precision.py, the CPU is told it has native bf16 (``native_bf16``): on CPUs without it the
arithmetic is emulated, only slower.
"""
from __future__ import annotations

import copy

import pytest
import torch

from conftest import HIDDEN, real_token_ids, tiny_backbone
from heads import TokenClassificationHead
from models.adapted import AdaptedModel
from models.methods import get_method
from models.precision import FP32_WEIGHTS, weights_cast

BF16_ATOL = 0.05  # tests/test_precision.py's tolerance


def build(method: str = "prefix", arch: str = "bert") -> AdaptedModel:
    torch.manual_seed(0)
    spec = get_method(method)
    lengths = {field: 3 for flag, field in spec.flags().items() if flag in ("--prefix-len", "--prompt-len")}
    config = spec.config_class(**lengths)
    if hasattr(config, "dropout"):
        config.dropout = 0.0
    return AdaptedModel(tiny_backbone(arch), TokenClassificationHead(HIDDEN, 5, dropout=0.0), method, config).eval()


def batch():
    ids = real_token_ids((3, 9), torch.Generator().manual_seed(1))
    mask = torch.ones_like(ids)
    mask[2, 5:] = 0
    labels = (ids % 5).masked_fill(mask == 0, -100)
    return ids, mask, labels


def encoder_weights(model: AdaptedModel) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in model.backbone.named_parameters()}


FROZEN = ["prefix", "prompt"]
PEFT_FROZEN = ["peft-prefix", "peft-ptuning"]


def methods(names: list[str], peft: bool) -> list:
    return [pytest.param(n, marks=pytest.mark.skipif(not has_peft(), reason="needs peft")) if peft else n
            for n in names]


def has_peft() -> bool:
    try:
        import peft  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.mark.parametrize("method", methods(FROZEN, False) + methods(PEFT_FROZEN, True))
def test_a_frozen_encoder_is_cast_once_and_put_back_bit_for_bit(native_bf16, method):
    model = build(method)
    before = encoder_weights(model)
    ids, mask, _ = batch()
    with torch.no_grad():
        reference = model(ids, mask).logits
        with model.inference("bf16") as runner:
            assert weights_cast(runner.backbone) and runner.autocast_precision == "fp32"  # no autocast on top
            assert all(p.dtype == torch.bfloat16 for p in runner.backbone.parameters())
            trained = [p for p in runner.parameters() if p.requires_grad]
            assert trained and all(p.dtype == torch.float32 for p in trained)  # prefix / prompt and head
            low = runner(ids, mask).logits
    assert low.dtype == torch.float32
    torch.testing.assert_close(low, reference, atol=BF16_ATOL, rtol=0)
    assert not torch.equal(low, reference)  # it did run in bf16
    assert not weights_cast(model.backbone) and model.precision == "fp32"
    after = encoder_weights(model)
    assert all(after[name].dtype == torch.float32 and torch.equal(after[name], before[name]) for name in before)


@pytest.mark.parametrize("arch", ["roberta", "deberta-v2", "distilbert"])
def test_the_prefix_reaches_a_cast_encoder_of_every_injection_style(native_bf16, arch):
    model = build("prefix", arch)
    encoder = model.method.encoder
    with torch.no_grad():
        encoder.set_table(3 * torch.randn(encoder.table().shape, generator=torch.Generator().manual_seed(2)))
    ids, mask, _ = batch()
    with torch.no_grad():
        reference = model(ids, mask).logits
        with model.inference("bf16") as runner:
            low = runner(ids, mask).logits
            bare = runner.backbone(input_ids=ids, attention_mask=mask).last_hidden_state  # the slot empty: no prefix
            without = runner.head(bare.float())
    torch.testing.assert_close(low, reference, atol=BF16_ATOL, rtol=0)
    assert bare.dtype == torch.bfloat16
    # the prefix's keys/values were attended to: without them the logits are much further off
    assert (low - without).abs().max() > 4 * (low - reference).abs().max()


@pytest.mark.parametrize("method", ["finetune", "bitfit", pytest.param(
    "lora", marks=pytest.mark.skipif(not has_peft(), reason="needs peft"))])
def test_methods_that_train_encoder_tensors_keep_autocast(native_bf16, method):
    model = build(method)
    assert not model.encoder_frozen()
    ids, mask, _ = batch()
    with torch.no_grad():
        reference = model(ids, mask).logits
        model.set_precision("bf16")
        assert not weights_cast(model.backbone) and model.autocast_precision == "bf16"
        assert all(p.dtype == torch.float32 for p in model.backbone.parameters())
        low = model(ids, mask).logits
    torch.testing.assert_close(low, reference, atol=BF16_ATOL, rtol=0)
    assert not torch.equal(low, reference)


@pytest.mark.parametrize("method,arch", [("prefix", "bert"), ("prefix", "deberta-v2"), ("prompt", "bert"),
                                         pytest.param("peft-prefix", "bert", marks=pytest.mark.skipif(
                                             not has_peft(), reason="needs peft"))])
def test_one_training_step_through_a_cast_encoder_moves_only_the_fp32_tensors(native_bf16, method, arch):
    model = build(method, arch).train()
    before = encoder_weights(model)
    trained = {name: p.detach().clone() for name, p in model.named_parameters() if p.requires_grad}
    model.set_precision("bf16")
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    ids, mask, labels = batch()
    loss = model(ids, mask, labels=labels).loss
    assert torch.isfinite(loss) and loss.dtype == torch.float32
    loss.backward()
    grads = {name: p.grad for name, p in model.named_parameters() if p.requires_grad}
    assert all(g is not None and g.dtype == torch.float32 and torch.isfinite(g).all() for g in grads.values())
    method_grads = [g for name, g in grads.items() if name.startswith("methods.")]
    assert method_grads and any(g.abs().sum() > 0 for g in method_grads)  # the gradient reached the prefix / prompt
    assert all(p.grad is None for p in model.backbone.parameters())
    optimizer.step()
    changed = {name for name, p in model.named_parameters() if name in trained and not torch.equal(p, trained[name])}
    assert any(name.startswith("methods.") for name in changed)
    model.set_precision("fp32")
    after = encoder_weights(model)
    assert all(torch.equal(after[name], before[name]) for name in before)  # the encoder did not move


def test_models_sharing_an_encoder_share_its_cast(native_bf16):
    """The server's prompt tasks use the shared model's encoder: casting it once casts it for all."""
    first = build("prefix")
    second = AdaptedModel(first.backbone, TokenClassificationHead(HIDDEN, 5, dropout=0.0), "prompt",
                          get_method("prompt").config_class(prompt_len=2))
    first.set_precision("bf16")
    kept = getattr(first.backbone, FP32_WEIGHTS)
    second.set_precision("bf16")  # already cast: the kept fp32 tensors are still the originals
    assert getattr(second.backbone, FP32_WEIGHTS) is kept
    assert all(t.dtype == torch.float32 for t in kept.values())
    second.set_precision("fp32")
    assert all(p.dtype == torch.float32 for p in first.backbone.parameters())


def test_an_int8_copy_of_a_cast_model_starts_from_the_fp32_weights(native_bf16):
    model = build("prefix")
    ids, mask, _ = batch()
    with torch.no_grad():
        reference = model(ids, mask).logits
        model.set_precision("bf16")
        with model.inference("int8") as runner:
            assert not weights_cast(runner.backbone)
            low = runner(ids, mask).logits
        assert weights_cast(model.backbone) and model.precision == "bf16"  # the original is as it was
    torch.testing.assert_close(low, reference, atol=0.05, rtol=0)


def test_a_deep_copy_of_a_cast_model_restores_its_own_weights(native_bf16):
    model = build("prefix")
    before = encoder_weights(model)
    model.set_precision("bf16")
    twin = copy.deepcopy(model).set_precision("fp32")
    assert weights_cast(model.backbone) and not weights_cast(twin.backbone)
    assert all(torch.equal(p, before[name]) for name, p in twin.backbone.named_parameters())


def test_bf16_is_refused_where_it_would_be_emulated_and_int8_on_a_gpu(no_bf16):
    from models.precision import check_precision

    model = build("prefix")
    with pytest.raises(ValueError, match="emulated"):
        model.set_precision("bf16")
    assert not weights_cast(model.backbone)
    with pytest.raises(ValueError, match="CPU only"):
        check_precision("int8", "cuda")

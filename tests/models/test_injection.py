"""Prefix injection inside attention, on tiny random encoders of every supported family.

What is checked, per architecture: an empty (or absent) prefix changes nothing; a prefix
reaches every real token and every layer; the prefix has no position and does not shift
the tokens' positions; padding is never attended; sdpa and eager kernels agree; and an
unsupported architecture is refused with a clear error.
"""
from __future__ import annotations

import copy
import io

import pytest
import torch

from conftest import HIDDEN, LAYERS, MAX_POSITIONS, real_token_ids, tiny_backbone
from heads import TokenClassificationHead
from models.adapted import AdaptedModel
from models.methods import PrefixConfig, PromptConfig
from models.prefix import UnsupportedArchitecture, attention_modules, inject_prefix

ABSOLUTE_POSITIONS = ("bert", "roberta", "distilbert", "electra", "xlm-roberta")
INTERFACE_STYLE = ("bert", "roberta", "distilbert", "electra", "xlm-roberta", "modernbert")
ATOL = 1e-5


def prefixed(backbone, prefix_len: int, **config) -> AdaptedModel:
    config.setdefault("dropout", 0.0)
    return AdaptedModel(backbone, TokenClassificationHead(HIDDEN, 3), "prefix",
                        PrefixConfig(prefix_len=prefix_len, **config)).eval()


def pad_id(backbone) -> int:
    return backbone.config.pad_token_id if backbone.config.pad_token_id is not None else 0


def padded_batch(backbone, lengths=(12, 7, 3), generator=None):
    """ids (B, n) with real ids on the first ``lengths[b]`` positions and the pad id after them."""
    n = max(lengths)
    ids = real_token_ids((len(lengths), n), generator)
    mask = torch.zeros_like(ids)
    for row, length in enumerate(lengths):
        mask[row, :length] = 1
        ids[row, length:] = pad_id(backbone)
    return ids, mask


@torch.no_grad()
def plain_hidden(backbone, ids, mask):
    return backbone(input_ids=ids, attention_mask=mask).last_hidden_state


# --------------------------------------------------------------------------- no prefix = plain model
@torch.no_grad()
def test_empty_prefix_equals_plain_frozen_model(arch):
    backbone = tiny_backbone(arch)
    reference = copy.deepcopy(backbone)
    ids, mask = padded_batch(backbone)
    expected = plain_hidden(reference, ids, mask)

    model = prefixed(backbone, prefix_len=0)
    real = mask.bool()
    torch.testing.assert_close(model.encode(ids, mask)[real], expected[real], atol=ATOL, rtol=0)
    # the injected encoder called without any prefix in its slot computes what it computed before
    torch.testing.assert_close(plain_hidden(model.backbone, ids, mask)[real], expected[real], atol=ATOL, rtol=0)
    # and its weights are the frozen model's, untouched
    for (name, p), (_, q) in zip(model.backbone.named_parameters(), reference.named_parameters()):
        assert torch.equal(p, q), name
        assert not p.requires_grad, name


@torch.no_grad()
def test_prefix_reaches_every_real_token(arch):
    backbone = tiny_backbone(arch)
    reference = copy.deepcopy(backbone)
    ids, mask = padded_batch(backbone)
    model = prefixed(backbone, prefix_len=4)
    changed = (model.encode(ids, mask) - plain_hidden(reference, ids, mask)).abs().amax(-1)  # (B, n)
    assert (changed[mask.bool()] > 1e-3).all(), "some real token does not attend to the prefix"


def test_every_layer_gets_its_own_prefix(arch):
    """The gradient reaches the key and the value prefix of every attention layer."""
    backbone = tiny_backbone(arch)
    model = prefixed(backbone, prefix_len=3).train()
    model.backbone.eval()  # no dropout: every gradient path stays open
    assert len(attention_modules(model.backbone)) == LAYERS
    ids, mask = padded_batch(backbone)
    model.encode(ids, mask).pow(2).sum().backward()
    grad = model.method.encoder.embedding.weight.grad
    assert grad is not None
    per_slot = grad.view(3, LAYERS, 2, -1).abs().sum(dim=(0, 3))  # (layers, key|value)
    assert (per_slot > 0).all(), f"prefix rows without gradient (layer x key/value): {per_slot}"


@torch.no_grad()
def test_prefix_has_no_position(arch):
    """Permuting the prefix rows (keys and values together) leaves every output unchanged."""
    backbone = tiny_backbone(arch)
    ids, mask = padded_batch(backbone)
    model = prefixed(backbone, prefix_len=5)
    before = model.encode(ids, mask)
    weight = model.method.encoder.embedding.weight
    weight.copy_(weight[torch.tensor([3, 0, 4, 1, 2])])
    model.eval()  # drop the cached table
    after = model.encode(ids, mask)
    real = mask.bool()
    torch.testing.assert_close(after[real], before[real], atol=ATOL, rtol=0)


# --------------------------------------------------------------------------- positions
class PositionProbe:
    """Records what position information reaches the encoder on each forward."""

    def __init__(self, backbone, arch: str) -> None:
        self.seen: list[torch.Tensor] = []
        if arch in ABSOLUTE_POSITIONS:
            backbone.embeddings.position_embeddings.register_forward_pre_hook(
                lambda _m, args: self.seen.append(args[0].detach().clone()))
        elif arch == "modernbert":
            def rotary(_m, args, kwargs):
                positions = kwargs.get("position_ids", args[1] if len(args) > 1 else None)
                self.seen.append(positions.detach().clone())
            backbone.rotary_emb.register_forward_pre_hook(rotary, with_kwargs=True)
        elif arch.startswith("deberta"):
            # relative positions: record the position bias of the first layer (its input does not
            # depend on the prefix), as seen by the attention scores
            layer0 = attention_modules(backbone)[0]
            inner = layer0.disentangled_attention_bias

            def bias(*args):
                out = inner(*args)
                self.seen.append(out.detach().clone())
                return out
            layer0.disentangled_attention_bias = bias
        else:
            raise AssertionError(arch)


@torch.no_grad()
def test_prefix_does_not_shift_token_positions(arch):
    prefix_len = 6
    backbone = tiny_backbone(arch)
    reference = copy.deepcopy(backbone)
    ids, mask = padded_batch(backbone)
    plain_probe = PositionProbe(reference, arch)
    plain_hidden(reference, ids, mask)

    model = prefixed(backbone, prefix_len=prefix_len)
    probe = PositionProbe(model.backbone, arch)
    model.encode(ids, mask)
    assert len(probe.seen) == len(plain_probe.seen) >= 1
    seen, expected = probe.seen[0], plain_probe.seen[0]
    n = ids.shape[1]
    if arch.startswith("deberta"):
        # (B*heads, n, P+n): the token columns carry exactly the plain model's relative-position
        # bias (positions 0..n-1), the prefix columns none at all
        assert seen.shape[-2:] == (n, prefix_len + n)
        torch.testing.assert_close(seen[..., prefix_len:], expected, atol=ATOL, rtol=0)
        assert torch.count_nonzero(seen[..., :prefix_len]) == 0
        assert torch.count_nonzero(expected) > 0
    else:
        assert torch.equal(seen, expected)
        offset = backbone.config.pad_token_id + 1 if arch in ("roberta", "xlm-roberta") else 0
        first_row = seen.reshape(-1, n)[0]
        assert torch.equal(first_row, torch.arange(offset, offset + n)), "tokens must keep positions 0..n-1"


@pytest.mark.parametrize("arch", ABSOLUTE_POSITIONS)
@torch.no_grad()
def test_input_of_maximum_length_works_with_a_prefix(arch):
    """All max_position_embeddings positions stay usable; a past_key_values prefix would lose P of them."""
    prefix_len = 8
    backbone = tiny_backbone(arch)
    model = prefixed(backbone, prefix_len=prefix_len)
    limit = model.max_input_length()
    offset = 2 if arch in ("roberta", "xlm-roberta") else 0  # positions start after the padding index
    assert limit == MAX_POSITIONS - offset  # the prefix costs no positions
    ids = real_token_ids((2, limit))
    out = model(ids, torch.ones_like(ids))["logits"]
    assert out.shape == (2, limit, 3) and torch.isfinite(out).all()

    if arch == "bert":  # what past_key_values-based prefix tuning does: tokens at positions P..P+n-1
        shifted = torch.arange(prefix_len, prefix_len + limit).unsqueeze(0)
        with pytest.raises((IndexError, RuntimeError)):
            tiny_backbone(arch)(input_ids=ids[:1], position_ids=shifted)


def test_prompt_mode_spends_positions_prefix_mode_does_not():
    backbone = tiny_backbone("bert")
    prompt = AdaptedModel(copy.deepcopy(backbone), TokenClassificationHead(HIDDEN, 3), "prompt", PromptConfig(5))
    prefix = prefixed(backbone, prefix_len=5)
    assert prefix.max_input_length() == MAX_POSITIONS
    assert prompt.max_input_length() == MAX_POSITIONS - 5


# --------------------------------------------------------------------------- padding
@torch.no_grad()
def test_padding_is_never_attended(arch):
    backbone = tiny_backbone(arch)
    model = prefixed(backbone, prefix_len=4)
    ids, mask = padded_batch(backbone)
    before = model.encode(ids, mask)

    other = ids.clone()
    other[mask == 0] = real_token_ids((int((mask == 0).sum()),), torch.Generator().manual_seed(1))
    after = model.encode(other, mask)
    real = mask.bool()
    assert not torch.equal(other, ids)
    torch.testing.assert_close(after[real], before[real], atol=1e-6, rtol=0)

    # each padded row gives its real tokens the outputs of the same sentence alone, unpadded
    for row, length in ((1, 7), (2, 3)):
        alone = model.encode(ids[row:row + 1, :length], mask[row:row + 1, :length])
        torch.testing.assert_close(before[row, :length], alone[0], atol=ATOL, rtol=0)


# --------------------------------------------------------------------------- kernels
@pytest.mark.parametrize("arch", INTERFACE_STYLE)
@torch.no_grad()
def test_sdpa_and_eager_agree_with_a_prefix(arch):
    sdpa = prefixed(tiny_backbone(arch, "sdpa"), prefix_len=4)
    eager = prefixed(tiny_backbone(arch, "eager"), prefix_len=4)
    eager.load_state_dict(sdpa.state_dict())
    assert sdpa.backbone.config._ptv2_base == "sdpa" and eager.backbone.config._ptv2_base == "eager"
    ids, mask = padded_batch(sdpa.backbone)
    real = mask.bool()
    a, b = sdpa.encode(ids, mask), eager.encode(ids, mask)
    torch.testing.assert_close(a[real], b[real], atol=ATOL, rtol=0)
    assert (a - plain_hidden(tiny_backbone(arch, "sdpa"), ids, mask)).abs().amax() > 1e-3  # the prefix is used


def test_two_prefixed_models_do_not_interfere():
    """Injection state lives per model: a second prefixed model changes nothing for the first."""
    first = prefixed(tiny_backbone("bert"), prefix_len=4)
    ids, mask = padded_batch(first.backbone)
    with torch.no_grad():
        before = first.encode(ids, mask)
        second = prefixed(tiny_backbone("bert", seed=3), prefix_len=7)
        second.encode(ids, mask)
        torch.testing.assert_close(first.encode(ids, mask), before, atol=0, rtol=0)


@torch.no_grad()
def test_a_copied_or_unpickled_model_reads_its_own_prefix(arch):
    model = prefixed(tiny_backbone(arch), prefix_len=4)
    ids, mask = padded_batch(model.backbone)
    real = mask.bool()
    before = model.encode(ids, mask)
    buffer = io.BytesIO()
    torch.save(model, buffer)
    buffer.seek(0)
    for clone in (copy.deepcopy(model), torch.load(buffer, weights_only=False)):
        torch.testing.assert_close(clone.encode(ids, mask)[real], before[real], atol=ATOL, rtol=0)
        for parameter in clone.method.encoder.parameters():
            parameter.add_(1.0)
        clone.train().eval()  # drop the clone's cached eval-mode prefix
        assert not torch.allclose(clone.encode(ids, mask)[real], before[real], atol=1e-3)
        torch.testing.assert_close(model.encode(ids, mask), before, atol=0, rtol=0)  # the original is untouched


# --------------------------------------------------------------------------- unsupported
def _bloom():  # a decoder outside the supported ones (ALiBi: its position bias would need the prefix's positions)
    from transformers import BloomConfig, BloomModel

    return BloomModel(BloomConfig(vocab_size=99, hidden_size=32, n_layer=2, n_head=4))


def _t5_encoder():
    from transformers import T5Config, T5EncoderModel

    return T5EncoderModel(T5Config(vocab_size=99, d_model=32, d_kv=8, d_ff=37, num_layers=2, num_heads=4))


@pytest.mark.parametrize("build, model_type", [(_bloom, "bloom"), (_t5_encoder, "t5")])
def test_unsupported_architecture_is_a_clear_error(build, model_type):
    backbone = build()
    with pytest.raises(UnsupportedArchitecture) as info:
        AdaptedModel(backbone, TokenClassificationHead(HIDDEN, 3), "prefix", PrefixConfig(prefix_len=4))
    message = str(info.value)
    assert f"'{model_type}'" in message and "not supported" in message
    for supported in ("bert", "roberta", "deberta-v2"):
        assert supported in message
    with pytest.raises(UnsupportedArchitecture):
        inject_prefix(backbone)


def test_unsupported_architecture_from_the_cli_is_a_usage_error(tmp_path):
    from conftest import model_from_flags
    from tasks.common.errors import UsageError

    _bloom().save_pretrained(tmp_path / "bloom")
    with pytest.raises(UsageError, match="'bloom' is not supported"):
        model_from_flags(TokenClassificationHead(HIDDEN, 3), "--model", str(tmp_path / "bloom"), "--prefix-len", "4")


def test_unsupported_attention_kernel_is_a_clear_error():
    backbone = tiny_backbone("bert")
    backbone.config._attn_implementation = "flash_attention_2"
    with pytest.raises(UnsupportedArchitecture, match="flash_attention_2"):
        inject_prefix(backbone)


# --------------------------------------------------------------------------- gradient checkpointing
def _prefix_grads(arch: str, checkpointing: bool) -> dict[str, torch.Tensor]:
    """Gradients of the prefix and head on one padded batch (no dropout anywhere: the two runs must match)."""
    backbone = tiny_backbone(arch, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    torch.manual_seed(1)
    model = prefixed(backbone, 3).train()
    model.head.drop.p = 0.0
    if checkpointing:
        model.enable_gradient_checkpointing()
    ids, mask = padded_batch(backbone, generator=torch.Generator().manual_seed(0))
    labels = torch.randint(0, 3, ids.shape, generator=torch.Generator().manual_seed(1))
    model(ids, mask, labels=labels)["loss"].backward()
    return {name: p.grad for name, p in model.named_parameters() if p.requires_grad}


def test_gradient_checkpointing_gives_the_same_prefix_gradients(arch):
    """The recomputation during backward must see the prefix its forward saw (interface and DeBERTa styles)."""
    plain, checkpointed = _prefix_grads(arch, False), _prefix_grads(arch, True)
    assert set(plain) == set(checkpointed) and "methods.shared.encoder.embedding.weight" in plain
    for name, grad in plain.items():
        torch.testing.assert_close(checkpointed[name], grad, atol=1e-6, rtol=1e-5, msg=name)


def test_gradient_checkpointing_is_refused_for_peft_prefix():
    pytest.importorskip("peft")
    from models.methods import PeftPrefixConfig

    model = AdaptedModel(tiny_backbone("bert"), TokenClassificationHead(HIDDEN, 3), "peft-prefix",
                         PeftPrefixConfig(prefix_len=2))
    with pytest.raises(ValueError, match="peft-prefix"):
        model.enable_gradient_checkpointing()

"""The prefix initialisations of the reference protocol (--prefix-init): every init gives the prefix's shape, and
"tokens" takes the encoder's own keys and values of real tokens at every layer."""
from __future__ import annotations

import pytest
import torch

from conftest import HIDDEN, LAYERS, real_token_ids, tiny_backbone
from heads import TokenClassificationHead
from models.adapted import AdaptedModel
from models.methods import PrefixConfig

NUM_LABELS = 3


def prefixed(arch: str, **config) -> AdaptedModel:
    return AdaptedModel(tiny_backbone(arch), TokenClassificationHead(HIDDEN, NUM_LABELS), "prefix",
                        PrefixConfig(prefix_len=5, **config))


@pytest.mark.parametrize("init", ["normal", "zeros", "tokens"])
def test_every_init_gives_the_prefix_shape(init):
    model = prefixed("bert", init=init)
    weight = model.method.encoder.embedding.weight
    assert weight.shape == (5, LAYERS * 2 * HIDDEN)
    if init == "zeros":
        assert not weight.any()
    if init == "normal":
        assert 0.5 < weight.std().item() < 1.5


def _own_projections(model: AdaptedModel, arch: str) -> dict[tuple[int, int], torch.Tensor]:
    """Each layer's key/value projection outputs, read by hooks of the test's own (not the injection's)."""
    found, handles = {}, []
    names = ("key_proj", "value_proj") if arch.startswith("deberta") else ("key", "value")
    layers = [m for m in model.backbone.modules() if all(hasattr(m, n) for n in names)]
    for layer, module in enumerate(layers):
        for which, name in enumerate(names):
            def hook(_m, _i, out, key=(layer, which)):
                found.setdefault(key, out.detach())  # the first call: the tokens (DeBERTa-v3 reuses key_proj)
            handles.append(getattr(module, name).register_forward_hook(hook))
    return found, handles


@pytest.mark.parametrize("arch", ["bert", "deberta-v2", "deberta-v3"])
def test_token_init_equals_the_encoders_own_keys_and_values_at_every_layer(arch):
    model = prefixed(arch, init="tokens")
    ids = real_token_ids((2, 9), torch.Generator().manual_seed(3))
    mask = torch.ones_like(ids)
    mask[1, 6:] = 0
    expected, handles = _own_projections(model, arch)
    with torch.no_grad():
        model.backbone(input_ids=ids, attention_mask=mask)
    for handle in handles:
        handle.remove()
    picks = model.method.init_from_tokens(model.backbone, ids, mask, generator=torch.Generator().manual_seed(0))
    assert picks.shape == (5, 2) and all(mask[r, c] for r, c in picks.tolist())
    table = model.method.encoder.table()  # (P, layers, 2, kv_dim)
    for layer in range(LAYERS):
        for which in (0, 1):
            own = expected[(layer, which)][picks[:, 0], picks[:, 1]]
            torch.testing.assert_close(table[:, layer, which], own, atol=1e-6, rtol=0)


def test_token_init_is_refused_with_an_mlp_prefix():
    with pytest.raises(ValueError, match="--reparam"):
        PrefixConfig(init="tokens", reparameterize=True)

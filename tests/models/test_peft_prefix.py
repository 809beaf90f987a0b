"""The peer baseline: PEFT's prefix tuning on a tiny random BERT, through AdaptedModel."""
from __future__ import annotations

import pytest
import torch

pytest.importorskip("peft")

from transformers import BertConfig, BertModel  # noqa: E402

from heads import TokenClassificationHead  # noqa: E402
from models.adapted import AdaptedModel  # noqa: E402
from models.methods import PeftPrefixConfig, PrefixConfig  # noqa: E402
from models.methods.peft_prefix import cache_argument  # noqa: E402

HIDDEN, LAYERS, LABELS, PREFIX = 32, 2, 3, 4


def _model(seed: int = 0, prefix_len: int = PREFIX, method: str = "peft-prefix") -> AdaptedModel:
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=60, hidden_size=HIDDEN, num_hidden_layers=LAYERS, num_attention_heads=4,
                        intermediate_size=64, max_position_embeddings=64)
    backbone = BertModel(config, add_pooling_layer=False)
    head = TokenClassificationHead(HIDDEN, LABELS, dropout=0.0)
    config = (PeftPrefixConfig if method == "peft-prefix" else PrefixConfig)(prefix_len=prefix_len)
    return AdaptedModel(backbone, head, method, config)


def _batch(seed: int = 1):
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, 60, (8, 10), generator=generator)
    mask = torch.ones_like(ids)
    mask[:3, 7:] = 0  # some padding
    labels = (ids % LABELS).masked_fill(mask == 0, -100)  # learnable: label is a function of the token
    return ids, mask, labels


def test_trainable_set_and_counts() -> None:
    model = _model()
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert not any(n.startswith("backbone.") for n in trainable)
    prefix = [n for n in trainable if n.startswith("methods.")]
    assert len(prefix) == 1 and "prompt_encoder" in prefix[0]
    head = HIDDEN * LABELS + LABELS
    assert model.parameter_counts()["trainable"] == PREFIX * LAYERS * 2 * HIDDEN + head
    assert model.max_input_length() == 64 - PREFIX  # PEFT shifts positions by the prefix
    assert model.method_record() == {"name": "peft-prefix", "config": {
        "prefix_len": PREFIX, "reparameterize": False, "hidden_size": 512, "position_shift": True}}


def test_matches_peft_own_forward() -> None:
    """Our call is PEFT's own prefix path (minus dropping token_type_ids)."""
    model = _model().eval()
    ids, mask, _ = _batch()
    ours = model.encode(ids, mask)
    theirs = model.method._peft(input_ids=ids, attention_mask=mask).last_hidden_state
    torch.testing.assert_close(ours, theirs)


def test_ours_is_peft_minus_the_position_shift() -> None:
    """With the same prefix rows, PEFT's cache prefix equals our in-attention prefix once PEFT's
    tokens keep positions 0..n-1: the position shift is the only difference between the two."""
    theirs, ours = _model().eval(), _model(method="prefix").eval()
    table = theirs.method.prompt_encoder["default"].embedding.weight  # (P, layers*2*kv_dim), same row layout
    with torch.no_grad():
        ours.method.encoder.embedding.weight.copy_(table)
    ids, mask, _ = _batch()
    real = mask.bool()
    expected = ours.encode(ids, mask)[real]

    def peft_hidden(**kwargs) -> torch.Tensor:
        past = theirs.method._peft.get_prompt(ids.shape[0])
        wide = torch.cat([torch.ones(ids.shape[0], PREFIX, dtype=mask.dtype), mask], 1)
        cache = {cache_argument(theirs.backbone): past}
        return theirs.backbone(input_ids=ids, attention_mask=wide, **cache, **kwargs).last_hidden_state

    unshifted = torch.arange(ids.shape[1]).expand_as(ids)
    torch.testing.assert_close(peft_hidden(position_ids=unshifted)[real], expected)
    assert not torch.allclose(peft_hidden()[real], expected, atol=1e-3)  # PEFT's own call shifts by P


def test_trains_loss_decreases_backbone_frozen() -> None:
    model = _model().train()
    frozen = {n: p.detach().clone() for n, p in model.backbone.named_parameters()}
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=3e-2)
    ids, mask, labels = _batch()
    losses = []
    for _ in range(40):
        loss = model(ids, mask, labels=labels)["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0]
    for name, parameter in model.backbone.named_parameters():
        assert parameter.grad is None, name
        assert torch.equal(parameter, frozen[name]), name


def test_padding_is_not_attended() -> None:
    model = _model().eval()
    ids, mask, _ = _batch()
    changed = ids.clone()
    changed[mask == 0] = 7  # different tokens under the padding
    real = mask.bool()
    torch.testing.assert_close(model.encode(ids, mask)[real], model.encode(changed, mask)[real])


def test_missing_peft_is_a_clear_error(without_peft) -> None:
    from models.methods.peft_prefix import PeftMissing

    with pytest.raises(PeftMissing, match="pip install peft"):
        _model()


def test_without_the_position_shift_peft_computes_what_our_prefix_computes() -> None:
    theirs = AdaptedModel(_model().backbone, _model().head, "peft-prefix",
                          PeftPrefixConfig(prefix_len=PREFIX, position_shift=False)).eval()
    ours = _model(method="prefix").eval()
    with torch.no_grad():
        ours.method.encoder.embedding.weight.copy_(theirs.method.prompt_encoder["default"].embedding.weight)
    ids, mask, _ = _batch()
    real = mask.bool()
    torch.testing.assert_close(theirs.encode(ids, mask)[real], ours.encode(ids, mask)[real])
    assert theirs.max_input_length() == 64  # no positions spent on the prefix

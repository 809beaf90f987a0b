"""Deep prefixes on decoders (Llama, Mistral, Qwen2/3, Gemma 1/2/3, GLM/GLM-4, Phi/Phi-3, GPT-2), tiny random models.

The reference is transformers' own prefix-in-cache computation: a ``DynamicCache`` pre-filled with each layer's
prefix keys/values, the tokens at positions 0..n-1 and an attention mask covering prefix + tokens.  Our prefix
(inside attention, never in a cache) must give the same last hidden states on every real position, with sdpa and
eager, with and without right padding, with grouped-query attention (2 key/value heads for 4 query heads).

Helpers here (``tiny_decoder``, ``decoder_batch``, ``write_decoder_tokenizer``) are shared by the other
``test_decoders_*.py`` files.
"""
from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import torch
from transformers import AutoModel, DynamicCache

from heads import (POOLING, MultipleChoiceHead, RegressionHead, SequenceClassificationHead, SpanHead,
                   TokenClassificationHead)
from heads.pooling import Pooler, last_real
from models.adapted import AdaptedModel, Segment
from models.decoders import attention_mode, pad_like_a_decoder, prepare_decoder, set_attention
from models.methods import PrefixConfig
from models.prefix import UnsupportedArchitecture, injection

HIDDEN, LAYERS, HEADS, KV_HEADS, VOCAB = 32, 2, 4, 2, 99
ATOL = 1e-5
DECODERS = ("llama", "mistral", "qwen2", "qwen3", "gemma", "gemma2", "gemma3_text", "glm", "glm4", "phi", "phi3",
            "gpt2")
NO_SDPA = ("gemma2",)  # transformers refuses sdpa for Gemma 2 (attention-logit soft-capping): eager only
EOS = 2


def tiny_decoder_config(model_type: str, **overrides):
    """A tiny decoder config built in code: grouped-query attention (2 KV heads for 4 query heads) wherever the
    architecture has it, head sizes other than hidden / heads where the config sets one, no pad token."""
    import transformers as t

    common = dict(vocab_size=VOCAB, hidden_size=HIDDEN, intermediate_size=37, num_hidden_layers=LAYERS,
                  num_attention_heads=HEADS, num_key_value_heads=KV_HEADS, max_position_embeddings=64,
                  bos_token_id=1, eos_token_id=EOS, pad_token_id=None)
    # sliding windows wider than any test input here (P + n < 64), so transformers' cached reference and ours see
    # the same keys; test_sliding_window_layers_see_the_whole_prefix narrows them
    builders = {
        "llama": lambda: t.LlamaConfig(**common),
        "mistral": lambda: t.MistralConfig(**common, sliding_window=64),
        "qwen2": lambda: t.Qwen2Config(**common),
        "qwen3": lambda: t.Qwen3Config(**common, head_dim=8),
        "gemma": lambda: t.GemmaConfig(**common, head_dim=16),  # head size 16 != 32 / 4
        "gemma2": lambda: t.Gemma2Config(**common, head_dim=8, sliding_window=64),
        "gemma3_text": lambda: t.Gemma3TextConfig(**common, head_dim=8, sliding_window=64),
        "glm": lambda: t.GlmConfig(**common, head_dim=8),
        "glm4": lambda: t.Glm4Config(**common, head_dim=8),
        "phi": lambda: t.PhiConfig(**common),
        "phi3": lambda: t.Phi3Config(**common),
        "gpt2": lambda: t.GPT2Config(vocab_size=VOCAB, n_embd=HIDDEN, n_layer=LAYERS, n_head=HEADS, n_positions=64,
                                     bos_token_id=1, eos_token_id=EOS),
    }
    config = builders[model_type]()
    for key, value in overrides.items():
        setattr(config, key, value)
    return config


def tiny_decoder(model_type: str, attn_implementation: str = "sdpa", seed: int = 0, **overrides):
    """A tiny randomly initialised bare decoder in eval mode, prepared as ``load_backbone`` prepares one."""
    torch.manual_seed(seed)
    model = AutoModel.from_config(tiny_decoder_config(model_type, **overrides), attn_implementation=attn_implementation)
    return prepare_decoder(model).eval()


def decoder_batch(lengths=(9, 6, 3), padded: bool = True, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """ids (B, n), right-padded with the eos id (a decoder's pad), and the mask; unpadded: every row full length."""
    generator = torch.Generator().manual_seed(seed)
    n = max(lengths)
    ids = torch.randint(5, VOCAB, (len(lengths), n), generator=generator)
    mask = torch.ones_like(ids)
    if padded:
        for row, length in enumerate(lengths):
            mask[row, length:] = 0
            ids[row, length:] = EOS
    return ids, mask


def prefixed(backbone, prefix_len: int = 3, head=None, **config) -> AdaptedModel:
    config.setdefault("dropout", 0.0)
    return AdaptedModel(backbone, head or TokenClassificationHead(HIDDEN, 3), "prefix",
                        PrefixConfig(prefix_len=prefix_len, **config)).eval()


def head_dim(backbone) -> int:
    return injection.attention_modules(backbone)[0].head_dim


def prefix_cache(model: AdaptedModel, batch: int) -> DynamicCache:
    """transformers' own prefix: a cache pre-filled with every layer's prefix keys/values (B, kv_heads, P, d)."""
    cache = DynamicCache()
    size = head_dim(model.backbone)
    for layer, (key, value) in enumerate(model.method.encoder(batch)):
        split = lambda x: x.reshape(batch, x.shape[1], -1, size).transpose(1, 2)  # noqa: E731
        cache.update(split(key), split(value), layer)
    return cache


@torch.no_grad()
def cached_reference(reference, model: AdaptedModel, ids: torch.Tensor, mask: torch.Tensor, attention=None):
    """Last hidden states of ``reference`` (the same weights, not injected) with the prefix in its cache.

    ``attention``: an explicit 4D mask (or a per-layer-type dict of them) instead of transformers' own."""
    batch, n = ids.shape
    prefix_len = model.method.config.prefix_len
    full = torch.cat([mask.new_ones(batch, prefix_len), mask], 1)
    return reference(input_ids=ids, attention_mask=full if attention is None else attention,
                     position_ids=torch.arange(n).expand(batch, n), cache=prefix_cache(model, batch),
                     use_cache=True).last_hidden_state


def implementations():
    return [(t, impl) for t in DECODERS for impl in ("sdpa", "eager") if not (impl == "sdpa" and t in NO_SDPA)]


# --------------------------------------------------------------------------- the reference
@pytest.mark.parametrize("padded", [True, False], ids=["padded", "unpadded"])
@pytest.mark.parametrize("model_type, impl", implementations())
def test_prefix_equals_transformers_prefix_in_cache(model_type, impl, padded):
    backbone = tiny_decoder(model_type, impl)
    reference = copy.deepcopy(backbone)
    model = prefixed(backbone, prefix_len=4)
    ids, mask = decoder_batch(padded=padded)
    with torch.no_grad():
        ours = model.encode(ids, mask)
        plain = reference(input_ids=ids, attention_mask=mask).last_hidden_state
    expected = cached_reference(reference, model, ids, mask)
    real = mask.bool()
    torch.testing.assert_close(ours[real], expected[real], atol=ATOL, rtol=0)
    assert (ours - plain)[real].abs().amax(-1).min() > 1e-3, "some real token does not attend to the prefix"


@pytest.mark.parametrize("model_type", ["llama", "gpt2"])
def test_prefix_is_sized_by_the_key_value_heads(model_type):
    backbone = tiny_decoder(model_type)
    model = prefixed(backbone, prefix_len=2)
    kv_heads = KV_HEADS if model_type != "gpt2" else HEADS  # GPT-2 has no grouped-query attention
    assert model.method.encoder.kv_dim == kv_heads * HIDDEN // HEADS
    gemma = prefixed(tiny_decoder("gemma"), prefix_len=2)
    assert gemma.method.encoder.kv_dim == KV_HEADS * 16  # the config's head size, not hidden / heads


def test_no_mask_from_the_builder_cannot_crop_the_prefix(monkeypatch):
    """With sdpa and no padding, transformers' builder returns no mask and sdpa's is_causal shortcut would keep the
    first n of the P + n keys; even a builder that skips must not give that silently wrong answer."""
    backbone = tiny_decoder("llama", "sdpa")
    reference = copy.deepcopy(backbone)
    model = prefixed(backbone, prefix_len=4)
    ids, mask = decoder_batch(padded=False)
    expected = cached_reference(reference, model, ids, mask)
    seen = []

    def skipping(*args, config=None, **kwargs):  # transformers' sdpa builder, skip allowed
        built = injection.sdpa_mask(*args, config=config, **kwargs)
        seen.append(built)
        return built

    monkeypatch.setattr(injection.ALL_MASK_ATTENTION_FUNCTIONS, "_global_mapping",
                        {**injection.ALL_MASK_ATTENTION_FUNCTIONS._global_mapping, injection._PREFIX_IMPL: skipping})
    with torch.no_grad():
        ours = model.encode(ids, mask)
    assert seen and seen[0] is None  # the kernel really got no mask from the builder
    torch.testing.assert_close(ours, expected, atol=ATOL, rtol=0)


@pytest.mark.parametrize("model_type", ["mistral", "gemma3_text"])
def test_sliding_window_layers_see_the_whole_prefix(model_type):
    """Window 3: the tokens slide over the tokens only, every token keeps the whole prefix in view (a prefix in a
    cache would slide out of it)."""
    window, prefix_len = 3, 4
    layers = {"layer_types": ["sliding_attention", "full_attention"]} if model_type == "gemma3_text" else {}
    backbone = tiny_decoder(model_type, "eager", sliding_window=window, **layers)
    if layers:
        assert [m.sliding_window for m in injection.attention_modules(backbone)] == [window, None]
    reference = copy.deepcopy(backbone)
    model = prefixed(backbone, prefix_len=prefix_len)
    ids, mask = decoder_batch()
    n = ids.shape[1]
    q, k = torch.arange(n)[:, None], torch.arange(n)[None, :]
    causal = (k <= q) & mask.bool()[:, None, None, :]
    slid = causal & (k > q - window)

    def explicit(pattern):  # prefix columns always visible, then the token pattern; additive (eager)
        visible = torch.cat([torch.ones(len(ids), 1, n, prefix_len, dtype=torch.bool), pattern], -1)
        return torch.zeros(visible.shape).masked_fill(~visible, torch.finfo(torch.float32).min)

    attention = explicit(slid) if model_type == "mistral" else {"sliding_attention": explicit(slid),
                                                                "full_attention": explicit(causal)}
    expected = cached_reference(reference, model, ids, mask, attention)
    with torch.no_grad():
        ours = model.encode(ids, mask)
    real = mask.bool()
    torch.testing.assert_close(ours[real], expected[real], atol=ATOL, rtol=0)
    # transformers' own cache would let the prefix slide out of the window: a different answer
    cached = cached_reference(reference, model, ids, mask)
    assert (cached - ours)[real].abs().max() > 1e-3


# --------------------------------------------------------------------------- no prefix, gradients, padding
@pytest.mark.parametrize("model_type", DECODERS)
def test_empty_prefix_equals_the_base_model(model_type):
    backbone = tiny_decoder(model_type, "eager" if model_type in NO_SDPA else "sdpa")
    reference = copy.deepcopy(backbone)
    ids, mask = decoder_batch()
    model = prefixed(backbone, prefix_len=0)
    real = mask.bool()
    with torch.no_grad():
        expected = reference(input_ids=ids, attention_mask=mask).last_hidden_state
        torch.testing.assert_close(model.encode(ids, mask)[real], expected[real], atol=ATOL, rtol=0)
        # the injected base with an empty slot: as before
        got = model.backbone(input_ids=ids, attention_mask=mask).last_hidden_state
        torch.testing.assert_close(got[real], expected[real], atol=ATOL, rtol=0)


def _gradients(model_type: str, checkpointing: bool) -> dict[str, torch.Tensor]:
    backbone = tiny_decoder(model_type, "eager" if model_type in NO_SDPA else "sdpa")
    torch.manual_seed(1)
    model = prefixed(backbone, prefix_len=3).train()
    model.head.drop.p = 0.0
    if checkpointing:
        model.enable_gradient_checkpointing()
    ids, mask = decoder_batch()
    labels = torch.randint(0, 3, ids.shape, generator=torch.Generator().manual_seed(1)).masked_fill(mask == 0, -100)
    model(ids, mask, labels=labels)["loss"].backward()
    for name, parameter in model.backbone.named_parameters():
        assert parameter.grad is None and not parameter.requires_grad, name  # nothing reaches the frozen base
    return {name: p.grad for name, p in model.named_parameters() if p.requires_grad}


@pytest.mark.parametrize("model_type", DECODERS)
def test_prefix_gradients_nonzero_and_equal_with_checkpointing(model_type):
    plain, checkpointed = _gradients(model_type, False), _gradients(model_type, True)
    grad = plain["methods.shared.encoder.embedding.weight"]
    per_slot = grad.view(3, LAYERS, 2, -1).abs().sum(dim=(0, 3))  # every layer's key and value prefix
    assert (per_slot > 0).all(), per_slot
    assert set(plain) == set(checkpointed)
    for name, value in plain.items():
        torch.testing.assert_close(checkpointed[name], value, atol=1e-6, rtol=1e-5, msg=name)


@pytest.mark.parametrize("model_type", ["llama", "gemma3_text", "gpt2"])
def test_a_right_padded_row_equals_the_row_alone(model_type):
    model = prefixed(tiny_decoder(model_type), prefix_len=3)
    ids, mask = decoder_batch()
    with torch.no_grad():
        batch = model.encode(ids, mask)
        for row, length in ((1, 6), (2, 3)):
            alone = model.encode(ids[row:row + 1, :length], mask[row:row + 1, :length])
            torch.testing.assert_close(batch[row, :length], alone[0], atol=ATOL, rtol=0)


def test_last_pooling_picks_the_last_real_token():
    assert "last" in POOLING
    hidden = torch.arange(3 * 5 * 2, dtype=torch.float32).view(3, 5, 2)
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0], [1, 0, 0, 0, 0]])
    assert torch.equal(last_real(hidden, mask), hidden[torch.arange(3), torch.tensor([4, 2, 0])])
    assert torch.equal(last_real(hidden, None), hidden[:, -1])
    pooler = Pooler(2, 0.0, "last")
    assert torch.equal(pooler(hidden, mask), torch.tanh(pooler.dense(hidden[torch.arange(3), torch.tensor([4, 2, 0])])))


# --------------------------------------------------------------------------- heads, tasks in one forward
HEAD_CASES = {
    "token": (lambda: TokenClassificationHead(HIDDEN, 3), lambda ids, mask: torch.randint(0, 3, ids.shape)),
    "span": (lambda: SpanHead(HIDDEN), lambda ids, mask: torch.tensor([[0, 1], [2, 3], [1, 2]])),
    "sequence": (lambda: SequenceClassificationHead(HIDDEN, 2, pooling="last"),
                 lambda ids, mask: torch.tensor([0, 1, 1])),
    "regression": (lambda: RegressionHead(HIDDEN, pooling="last"), lambda ids, mask: torch.tensor([0.5, 1.0, 2.0])),
}


@pytest.mark.parametrize("case", sorted(HEAD_CASES))
@pytest.mark.parametrize("model_type", ["qwen2", "gpt2"])
def test_every_head_trains_on_a_decoder(model_type, case):
    build, labels_of = HEAD_CASES[case]
    model = prefixed(tiny_decoder(model_type), prefix_len=2, head=build()).train()
    ids, mask = decoder_batch()
    output = model(ids, mask, labels=labels_of(ids, mask))
    output["loss"].backward()
    assert torch.isfinite(output["loss"]) and model.method.encoder.embedding.weight.grad.abs().sum() > 0


def test_multiple_choice_on_a_decoder():
    model = prefixed(tiny_decoder("llama"), prefix_len=2, head=MultipleChoiceHead(HIDDEN, pooling="last")).train()
    ids, mask = decoder_batch(lengths=(5, 4, 3, 5))
    output = model(ids.view(2, 2, -1), mask.view(2, 2, -1), labels=torch.tensor([0, 1]))
    assert output["logits"].shape == (2, 2)
    output["loss"].backward()
    assert model.method.encoder.embedding.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("model_type", ["llama", "gemma3_text", "gpt2"])
def test_a_mixed_batch_of_two_decoder_tasks_equals_each_alone(model_type):
    """One base, two tasks (prefixes of different lengths, own heads), rows of both in one forward."""
    backbone = tiny_decoder(model_type)
    model = AdaptedModel(backbone, TokenClassificationHead(HIDDEN, 3), "prefix", PrefixConfig(prefix_len=2, dropout=0))
    model.add_method("other", "prefix", PrefixConfig(prefix_len=5, dropout=0.0))
    model.add_task("second", SequenceClassificationHead(HIDDEN, 2, pooling="last"), method="other")
    model.eval()
    ids, mask = decoder_batch(lengths=(9, 6, 3, 7))
    with torch.no_grad():
        mixed = model.segment_logits(ids, mask, None, [Segment("task", 2), Segment("second", 2)])
        first = model.segment_logits(ids[:2], mask[:2], None, [Segment("task", 2)])[0]
        second = model.segment_logits(ids[2:], mask[2:], None, [Segment("second", 2)])[0]
    real = mask[:2].bool()
    torch.testing.assert_close(mixed[0][real], first[real], atol=ATOL, rtol=0)
    torch.testing.assert_close(mixed[1], second, atol=ATOL, rtol=0)
    # the model's forward with task_index per row (one task per training batch)
    with torch.no_grad():
        by_index = model(ids[2:], mask[2:], task_index=torch.tensor([1, 1]))["logits"]
    torch.testing.assert_close(by_index, second, atol=ATOL, rtol=0)


# --------------------------------------------------------------------------- attention modes, kernels
@pytest.mark.parametrize("impl", ["sdpa", "eager"])
def test_bidirectional_attention_sees_later_tokens_and_never_padding(impl):
    backbone = tiny_decoder("llama", impl)
    set_attention(backbone, "bidirectional")
    assert attention_mode(backbone) == "bidirectional"
    model = prefixed(backbone, prefix_len=2)
    ids, mask = decoder_batch()
    changed = ids.clone()
    changed[0, 8] = (ids[0, 8] + 1 - 5) % (VOCAB - 5) + 5  # the last token of the full row
    padding = ids.clone()
    padding[2, 3:] = 7  # other ids on padded positions
    with torch.no_grad():
        before, after, repadded = model.encode(ids, mask), model.encode(changed, mask), model.encode(padding, mask)
    assert (after[0, 0] - before[0, 0]).abs().max() > 1e-4  # the first token sees the last one
    real = mask.bool()
    torch.testing.assert_close(repadded[real], before[real], atol=ATOL, rtol=0)
    causal = prefixed(tiny_decoder("llama", impl), prefix_len=2)
    with torch.no_grad():
        torch.testing.assert_close(causal.encode(changed, mask)[0, :8], causal.encode(ids, mask)[0, :8], atol=ATOL,
                                   rtol=0)


def test_causal_attention_is_refused_for_an_encoder():
    from conftest import tiny_backbone

    with pytest.raises(UnsupportedArchitecture, match="encoder"):
        set_attention(tiny_backbone("bert"), "causal")


@pytest.mark.parametrize("kernel", ["flash_attention_2", "flex_attention"])
def test_flash_and_flex_kernels_are_refused(kernel):
    backbone = tiny_decoder("llama")
    backbone.config._attn_implementation = kernel
    with pytest.raises(UnsupportedArchitecture, match=kernel):
        prefixed(backbone)


def test_no_cache_is_built():
    model = prefixed(tiny_decoder("llama"), prefix_len=2)
    assert model.backbone.config.use_cache is False
    ids, mask = decoder_batch()
    with torch.no_grad():
        out = model.backbone(input_ids=ids, attention_mask=mask)
    assert getattr(out, "cache", None) is None and getattr(out, "past_key_values", None) is None


# --------------------------------------------------------------------------- loading: tokenizer, pooling, folder
def write_decoder_tokenizer(folder: Path):
    """A tiny byte-level BPE (GPT-2 style, 256 bytes + merges + <s>, </s>; no pad token), saved in ``folder``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=["<s>", "</s>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    corpus = ["a dog runs in the park", "an animal runs outside", "the cat sleeps", "no dog is here"] * 4
    tokenizer.train_from_iterator(corpus, trainer)
    tokenizer.post_processor = processors.TemplateProcessing(single="<s> $A", pair="<s> $A $B",
                                                             special_tokens=[("<s>", 0)])
    wrapped = PreTrainedTokenizerFast(tokenizer_object=tokenizer, bos_token="<s>", eos_token="</s>")
    folder.mkdir(parents=True, exist_ok=True)
    wrapped.save_pretrained(folder)
    return wrapped


def save_tiny_decoder(folder: Path, model_type: str = "llama", seed: int = 0) -> Path:
    """A tiny decoder (vocabulary of the byte-level tokenizer) saved with ``save_pretrained``, plus its tokenizer."""
    tokenizer = write_decoder_tokenizer(folder)
    backbone = tiny_decoder(model_type, seed=seed, vocab_size=len(tokenizer), bos_token_id=tokenizer.bos_token_id,
                            eos_token_id=tokenizer.eos_token_id)
    backbone.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def decoder_dir(tmp_path_factory) -> Path:
    return save_tiny_decoder(tmp_path_factory.mktemp("tiny-llama"))


def test_loading_a_decoder_folder(decoder_dir):
    from models.backbone import load_backbone, load_tokenizer, sentence_pooling

    tokenizer = load_tokenizer(str(decoder_dir))
    assert tokenizer.pad_token == tokenizer.eos_token == "</s>" and tokenizer.padding_side == "right"
    assert len(tokenizer) == 300  # no new embedding
    assert sentence_pooling(str(decoder_dir)) == "last"  # what --pooling auto resolves to for a decoder
    backbone = load_backbone(str(decoder_dir), attention="bidirectional")
    assert backbone.config.model_type == "llama" and backbone.config.use_cache is False
    assert attention_mode(backbone) == "bidirectional"
    encoded = tokenizer(["a dog", "the cat sleeps outside"], padding=True, return_tensors="pt")
    assert encoded["attention_mask"][0, -1] == 0 and encoded["input_ids"][0, -1] == tokenizer.eos_token_id


def test_pad_token_is_only_added_when_missing():
    tokenizer = write_decoder_tokenizer(Path(__import__("tempfile").mkdtemp()))
    tokenizer.pad_token = "<s>"
    tokenizer.padding_side = "left"
    pad_like_a_decoder(tokenizer)
    assert tokenizer.pad_token == "<s>" and tokenizer.padding_side == "right"


def test_a_pad_token_past_the_embedding_is_replaced_before_it_pads(tmp_path):
    """Qwen2's tokenizer class brings its own pad token (``<|endoftext|>``); on a vocabulary that lacks it, loading adds
    it past the embedding's rows, and the first padded batch would index outside the embedding."""
    from models.backbone import load_backbone, load_tokenizer

    folder = save_tiny_decoder(tmp_path / "qwen2", "qwen2")
    tokenizer = load_tokenizer(str(folder))
    backbone = load_backbone(str(folder))
    rows = backbone.get_input_embeddings().num_embeddings
    assert tokenizer.pad_token_id < rows and tokenizer.pad_token == tokenizer.eos_token
    encoded = tokenizer(["a dog", "the cat sleeps outside"], padding=True, return_tensors="pt")
    assert int(encoded["input_ids"].max()) < rows
    backbone(input_ids=encoded["input_ids"], attention_mask=encoded["attention_mask"])  # no index error


def test_no_token_within_the_embedding_to_pad_with_is_one_line():
    tokenizer = write_decoder_tokenizer(Path(__import__("tempfile").mkdtemp()))
    with pytest.raises(ValueError, match="within the model.s 0 embedding rows"):
        pad_like_a_decoder(tokenizer, rows=0, where="model-folder")


def _write_rte(folder: Path, rows: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    pairs = [("a dog runs in the park", "an animal runs"), ("the cat sleeps", "no dog is here")]
    for name, count in (("train.jsonl", rows), ("val.jsonl", rows // 2)):
        lines = [json.dumps({"premise": pairs[i % 2][0], "hypothesis": pairs[i % 2][1], "idx": i,
                             "label": ("entailment", "not_entailment")[i % 2]}) for i in range(count)]
        (folder / name).write_text("\n".join(lines) + "\n")


def test_glue_cli_on_a_tiny_llama_folder(decoder_dir, tmp_path):
    from conftest import run_cli

    _write_rte(tmp_path / "rte", 16)
    out = tmp_path / "run"
    result = run_cli(["--task", "rte", "--model", decoder_dir, "--data-dir", tmp_path / "rte", "--output-dir", out,
                      "--prefix-len", "2", "--max-steps", "3", "--batch-size", "4", "--max-length", "32",
                      "--logging-steps", "100"], module="tasks.glue")
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["resolved"]["pooling"] == "last"

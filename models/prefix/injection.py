"""Give every self-attention layer of a Hugging Face encoder extra, trainable key/value rows.

Why not ``past_key_values`` (PEFT, the original P-tuning v2 code)?  Encoders treat a
past of length P as earlier tokens, so the real tokens get positions P..P+n-1 and inputs
are capped at max_positions - P.  Here the prefix only ever appears *inside* attention:
the tokens keep positions 0..n-1, the prefix has no position at all, and every real
token attends to it, while padding keys stay masked.

Two injection styles cover the supported families without copying any model class:

* ``interface``: models whose self-attention calls ``ALL_ATTENTION_FUNCTIONS`` (BERT,
  RoBERTa, XLM-R, ELECTRA, DistilBERT, ModernBERT, and the decoders: Llama, Mistral, Qwen2/3,
  Gemma 1/2/3, GLM/GLM-4, Phi/Phi-3, GPT-2).  We register one wrapper attention function (and
  the matching mask builder) that prepends the prefix to K/V and widens the mask, then calls
  the stock sdpa/eager kernel.
* ``deberta``: DeBERTa-v2/v3 computes disentangled attention itself, so we hook its
  key/value projections and mask, and give prefix columns zero relative-position bias
  (content-only scores: the prefix has no position).

Decoders go through the same ``interface`` wrapper; what differs is spelled out where it matters:

* the prefix is sized by the key/value heads (grouped-query attention has fewer of them than query
  heads) times the head size: the kernel repeats the prefix for each query group as it does the tokens';
* the prefix keys are free parameters, never rotated: RoPE rotates the tokens' keys before the attention
  function sees them, so the prefix gets no position, exactly as ChatGLM's past-key-values prefix;
* the causal mask is always materialised: with sdpa and no padding transformers passes no mask and
  sdpa's ``is_causal`` shortcut then crops the keys to the first n, so the prefix would silently take the
  place of the first tokens.  The mask builder never skips for a decoder, and the wrapper builds the
  causal mask itself should a kernel receive none;
* every token attends to the whole prefix, in sliding-window layers too: the window slides over the
  tokens only, the prefix columns are always visible (a cached prefix would fall out of the window);
* flash/flex kernels are refused (they take no widened mask).
"""
from __future__ import annotations

import contextlib
import functools
import sys
import threading
from dataclasses import dataclass
from typing import Iterator, Sequence

import torch
from torch import nn
from transformers import AttentionInterface
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, eager_mask, sdpa_mask

PrefixKV = Sequence[tuple[torch.Tensor, torch.Tensor]]  # per layer: (key, value), each (B, P, kv_dim)


@dataclass(frozen=True)
class ArchitectureSpec:
    attention_class: str  # the self-attention module to inject into (cross-attention is left alone)
    style: str  # "interface" or "deberta"
    decoder: bool = False  # causal self-attention: the mask is made explicit, the prefix sized by the KV heads


SUPPORTED_ARCHITECTURES: dict[str, ArchitectureSpec] = {
    "bert": ArchitectureSpec("BertSelfAttention", "interface"),
    "roberta": ArchitectureSpec("RobertaSelfAttention", "interface"),
    "xlm-roberta": ArchitectureSpec("XLMRobertaSelfAttention", "interface"),
    "electra": ArchitectureSpec("ElectraSelfAttention", "interface"),
    "distilbert": ArchitectureSpec("DistilBertSelfAttention", "interface"),
    "modernbert": ArchitectureSpec("ModernBertAttention", "interface"),
    "deberta-v2": ArchitectureSpec("DisentangledSelfAttention", "deberta"),
    # decoders (transformers 5.25's model types; "gemma3_text" is Gemma 3's text model, the bare AutoModel of it)
    "llama": ArchitectureSpec("LlamaAttention", "interface", decoder=True),
    "mistral": ArchitectureSpec("MistralAttention", "interface", decoder=True),
    "qwen2": ArchitectureSpec("Qwen2Attention", "interface", decoder=True),
    "qwen3": ArchitectureSpec("Qwen3Attention", "interface", decoder=True),
    "gemma": ArchitectureSpec("GemmaAttention", "interface", decoder=True),
    "gemma2": ArchitectureSpec("Gemma2Attention", "interface", decoder=True),
    "gemma3_text": ArchitectureSpec("Gemma3Attention", "interface", decoder=True),
    "glm": ArchitectureSpec("GlmAttention", "interface", decoder=True),
    "glm4": ArchitectureSpec("Glm4Attention", "interface", decoder=True),
    "phi": ArchitectureSpec("PhiAttention", "interface", decoder=True),
    "phi3": ArchitectureSpec("Phi3Attention", "interface", decoder=True),
    "gpt2": ArchitectureSpec("GPT2Attention", "interface", decoder=True),
}


class UnsupportedArchitecture(ValueError):
    pass


def is_decoder(config) -> bool:
    """Whether ``config`` is one of the supported decoders (causal self-attention)."""
    spec = SUPPORTED_ARCHITECTURES.get(config.model_type)
    return spec is not None and spec.decoder


def architecture_spec(config) -> ArchitectureSpec:
    spec = SUPPORTED_ARCHITECTURES.get(config.model_type)
    if spec is None:
        raise UnsupportedArchitecture(
            f"model_type '{config.model_type}' is not supported for prefix injection; "
            f"supported: {', '.join(sorted(SUPPORTED_ARCHITECTURES))}"
        )
    return spec


class PrefixSlot:
    """Per-thread holder of the prefix K/V for the forward pass in progress.

    Thread-local so that ``nn.DataParallel`` replicas (one thread each) never see each
    other's prefixes.  Attention modules only hold a reference to this slot and their
    layer index; they never own parameters of ours.
    """

    def __init__(self) -> None:
        self._local = threading.local()

    def set(self, kv: PrefixKV | None, mask: torch.Tensor | None = None) -> None:
        self._local.kv, self._local.mask = kv, mask

    def get(self, layer: int) -> tuple[torch.Tensor, torch.Tensor] | None:
        kv = getattr(self._local, "kv", None)
        return None if kv is None else kv[layer]

    def key_mask(self) -> torch.Tensor | None:
        """(B, P) bool: which prefix rows each input attends to (rows of shorter prefixes are padding).

        None: every row sees every prefix row (one task per batch).
        """
        return getattr(self._local, "mask", None)

    @contextlib.contextmanager
    def holding(self, kv: PrefixKV | None, mask: torch.Tensor | None = None) -> Iterator[None]:
        """Hold ``kv`` (and its key ``mask``) for the duration of a ``with`` block, then restore what was there."""
        previous = getattr(self._local, "kv", None), getattr(self._local, "mask", None)
        self.set(kv, mask)
        try:
            yield
        finally:
            self.set(*previous)

    @contextlib.contextmanager
    def recording(self) -> Iterator[dict[tuple[int, int], torch.Tensor]]:
        """Collect every layer's own keys and values of the forward passes run inside the block.

        Yields {(layer, 0 for key | 1 for value): (B, n, kv_dim)} (the tokens' K/V after the layer's
        projection, before any prefix is added), used to initialise a prefix from real text.
        """
        self._local.recorded = {}
        try:
            yield self._local.recorded
        finally:
            self._local.recorded = None

    def record(self, layer: int, which: int, states: torch.Tensor) -> None:
        recorded = getattr(self._local, "recorded", None)
        if recorded is not None:
            recorded[(layer, which)] = states.detach()

    def checkpoint_contexts(self) -> tuple[contextlib.AbstractContextManager, contextlib.AbstractContextManager]:
        """``context_fn`` for ``torch.utils.checkpoint`` (non-reentrant): the recomputation of a
        checkpointed layer during backward sees the prefix its forward saw.

        The slot is emptied when the forward returns, and backward may run in another thread (the
        autograd engine's, on GPUs), so without this the recomputed layer would attend without the
        prefix and the gradients would be wrong.
        """
        return contextlib.nullcontext(), self.holding(getattr(self._local, "kv", None), self.key_mask())

    # a copied or unpickled model gets its own, empty slot (thread-locals cannot be copied)
    def __getstate__(self) -> dict:
        return {}

    def __setstate__(self, _state: dict) -> None:
        self._local = threading.local()


# --------------------------------------------------------------------------- interface style
_PREFIX_IMPL = "ptv2_prefix"  # name under which our wrapper is registered


def _widen_mask(mask: torch.Tensor | None, prefix_len: int, prefix_mask: torch.Tensor | None = None,
                queries: int | None = None, keys: int | None = None) -> torch.Tensor | None:
    """Add P key columns in front of a (B, 1|H, Q, K) mask: all visible, or where ``prefix_mask`` (B, P) says.

    With no mask (nothing masked) and a ``prefix_mask``, a boolean (B, 1, queries, P + keys) mask is built.
    """
    if mask is None:
        if prefix_mask is None:
            return None
        mask = torch.ones((prefix_mask.shape[0], 1, queries, keys), dtype=torch.bool, device=prefix_mask.device)
    if prefix_mask is None:
        visible = torch.ones((*mask.shape[:-1], prefix_len), dtype=torch.bool, device=mask.device)
    else:
        if mask.shape[0] != prefix_mask.shape[0]:  # a mask broadcast over the batch: one row per input now
            mask = mask.expand(prefix_mask.shape[0], *mask.shape[1:])
        visible = prefix_mask.to(mask.device)[:, None, None, :].expand(*mask.shape[:-1], prefix_len)
    if mask.dtype != torch.bool:  # additive float mask: 0 means visible
        visible = torch.zeros(visible.shape, dtype=mask.dtype, device=mask.device).masked_fill(
            ~visible, torch.finfo(mask.dtype).min)
    return torch.cat([visible, mask], dim=-1)


def _split_heads(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """(B, P, heads*d) -> (B, heads, P, d), the layout the model uses for its own keys."""
    batch, heads, _, dim = like.shape
    return x.view(batch, -1, heads, dim).transpose(1, 2).to(like.dtype)


def _merge_heads(x: torch.Tensor) -> torch.Tensor:
    """(B, heads, n, d) -> (B, n, heads*d), the layout of a prefix row."""
    return x.transpose(1, 2).reshape(x.shape[0], x.shape[2], -1)


def _prefix_attention(module, query, key, value, attention_mask, **kwargs):
    slot: PrefixSlot | None = getattr(module, "_ptv2_slot", None)
    if slot is not None:
        slot.record(module._ptv2_layer, 0, _merge_heads(key))
        slot.record(module._ptv2_layer, 1, _merge_heads(value))
    prefix = None if slot is None else slot.get(module._ptv2_layer)
    if prefix is not None and prefix[0].shape[1] > 0:
        pk, pv = prefix
        tokens = key.shape[2]
        if attention_mask is None and _causal(module) and query.shape[2] > 1:
            # no mask means "sdpa's is_causal": on P + n keys it would keep only the first n (the prefix in place
            # of the first tokens), so the causal pattern is spelled out before the prefix columns are added
            attention_mask = _causal_mask(query.shape[2], tokens, key.device)
        key = torch.cat([_split_heads(pk, key), key], dim=2)
        value = torch.cat([_split_heads(pv, value), value], dim=2)
        attention_mask = _widen_mask(attention_mask, pk.shape[1], slot.key_mask(), query.shape[2], tokens)
    base = getattr(module, "_ptv2_base", "sdpa")
    if base == "eager":
        return _eager_kernel(module)(module, query, key, value, attention_mask, **kwargs)
    return sdpa_attention_forward(module, query, key, value, attention_mask, **kwargs)


def _causal(module) -> bool:
    return bool(getattr(module, "is_causal", False)) and not getattr(module, "is_cross_attention", False)


def _causal_mask(queries: int, keys: int, device: torch.device) -> torch.Tensor:
    """(1, 1, queries, keys) bool: query i sees keys 0..i (no cache: queries and keys are the same tokens)."""
    rows = torch.arange(queries, device=device)[:, None]
    return (rows >= torch.arange(keys, device=device)[None, :])[None, None]


def _eager_kernel(module):
    return sys.modules[type(module).__module__].eager_attention_forward


def _prefix_mask(*args, config=None, **kwargs):
    base = getattr(config, "_ptv2_base", "sdpa")
    if config is not None and is_decoder(config):
        # never None for a causal mask: sdpa's is_causal shortcut would crop the prefixed keys (module docstring)
        kwargs["allow_is_causal_skip"] = False
    return (eager_mask if base == "eager" else sdpa_mask)(*args, config=config, **kwargs)


AttentionInterface.register(_PREFIX_IMPL, _prefix_attention)
ALL_MASK_ATTENTION_FUNCTIONS.register(_PREFIX_IMPL, _prefix_mask)


def _inject_interface(model: nn.Module, modules: list[nn.Module]) -> None:
    config = model.config
    base = config._attn_implementation or "sdpa"
    if base not in ("sdpa", "eager", _PREFIX_IMPL):  # flash/flex kernels take no widened (P + n) mask
        raise UnsupportedArchitecture(
            f"attention implementation '{base}' is not supported with prefixes; load the model with "
            "attn_implementation='sdpa' or 'eager'"
        )
    if base != _PREFIX_IMPL:
        config._ptv2_base = base
        config._attn_implementation = _PREFIX_IMPL
    for module in modules:
        module._ptv2_base = config._ptv2_base


# --------------------------------------------------------------------------- DeBERTa style
# Set while DeBERTa computes its relative-position bias: with ``share_att_key`` (DeBERTa-v3)
# that code runs key_proj over the relative-position embeddings, which must not get a prefix.
_IN_DEBERTA_BIAS = threading.local()


def _inject_deberta(modules: list[nn.Module]) -> None:
    # Hooks are module-level functions that find the slot through module attributes (never
    # closures), so a deep copy or pickle of the model reads its own slot, not the original's.
    for module in modules:
        for which, linear in enumerate((module.key_proj, module.value_proj)):
            linear._ptv2_slot, linear._ptv2_layer, linear._ptv2_which = module._ptv2_slot, module._ptv2_layer, which
            linear.register_forward_hook(_deberta_projection_hook)
        module.register_forward_pre_hook(_deberta_mask_hook, with_kwargs=True)
        _wrap_deberta_bias(type(module))


def _deberta_projection_hook(linear: nn.Module, _inputs, output: torch.Tensor) -> torch.Tensor:
    if getattr(_IN_DEBERTA_BIAS, "active", False):
        return output
    linear._ptv2_slot.record(linear._ptv2_layer, linear._ptv2_which, output)
    prefix = linear._ptv2_slot.get(linear._ptv2_layer)
    if prefix is None:
        return output
    return torch.cat([prefix[linear._ptv2_which].to(output.dtype), output], dim=1)


def _deberta_mask_hook(module: nn.Module, args, kwargs):
    prefix = module._ptv2_slot.get(module._ptv2_layer)
    if prefix is None:
        return None
    rows, key_mask = prefix[0].shape[1], module._ptv2_slot.key_mask()
    if "attention_mask" in kwargs:
        kwargs["attention_mask"] = _widen_mask(kwargs["attention_mask"].bool(), rows, key_mask)
    else:
        args = (args[0], _widen_mask(args[1].bool(), rows, key_mask), *args[2:])
    return args, kwargs


def _wrap_deberta_bias(cls: type) -> None:
    """Wrap ``cls.disentangled_attention_bias`` once, at class level (picklable, copyable).

    Modules without a prefix slot (any DeBERTa not injected) take the original path unchanged.
    """
    original = cls.disentangled_attention_bias
    if getattr(original, "_ptv2_wrapped", False):
        return

    @functools.wraps(original)
    def bias(self, query_layer, key_layer, relative_pos, rel_embeddings, scale_factor):
        slot = getattr(self, "_ptv2_slot", None)
        prefix = None if slot is None else slot.get(self._ptv2_layer)
        plen = 0 if prefix is None else prefix[0].shape[1]
        _IN_DEBERTA_BIAS.active = True  # key_proj over position embeddings: neither prefixed nor recorded
        try:
            rel = original(self, query_layer, key_layer[:, plen:], relative_pos, rel_embeddings, scale_factor)
        finally:
            _IN_DEBERTA_BIAS.active = False
        if not plen or not torch.is_tensor(rel):
            return rel
        return nn.functional.pad(rel, (plen, 0))  # prefix columns: no position bias

    bias._ptv2_wrapped = True
    cls.disentangled_attention_bias = bias


# --------------------------------------------------------------------------- entry point
def attention_modules(model: nn.Module) -> list[nn.Module]:
    """The self-attention modules that receive a prefix, in layer order."""
    spec = architecture_spec(model.config)
    found = [m for m in model.modules() if type(m).__name__ == spec.attention_class
             and not getattr(m, "is_cross_attention", False)]  # GPT-2 built with cross-attention: self only
    if not found:
        raise UnsupportedArchitecture(f"no {spec.attention_class} module found in {type(model).__name__}")
    return found


def kv_width(model: nn.Module) -> int:
    """Width of one prefix key (or value) row of ``model``: the key/value heads times the head size.

    Encoders: all heads (``attention_head_size`` where the config has one).  Decoders: the key/value heads
    (grouped-query attention: fewer than the query heads) times the head size of the attention module, which
    need not be hidden_size / heads (Gemma, GLM)."""
    config = model.config
    heads = config.num_attention_heads
    if not architecture_spec(config).decoder:
        return getattr(config, "attention_head_size", config.hidden_size // heads) * heads
    kv_heads = getattr(config, "num_key_value_heads", None) or heads
    return kv_heads * attention_modules(model)[0].head_dim


def inject_prefix(model: nn.Module) -> PrefixSlot:
    """Make ``model`` read per-layer prefix K/V from the returned slot on every forward.

    The model is otherwise unchanged: with an empty slot it computes exactly what it did.  Injecting twice
    returns the first slot: every prefix method on one encoder (the tasks of a server) fills the same slot.
    """
    spec = architecture_spec(model.config)
    modules = attention_modules(model)
    existing = getattr(modules[0], "_ptv2_slot", None)
    if existing is not None:
        return existing
    slot = PrefixSlot()
    for index, module in enumerate(modules):
        module._ptv2_slot, module._ptv2_layer = slot, index
    if spec.style == "interface":
        _inject_interface(model, modules)
    else:
        _inject_deberta(modules)
    return slot

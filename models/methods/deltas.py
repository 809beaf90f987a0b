"""Per-row additive deltas on a frozen encoder's module outputs: the mechanism behind ``prefix-bias``,
``prefix-lora`` and ``prefix-adapter`` (``prefix_deltas.py``).

Forward hooks on the target modules (linear layers, LayerNorms) add each row's task's delta to the module's
output; the tasks of a batch come as *segments* (consecutive rows of one task, in row order), so rows of
different tasks share one forward, as LoRAX's adapter segments or Punica/S-LoRA's segmented matrix products do
(here in plain torch: one small product per segment).  Like the prefix slot (``models/prefix/injection.py``) the
slot is per thread and the hooks are module-level functions that find it through module attributes, so a copied
model reads its own.  With an empty slot the encoder computes exactly what it did.

A delta sits at a *site*: the module whose output it adds to, and the module whose input it reads (the same module
for a delta on a projection; the first feed-forward projection for an adapter beside the whole feed-forward block,
whose input is the block's).  A module read by another's delta keeps its input in the slot until that delta has run.
The slot's segments can be held again while a checkpointed layer is recomputed (``checkpoint_contexts``), so
gradient checkpointing gives the gradients of the stored-activation forward.
"""
from __future__ import annotations

import contextlib
import re
import threading
from dataclasses import dataclass
from typing import Iterator, Protocol

import torch
from torch import nn


class DeltaSource(Protocol):
    """What a segment's method provides: the additive delta of one site for its rows (None: this method has no delta
    there; the encoder is shared, so another method may have hooked it).  ``inputs``: what the site reads."""

    def delta(self, key: str, inputs: torch.Tensor, output: torch.Tensor) -> torch.Tensor | None: ...


@dataclass(frozen=True)
class Site:
    """A delta's place: ``key`` (its name in a method's parameter dicts), the module whose output it changes
    (``adds_to``) and the module whose input it reads (``reads``; ``adds_to`` itself unless given)."""

    key: str
    adds_to: str
    reads: str | None = None


class DeltaSlot:
    """Per-thread holder of the segments of the forward pass in progress: [(source, rows)] in row order, and the
    inputs the read modules have seen in it."""

    def __init__(self) -> None:
        self._local = threading.local()

    def get(self) -> list[tuple[DeltaSource, int]] | None:
        return getattr(self._local, "segments", None)

    @contextlib.contextmanager
    def holding(self, segments: list[tuple[DeltaSource, int]] | None) -> Iterator[None]:
        previous = self.get(), getattr(self._local, "inputs", None)
        self._local.segments, self._local.inputs = segments, {}
        try:
            yield
        finally:
            self._local.segments, self._local.inputs = previous

    def keep_input(self, module: str, inputs: torch.Tensor) -> None:
        self._local.inputs[module] = inputs

    def take_input(self, module: str) -> torch.Tensor:
        """The input ``module`` had in this forward, no longer kept (one delta reads it, once per forward)."""
        inputs = getattr(self._local, "inputs", None) or {}
        if module not in inputs:
            raise RuntimeError(f"a per-task delta reads the input of {module}, which has not run in this forward")
        return inputs.pop(module)

    def checkpoint_contexts(self) -> tuple[contextlib.AbstractContextManager, contextlib.AbstractContextManager]:
        """``context_fn`` for ``torch.utils.checkpoint`` (non-reentrant): a checkpointed layer recomputed during
        backward adds the deltas of the segments its forward had."""
        return contextlib.nullcontext(), self.holding(self.get())

    def __getstate__(self) -> dict:  # a copied or unpickled model gets its own, empty slot
        return {}

    def __setstate__(self, _state: dict) -> None:
        self._local = threading.local()


def module_key(name: str) -> str:
    """A target's key in a method's parameter dicts (module names hold dots, parameter names may not)."""
    return name.replace(".", "__")


def inject_deltas(backbone: nn.Module, targets: list[str | Site]) -> DeltaSlot:
    """Hook the sites ``targets`` of ``backbone`` (a module name: a delta on that module's output from its own
    input); returns the encoder's one delta slot (injecting twice hooks each module once and returns the same slot)."""
    slot = getattr(backbone, "_ptv2_delta_slot", None)
    if slot is None:
        slot = DeltaSlot()
        object.__setattr__(backbone, "_ptv2_delta_slot", slot)
    modules = dict(backbone.named_modules())
    for target in targets:
        site = target if isinstance(target, Site) else Site(module_key(target), target)
        module = modules[site.adds_to]
        if getattr(module, "_ptv2_delta_sites", None) is None:
            module._ptv2_delta_sites = []
            module._ptv2_delta_slot = slot
            module.register_forward_hook(_delta_hook, prepend=True)  # before a prefix hook (DeBERTa) widens it
        reads = None if site.reads in (None, site.adds_to) else site.reads
        if (site.key, reads) not in module._ptv2_delta_sites:
            module._ptv2_delta_sites.append((site.key, reads))
        if reads is not None and getattr(modules[reads], "_ptv2_read_as", None) is None:
            modules[reads]._ptv2_read_as = reads
            modules[reads]._ptv2_delta_slot = slot
            modules[reads].register_forward_pre_hook(_keep_input_hook)
    return slot


def _keep_input_hook(module: nn.Module, args: tuple) -> None:
    slot = module._ptv2_delta_slot
    if slot.get() and args and torch.is_tensor(args[0]):
        slot.keep_input(module._ptv2_read_as, args[0])


def _delta_hook(module: nn.Module, inputs: tuple, output: torch.Tensor) -> torch.Tensor:
    slot = module._ptv2_delta_slot
    segments = slot.get()
    if not segments or not torch.is_tensor(output):
        return output
    adapted = output
    for key, reads in module._ptv2_delta_sites:
        delta = _segment_delta(segments, key, inputs[0] if reads is None else slot.take_input(reads), output)
        if delta is not None:
            adapted = adapted + delta
    return adapted


def _segment_delta(segments: list[tuple[DeltaSource, int]], key: str, x: torch.Tensor,
                   output: torch.Tensor) -> torch.Tensor | None:
    """Each segment's delta of one site for its rows, in row order (None: no segment has one there)."""
    if len(segments) == 1:
        delta = segments[0][0].delta(key, x, output)
        return None if delta is None else delta.to(output.dtype)
    pieces, start, any_delta = [], 0, False
    for source, rows in segments:
        part = slice(start, start + rows)
        delta = source.delta(key, x[part], output[part])
        any_delta |= delta is not None
        pieces.append(torch.zeros_like(output[part]) if delta is None
                      else delta.to(output.dtype).expand_as(output[part]))
        start += rows
    return torch.cat(pieces) if any_delta else None


def bias_targets(backbone: nn.Module) -> list[str]:
    """Every module of the encoder whose output has a bias term: linear layers with a bias (GPT-2's ``Conv1D`` too),
    and LayerNorms; in decoders also the RMSNorms (a bias delta on their output: Llama-style decoders have no bias)."""
    return [name for name, module in backbone.named_modules()
            if name and not name.startswith("pooler")
            and (((isinstance(module, nn.Linear) or type(module).__name__ == "Conv1D") and module.bias is not None)
                 or isinstance(module, nn.LayerNorm) or type(module).__name__.endswith("RMSNorm"))]


# the attention value and output projections, by model_type (name suffixes)
VALUE_OUTPUT = {
    "bert": ("attention.self.value", "attention.output.dense"),
    "roberta": ("attention.self.value", "attention.output.dense"),
    "xlm-roberta": ("attention.self.value", "attention.output.dense"),
    "electra": ("attention.self.value", "attention.output.dense"),
    "distilbert": ("attention.v_lin", "attention.out_lin"),
    "deberta-v2": ("attention.self.value_proj", "attention.output.dense"),
    "modernbert": ("attn.Wo",),  # one fused query/key/value projection: only the output is adapted alone
    **{model_type: ("self_attn.v_proj", "self_attn.o_proj") for model_type in (
        "llama", "mistral", "qwen2", "qwen3", "gemma", "gemma2", "gemma3_text", "glm", "glm4")},
    "phi": ("self_attn.v_proj", "self_attn.dense"),
    "phi3": ("self_attn.o_proj",),  # fused query/key/value, as ModernBERT
}


def value_output_targets(backbone: nn.Module) -> list[str]:
    suffixes = VALUE_OUTPUT.get(backbone.config.model_type)
    if suffixes is None:
        raise ValueError(f"no value/output projections known for model_type '{backbone.config.model_type}'")
    return [name for name, module in backbone.named_modules()
            if isinstance(module, nn.Linear) and name.endswith(suffixes)]


# the feed-forward block's projections by model_type (name suffixes after the layer's index): its input projections
# (every one that reads the block's input), then its output projection.  BERT-style layers call theirs
# ``intermediate.dense`` and ``output.dense`` (not ``attention.output.dense``: the index must come right before)
_BERT_FFN = ("intermediate.dense", "output.dense")
FEED_FORWARD = {
    **{model_type: _BERT_FFN for model_type in ("bert", "roberta", "xlm-roberta", "electra", "deberta-v2")},
    "distilbert": ("ffn.lin1", "ffn.lin2"),
    "modernbert": ("mlp.Wi", "mlp.Wo"),  # Wi: the gate and the input in one projection
    **{model_type: ("mlp.gate_proj", "mlp.up_proj", "mlp.down_proj") for model_type in (
        "llama", "mistral", "qwen2", "qwen3", "gemma", "gemma2", "gemma3_text")},
    **{model_type: ("mlp.gate_up_proj", "mlp.down_proj") for model_type in ("glm", "glm4", "phi3")},
    "phi": ("mlp.fc1", "mlp.fc2"),
    "gpt2": ("mlp.c_fc", "mlp.c_proj"),  # transformers' Conv1D
}


def is_linear(module: nn.Module) -> bool:
    return isinstance(module, nn.Linear) or type(module).__name__ == "Conv1D"


def linear_shape(module: nn.Module) -> tuple[int, int]:
    """(in, out) features of a linear layer (GPT-2's ``Conv1D`` stores its weight as (in, out))."""
    if isinstance(module, nn.Linear):
        return module.in_features, module.out_features
    return tuple(module.weight.shape)


def _feed_forward_suffixes(backbone: nn.Module) -> tuple[str, ...]:
    suffixes = FEED_FORWARD.get(backbone.config.model_type)
    if suffixes is None:
        raise ValueError(f"no feed-forward projections known for model_type '{backbone.config.model_type}'")
    return suffixes


def feed_forward_targets(backbone: nn.Module) -> list[str]:
    """Every feed-forward projection of every layer, in module order."""
    pattern = re.compile(r"(?:^|\.)\d+\.(?:" + "|".join(map(re.escape, _feed_forward_suffixes(backbone))) + r")$")
    return [name for name, module in backbone.named_modules() if is_linear(module) and pattern.search(name)]


def feed_forward_blocks(backbone: nn.Module) -> list[Site]:
    """One site per layer beside its whole feed-forward block: it reads the block's input (the input of its first
    projection) and adds to the block's output (its output projection's, before any residual or norm)."""
    suffixes = _feed_forward_suffixes(backbone)
    names = feed_forward_targets(backbone)
    layers = [name[: -len(suffixes[-1]) - 1] for name in names if name.endswith("." + suffixes[-1])]
    sites = [Site(module_key(f"{layer}.ffn"), f"{layer}.{suffixes[-1]}", f"{layer}.{suffixes[0]}") for layer in layers]
    if not sites or any(site.reads not in names for site in sites):
        raise ValueError(f"no feed-forward blocks found in {type(backbone).__name__}")
    return sites

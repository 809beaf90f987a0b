"""Per-row additive deltas on a frozen encoder's module outputs: the mechanism behind ``prefix-bias`` and
``prefix-lora`` (``prefix_deltas.py``).

Forward hooks on the target modules (linear layers, LayerNorms) add each row's task's delta to the module's
output; the tasks of a batch come as *segments* (consecutive rows of one task, in row order), so rows of
different tasks share one forward, as LoRAX's adapter segments or Punica/S-LoRA's segmented matrix products do
(here in plain torch: one small product per segment).  Like the prefix slot (``models/prefix/injection.py``) the
slot is per thread and the hooks are module-level functions that find it through module attributes, so a copied
model reads its own.  With an empty slot the encoder computes exactly what it did.
"""
from __future__ import annotations

import contextlib
import threading
from typing import Iterator, Protocol

import torch
from torch import nn


class DeltaSource(Protocol):
    """What a segment's method provides: the additive delta of one target module for its rows (None: this method
    has no delta on that module; the encoder is shared, so another method may have hooked it)."""

    def delta(self, key: str, inputs: torch.Tensor, output: torch.Tensor) -> torch.Tensor | None: ...


class DeltaSlot:
    """Per-thread holder of the segments of the forward pass in progress: [(source, rows)] in row order."""

    def __init__(self) -> None:
        self._local = threading.local()

    def get(self) -> list[tuple[DeltaSource, int]] | None:
        return getattr(self._local, "segments", None)

    @contextlib.contextmanager
    def holding(self, segments: list[tuple[DeltaSource, int]]) -> Iterator[None]:
        previous = self.get()
        self._local.segments = segments
        try:
            yield
        finally:
            self._local.segments = previous

    def __getstate__(self) -> dict:  # a copied or unpickled model gets its own, empty slot
        return {}

    def __setstate__(self, _state: dict) -> None:
        self._local = threading.local()


def module_key(name: str) -> str:
    """A target's key in a method's parameter dicts (module names hold dots, parameter names may not)."""
    return name.replace(".", "__")


def inject_deltas(backbone: nn.Module, targets: list[str]) -> DeltaSlot:
    """Hook the modules of ``backbone`` named ``targets``; returns the encoder's one delta slot (injecting twice
    hooks each module once and returns the same slot)."""
    slot = getattr(backbone, "_ptv2_delta_slot", None)
    if slot is None:
        slot = DeltaSlot()
        object.__setattr__(backbone, "_ptv2_delta_slot", slot)
    modules = dict(backbone.named_modules())
    for name in targets:
        module = modules[name]
        if getattr(module, "_ptv2_delta_key", None) is None:
            module._ptv2_delta_key = module_key(name)
            module._ptv2_delta_slot = slot
            module.register_forward_hook(_delta_hook, prepend=True)  # before a prefix hook (DeBERTa) widens it
    return slot


def _delta_hook(module: nn.Module, inputs: tuple, output: torch.Tensor) -> torch.Tensor:
    segments = module._ptv2_delta_slot.get()
    if not segments or not torch.is_tensor(output):
        return output
    key, x = module._ptv2_delta_key, inputs[0]
    if len(segments) == 1:
        delta = segments[0][0].delta(key, x, output)
        return output if delta is None else output + delta.to(output.dtype)
    pieces, start, any_delta = [], 0, False
    for source, rows in segments:
        part = slice(start, start + rows)
        delta = source.delta(key, x[part], output[part])
        any_delta |= delta is not None
        pieces.append(torch.zeros_like(output[part]) if delta is None
                      else delta.to(output.dtype).expand_as(output[part]))
        start += rows
    return output + torch.cat(pieces) if any_delta else output


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

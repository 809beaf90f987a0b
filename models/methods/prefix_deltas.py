"""Methods beyond the paper that keep what makes P-tuning v2 worth having (one frozen encoder shared by every task, a
small per-task artifact, rows of different tasks in one forward): the deep prefix plus per-task additive deltas
inside the encoder (``deltas.py``).

* ``prefix-bias``: a delta on every bias of the encoder (linear layers and LayerNorms), zero at the start:
  BitFit's capacity without touching the shared encoder's weights;
* ``prefix-lora``: low-rank deltas ``scale * B A x`` on the attention value and output projections, the feed-forward
  projections, or both (``delta_targets``); ``A`` random, ``B`` zero at the start (the encoder as it is), ``scale``
  1 or rsLoRA's ``2 / sqrt(rank)`` (``delta_scaling``; ``configs.delta_scale``);
* ``prefix-adapter``: He et al. 2022's MAM adapter, the prefix plus a scaled parallel adapter beside every
  feed-forward block, ``s * up(relu(down(x)))`` from the block's input added to its output; ``up`` zero at the start.
"""
from __future__ import annotations

import contextlib
import math

import torch
from torch import nn
from torch.nn import functional as F
from transformers.modeling_outputs import BaseModelOutput

from .configs import PrefixAdapterConfig, PrefixBiasConfig, PrefixLoraConfig, delta_scale
from .deltas import (bias_targets, feed_forward_blocks, feed_forward_targets, inject_deltas, linear_shape, module_key,
                     value_output_targets)
from .prefix import DeepPrefix


class _PrefixWithDeltas(DeepPrefix):
    """The deep prefix, and this task's deltas held for the rows it adapts while the encoder runs."""

    targets: list[str]
    delta_parameters: tuple[str, ...] = ()  # name prefixes of the deltas, which train at ``delta_lr``

    def _hook(self, backbone: nn.Module, targets: list) -> None:
        self.delta_slot = inject_deltas(backbone, targets)

    def encode(self, backbone: nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor,
               token_type_ids: torch.Tensor | None = None, all_layers: bool = False) -> BaseModelOutput:
        with self.delta_slot.holding([(self, input_ids.shape[0])]):
            return super().encode(backbone, input_ids, attention_mask, token_type_ids, all_layers)

    @classmethod
    def encode_rows(cls, backbone: nn.Module, parts: list, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                    token_type_ids: torch.Tensor | None = None, all_layers: bool = False) -> BaseModelOutput:
        with parts[0][0].delta_slot.holding(list(parts)):
            return super().encode_rows(backbone, parts, input_ids, attention_mask, token_type_ids, all_layers)

    def own_rates(self) -> dict[str, float]:
        return {name: self.config.delta_lr for name in self.delta_parameters}

    def checkpointing_kwargs(self) -> dict:
        """A recomputed layer sees the prefix and the segments of deltas its forward saw (both slots)."""
        prefix_slot, delta_slot = self.slot, self.delta_slot

        def contexts():
            (prefix_forward, prefix_recompute), (delta_forward, delta_recompute) = (
                prefix_slot.checkpoint_contexts(), delta_slot.checkpoint_contexts())
            return _together(prefix_forward, delta_forward), _together(prefix_recompute, delta_recompute)
        return {"context_fn": contexts}


class PrefixBias(_PrefixWithDeltas):
    name = "prefix-bias"
    delta_parameters = ("biases.",)

    def __init__(self, backbone: nn.Module, config: PrefixBiasConfig) -> None:
        super().__init__(backbone, config)
        modules = dict(backbone.named_modules())
        targets = bias_targets(backbone)
        self.biases = nn.ParameterDict({module_key(name): nn.Parameter(torch.zeros(_width(modules[name])))
                                        for name in targets})
        self._hook(backbone, targets)

    def delta(self, key: str, inputs: torch.Tensor, output: torch.Tensor) -> torch.Tensor | None:
        return self.biases[key] if key in self.biases else None


class PrefixLora(_PrefixWithDeltas):
    name = "prefix-lora"
    delta_parameters = ("down.", "up.")

    def __init__(self, backbone: nn.Module, config: PrefixLoraConfig) -> None:
        super().__init__(backbone, config)
        modules = dict(backbone.named_modules())
        targets = lora_targets(backbone, config.delta_targets)
        rank = config.delta_rank
        self.scale = delta_scale(config.delta_scaling, rank)
        self.down = nn.ParameterDict()
        self.up = nn.ParameterDict()
        for name in targets:
            width_in, width_out = linear_shape(modules[name])
            down = torch.empty(rank, width_in)
            nn.init.kaiming_uniform_(down, a=math.sqrt(5))  # LoRA's A; B starts at zero: the encoder as it is
            self.down[module_key(name)] = nn.Parameter(down)
            self.up[module_key(name)] = nn.Parameter(torch.zeros(width_out, rank))
        self._hook(backbone, targets)

    def delta(self, key: str, inputs: torch.Tensor, output: torch.Tensor) -> torch.Tensor | None:
        if key not in self.down:  # a module that only another method on this encoder adapts (the bias deltas')
            return None
        down, up = self.down[key], self.up[key]
        delta = (inputs.to(down.dtype) @ down.T) @ up.T
        return delta if self.scale == 1.0 else self.scale * delta


def lora_targets(backbone: nn.Module, which: str) -> list[str]:
    """The projections ``prefix-lora`` adapts: ``attention`` (value and output), ``ffn`` (feed-forward) or ``all``."""
    names = []
    if which in ("attention", "all"):
        names += value_output_targets(backbone)
    if which in ("ffn", "all"):
        names += feed_forward_targets(backbone)
    order = {name: index for index, (name, _) in enumerate(backbone.named_modules())}
    return sorted(names, key=order.__getitem__)


class PrefixAdapter(_PrefixWithDeltas):
    name = "prefix-adapter"
    delta_parameters = ("adapters.",)

    def __init__(self, backbone: nn.Module, config: PrefixAdapterConfig) -> None:
        super().__init__(backbone, config)
        modules = dict(backbone.named_modules())
        sites = feed_forward_blocks(backbone)
        self.scale = config.adapter_scale * delta_scale(config.delta_scaling, config.delta_rank)
        self.adapters = nn.ModuleDict()
        for site in sites:
            width = linear_shape(modules[site.reads])[0]
            adapter = nn.ModuleDict({"down": nn.Linear(width, config.delta_rank),
                                     "up": nn.Linear(config.delta_rank, width)})
            # MAM's "lora" initialisation: down as LoRA's A (nn.Linear's own weight init), the rest at zero, so
            # the adapter adds nothing at the start
            for tensor in (adapter["down"].bias, adapter["up"].weight, adapter["up"].bias):
                nn.init.zeros_(tensor)
            self.adapters[site.key] = adapter
        self._hook(backbone, sites)

    def delta(self, key: str, inputs: torch.Tensor, output: torch.Tensor) -> torch.Tensor | None:
        if key not in self.adapters:
            return None
        adapter = self.adapters[key]
        hidden = F.relu(adapter["down"](inputs.to(adapter["down"].weight.dtype)))
        return self.scale * adapter["up"](hidden)


@contextlib.contextmanager
def _together(*contexts: contextlib.AbstractContextManager):
    with contextlib.ExitStack() as stack:
        for context in contexts:
            stack.enter_context(context)
        yield


def _width(module: nn.Module) -> int:
    if isinstance(module, nn.Linear):
        return module.out_features
    if isinstance(module, nn.LayerNorm):
        return module.normalized_shape[-1]
    return module.weight.shape[-1]  # a decoder's RMSNorm; GPT-2's Conv1D stores (in, out)

"""Methods beyond the paper that keep what makes P-tuning v2 worth having (one frozen encoder shared by every task, a
small per-task artifact, rows of different tasks in one forward): the deep prefix plus per-task additive deltas
inside the encoder (``deltas.py``).

* ``prefix-bias``: a delta on every bias of the encoder (linear layers and LayerNorms), zero at the start:
  BitFit's capacity without touching the shared encoder's weights;
* ``prefix-lora``: low-rank deltas ``B A x`` on the attention value and output projections (``A`` random, ``B``
  zero at the start, scaled by 1 / rank as ``alpha = rank``... see ``delta``).
"""
from __future__ import annotations

import math

import torch
from torch import nn
from transformers.modeling_outputs import BaseModelOutput

from .configs import PrefixBiasConfig, PrefixLoraConfig
from .deltas import bias_targets, inject_deltas, module_key, value_output_targets
from .prefix import DeepPrefix


class _PrefixWithDeltas(DeepPrefix):
    """The deep prefix, and this task's deltas held for the rows it adapts while the encoder runs."""

    targets: list[str]
    delta_parameters: tuple[str, ...] = ()  # name prefixes of the deltas, which train at ``delta_lr``

    def _hook(self, backbone: nn.Module, targets: list[str]) -> None:
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
        raise ValueError(f"gradient checkpointing cannot be combined with {self.name} yet: its deltas are held only "
                         "during the forward, not when a layer is recomputed")


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
        targets = value_output_targets(backbone)
        rank = config.delta_rank
        self.down = nn.ParameterDict()
        self.up = nn.ParameterDict()
        for name in targets:
            linear = modules[name]
            down = torch.empty(rank, linear.in_features)
            nn.init.kaiming_uniform_(down, a=math.sqrt(5))  # LoRA's A; B starts at zero: the encoder as it is
            self.down[module_key(name)] = nn.Parameter(down)
            self.up[module_key(name)] = nn.Parameter(torch.zeros(linear.out_features, rank))
        self._hook(backbone, targets)

    def delta(self, key: str, inputs: torch.Tensor, output: torch.Tensor) -> torch.Tensor | None:
        if key not in self.down:  # a module that only another method on this encoder adapts (the bias deltas')
            return None
        down, up = self.down[key], self.up[key]
        return (inputs.to(down.dtype) @ down.T) @ up.T


def _width(module: nn.Module) -> int:
    if isinstance(module, nn.Linear):
        return module.out_features
    if isinstance(module, nn.LayerNorm):
        return module.normalized_shape[-1]
    return module.weight.shape[-1]  # a decoder's RMSNorm; GPT-2's Conv1D stores (in, out)

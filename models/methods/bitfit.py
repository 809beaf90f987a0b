"""The peer "bitfit" (Ben Zaken et al. 2022): every bias term of the encoder trains, every weight matrix stays frozen.

A few lines, so written here rather than taken from a library: the method is the choice of which encoder
tensors take gradients.  With ``layernorm`` the LayerNorm gains train too (their biases always do).
"""
from __future__ import annotations

import torch
from torch import nn
from transformers.modeling_outputs import BaseModelOutput

from .base import AdaptationMethod, run_backbone


def trains(name: str, module: nn.Module, layernorm: bool) -> bool:
    """Whether parameter ``name`` of ``module`` (its owner) is one BitFit trains."""
    if name == "bias":
        return True
    return layernorm and name == "weight" and isinstance(module, nn.LayerNorm)


class BitFit(AdaptationMethod):
    name = "bitfit"

    def mark_trainable(self, backbone: nn.Module) -> None:
        found = 0
        for module in backbone.modules():
            for name, parameter in module.named_parameters(recurse=False):
                if trains(name, module, self.config.layernorm):
                    parameter.requires_grad_(True)
                    found += 1
        if not found:
            raise ValueError(f"{type(backbone).__name__} has no bias terms for BitFit to train")

    def encode(self, backbone: nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor,
               token_type_ids: torch.Tensor | None = None, all_layers: bool = False) -> BaseModelOutput:
        return run_backbone(backbone, all_layers, input_ids=input_ids, attention_mask=attention_mask,
                            token_type_ids=token_type_ids)

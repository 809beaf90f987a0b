"""Full fine-tuning: the encoder as it is, every weight trained."""
from __future__ import annotations

import torch
from torch import nn
from transformers.modeling_outputs import BaseModelOutput

from .base import AdaptationMethod, run_backbone


class FineTune(AdaptationMethod):
    name = "finetune"

    def mark_trainable(self, backbone: nn.Module) -> None:
        for parameter in backbone.parameters():
            parameter.requires_grad_(True)

    def encode(self, backbone: nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor,
               token_type_ids: torch.Tensor | None = None, all_layers: bool = False) -> BaseModelOutput:
        return run_backbone(backbone, all_layers, input_ids=input_ids, attention_mask=attention_mask,
                            token_type_ids=token_type_ids)

"""P-tuning v2: deep prefix keys/values in every attention layer of a frozen encoder."""
from __future__ import annotations

import torch
from torch import nn
from transformers.modeling_outputs import BaseModelOutput

from ..prefix.encoder import PrefixEncoder
from ..prefix.injection import attention_modules, inject_prefix
from .base import AdaptationMethod, run_backbone
from .configs import PrefixConfig


def kv_dim(config) -> int:
    heads = config.num_attention_heads
    return getattr(config, "attention_head_size", config.hidden_size // heads) * heads


class DeepPrefix(AdaptationMethod):
    """Injects a prefix slot into ``backbone`` (``models/prefix/injection.py``) and fills it for each forward.

    The tokens keep positions 0..n-1 and the prefix uses no input position.
    """

    name = "prefix"

    def __init__(self, backbone: nn.Module, config: PrefixConfig) -> None:
        super().__init__(backbone, config)
        layers = len(attention_modules(backbone))
        self.slot = inject_prefix(backbone)
        self.encoder = PrefixEncoder(config, layers, kv_dim(backbone.config))

    def encode(self, backbone: nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor,
               token_type_ids: torch.Tensor | None = None, all_layers: bool = False) -> BaseModelOutput:
        with self.slot.holding(self.encoder(input_ids.shape[0])):
            return run_backbone(backbone, all_layers, input_ids=input_ids, attention_mask=attention_mask,
                                token_type_ids=token_type_ids)

    def checkpointing_kwargs(self) -> dict:
        return {"context_fn": self.slot.checkpoint_contexts}  # recomputed layers see their forward's prefix

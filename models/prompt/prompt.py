"""Trainable embeddings prepended to the input layer only (the shallow baseline)."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class PromptConfig:
    prompt_len: int = 32
    dropout: float = 0.0


class ShallowPrompt(nn.Module):
    """Prepends ``prompt_len`` trainable vectors to the word embeddings.

    As in the baseline methods, the prompt occupies the first input positions, so real
    tokens sit at positions P..P+n-1 and inputs are limited to max_positions - P.
    """

    def __init__(self, config: PromptConfig, embeddings: nn.Embedding) -> None:
        super().__init__()
        self.config = config
        # start from real vocabulary embeddings (a common, stable initialisation)
        generator = torch.Generator().manual_seed(0)
        low = min(1000, embeddings.num_embeddings // 2)  # skip special/unused ids at the start
        ids = torch.randint(low, embeddings.num_embeddings, (config.prompt_len,), generator=generator)
        self.embedding = nn.Parameter(embeddings.weight.detach()[ids].clone())
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, inputs_embeds: torch.Tensor, attention_mask: torch.Tensor, token_type_ids=None):
        batch = inputs_embeds.shape[0]
        prompt = self.dropout(self.embedding).unsqueeze(0).expand(batch, -1, -1).to(inputs_embeds.dtype)
        ones = attention_mask.new_ones(batch, self.config.prompt_len)
        if token_type_ids is not None:
            token_type_ids = torch.cat([token_type_ids.new_zeros(batch, self.config.prompt_len), token_type_ids], 1)
        return torch.cat([prompt, inputs_embeds], 1), torch.cat([ones, attention_mask], 1), token_type_ids

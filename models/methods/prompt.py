"""Shallow prompt tuning: trainable embeddings prepended at the input layer only (the baseline)."""
from __future__ import annotations

import torch
from torch import nn
from transformers.modeling_outputs import BaseModelOutput

from .base import AdaptationMethod, run_backbone
from .configs import PromptConfig


class ShallowPrompt(AdaptationMethod):
    """Prepends ``prompt_len`` trainable vectors to the word embeddings.

    As in the baseline methods, the prompt occupies the first input positions, so real tokens sit
    at positions P..P+n-1 and inputs are limited to max_positions - P.
    """

    name = "prompt"

    def __init__(self, backbone: nn.Module, config: PromptConfig) -> None:
        super().__init__(backbone, config)
        embeddings = backbone.get_input_embeddings()
        # start from real vocabulary embeddings (a common, stable initialisation)
        generator = torch.Generator().manual_seed(0)
        low = min(1000, embeddings.num_embeddings // 2)  # skip special/unused ids at the start
        ids = torch.randint(low, embeddings.num_embeddings, (config.prompt_len,), generator=generator)
        self.embedding = nn.Parameter(embeddings.weight.detach()[ids].clone())
        self.dropout = nn.Dropout(config.dropout)

    def positions_used(self) -> int:
        return self.config.prompt_len

    def encode(self, backbone: nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor,
               token_type_ids: torch.Tensor | None = None, all_layers: bool = False) -> BaseModelOutput:
        prompt = self.dropout(self.embedding).unsqueeze(0).expand(input_ids.shape[0], -1, -1)
        return encode_with_prompt(backbone, prompt, input_ids, attention_mask, token_type_ids, all_layers)


def encode_with_prompt(backbone: nn.Module, prompt: torch.Tensor, input_ids: torch.Tensor,
                       attention_mask: torch.Tensor, token_type_ids: torch.Tensor | None,
                       all_layers: bool) -> BaseModelOutput:
    """Run ``backbone`` with ``prompt`` (B, P, hidden) before the input embeddings; the states of the real tokens.

    The prompt rows are always attended to and get segment 0, as PEFT's task classes do.
    """
    batch, length = input_ids.shape[0], prompt.shape[1]
    embeds = backbone.get_input_embeddings()(input_ids)
    mask = torch.cat([attention_mask.new_ones(batch, length), attention_mask], 1)
    if token_type_ids is not None:
        token_type_ids = torch.cat([token_type_ids.new_zeros(batch, length), token_type_ids], 1)
    out = run_backbone(backbone, all_layers, inputs_embeds=torch.cat([prompt.to(embeds.dtype), embeds], 1),
                       attention_mask=mask, token_type_ids=token_type_ids)
    layers = None if out.hidden_states is None else tuple(h[:, length:] for h in out.hidden_states)
    return BaseModelOutput(last_hidden_state=out.last_hidden_state[:, length:], hidden_states=layers)

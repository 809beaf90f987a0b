"""The peer "peft-ptuning": Hugging Face PEFT's P-tuning (v1) prompt encoder, a shallow prompt before the input.

PEFT's ``PromptEncoder`` turns ``prompt_len`` trainable embeddings into the virtual tokens through an MLP (or
an LSTM); PEFT's task classes put them before the input embeddings, widen the mask and give them segment 0.
We call PEFT's own ``get_prompt`` and place the result the same way as our shallow ``prompt`` method
(``models/methods/prompt.py: encode_with_prompt``), so only the prompt encoder differs between the two.
"""
from __future__ import annotations

import warnings

import torch
from torch import nn
from transformers.modeling_outputs import BaseModelOutput

from .base import AdaptationMethod
from .configs import PeftPtuningConfig
from .peft_import import import_peft
from .prompt import encode_with_prompt


class PeftPtuning(AdaptationMethod):
    name = "peft-ptuning"

    def __init__(self, backbone: nn.Module, config: PeftPtuningConfig) -> None:
        super().__init__(backbone, config)
        peft = import_peft(self.name)
        types = {t.value: t for t in peft.PromptEncoderReparameterizationType}
        if config.encoder_type not in types:
            raise ValueError(f"unknown P-tuning encoder '{config.encoder_type}'; choose from {', '.join(types)}")
        width = backbone.get_input_embeddings().embedding_dim  # DistilBERT's config calls it dim
        peft_config = peft.PromptEncoderConfig(
            task_type=peft.TaskType.FEATURE_EXTRACTION, num_virtual_tokens=config.prompt_len, token_dim=width,
            encoder_hidden_size=config.hidden_size or width,
            encoder_reparameterization_type=types[config.encoder_type])
        with warnings.catch_warnings():  # peft 0.21 calls a transformers API deprecated in 5.x
            warnings.simplefilter("ignore", FutureWarning)
            wrapped = peft.get_peft_model(backbone, peft_config)
        self.prompt_encoder = wrapped.prompt_encoder  # PEFT's trainable parameters
        object.__setattr__(self, "_peft", wrapped)  # held, not registered (see AdaptationMethod)

    def positions_used(self) -> int:
        return self.config.prompt_len

    def encode(self, backbone: nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor,
               token_type_ids: torch.Tensor | None = None, all_layers: bool = False) -> BaseModelOutput:
        prompt = self._peft.get_prompt(input_ids.shape[0])
        return encode_with_prompt(backbone, prompt, input_ids, attention_mask, token_type_ids, all_layers)

"""The peer baseline "peft-prefix": Hugging Face PEFT's ``PrefixTuningConfig`` on the same encoder and heads.

How PEFT prefix tuning reaches an encoder-only model (peft 0.21, transformers 5.x):

* ``get_peft_model`` keeps the encoder as is, freezes it and adds a ``PrefixEncoder``
  (an ``nn.Embedding`` of (P, layers*2*kv_dim), optionally behind a 2-layer MLP when
  ``prefix_projection``).
* On every forward, ``get_prompt(B)`` runs that encoder for the batch, reshapes the rows
  into per-layer (B, heads, P, d) keys/values and wraps them in a ``DynamicCache``; the
  encoder receives it as ``past_key_values`` (renamed ``cache`` in transformers 5.24).  Each
  self-attention layer then ``cache.update()``-s, i.e. concatenates its own keys/values after the prefix.
* The caller widens the attention mask with P ones in front; transformers'
  ``create_bidirectional_mask`` takes the key length from that mask ("prefix tuning is evil").
* ``BertEmbeddings`` offsets positions by the cache length: tokens get positions P..P+n-1,
  so inputs are limited to ``max_positions - P`` (unlike our in-attention prefix).

PEFT's task classes (token/sequence classification, QA) do exactly this and keep
``token_type_ids``; its ``FEATURE_EXTRACTION`` class drops them.  We reproduce the
task-class call on PEFT's own ``get_prompt`` so sentence-pair tasks keep their segment ids
and our heads sit on top, as for every other method.  DeBERTa-v2 takes no
``past_key_values``, so PEFT prefix tuning cannot run on it.
"""
from __future__ import annotations

import inspect
import warnings

import torch
from torch import nn
from transformers.modeling_outputs import BaseModelOutput

from ..prefix.injection import UnsupportedArchitecture
from .base import AdaptationMethod, run_backbone
from .configs import PeftPrefixConfig
from .peft_import import PeftMissing, import_peft  # noqa: F401 (PeftMissing: re-exported)

PEFT_METHOD = "peft-prefix"


class PeftPrefix(AdaptationMethod):
    """PEFT's prefix encoder for ``backbone``; ``encode`` runs the encoder with the PEFT prefix."""

    name = PEFT_METHOD

    def __init__(self, backbone: nn.Module, config: PeftPrefixConfig) -> None:
        super().__init__(backbone, config)
        peft = import_peft(PEFT_METHOD)
        self._cache_arg = cache_argument(backbone)
        if self._cache_arg is None:
            raise UnsupportedArchitecture(f"{type(backbone).__name__} takes no key/value cache (cache or "
                                          f"past_key_values): PEFT prefix tuning cannot run on model_type "
                                          f"'{backbone.config.model_type}'")
        peft_config = peft.PrefixTuningConfig(
            task_type=peft.TaskType.FEATURE_EXTRACTION,
            num_virtual_tokens=config.prefix_len,
            prefix_projection=config.reparameterize,
            encoder_hidden_size=config.hidden_size,
        )
        with warnings.catch_warnings():  # peft 0.21 calls a transformers API deprecated in 5.x
            warnings.simplefilter("ignore", FutureWarning)
            wrapped = peft.get_peft_model(backbone, peft_config)
        self.prompt_encoder = wrapped.prompt_encoder  # PEFT's trainable parameters
        object.__setattr__(self, "_peft", wrapped)  # held, not registered (see AdaptationMethod)

    @property
    def prefix_len(self) -> int:
        return self.config.prefix_len

    def positions_used(self) -> int:
        return self.prefix_len if self.config.position_shift else 0  # PEFT shifts positions by the prefix length

    def encode(self, backbone: nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor,
               token_type_ids: torch.Tensor | None = None, all_layers: bool = False) -> BaseModelOutput:
        batch = input_ids.shape[0]
        past = self._peft.get_prompt(batch)  # PEFT's own prefix -> DynamicCache path
        ones = attention_mask.new_ones(batch, self.prefix_len)
        positions = None if self.config.position_shift else unshifted_positions(backbone, input_ids)
        return run_backbone(backbone, all_layers, input_ids=input_ids,
                            attention_mask=torch.cat([ones, attention_mask], 1), token_type_ids=token_type_ids,
                            position_ids=positions, **{self._cache_arg: past})

    def checkpointing_kwargs(self) -> dict:
        raise ValueError("gradient checkpointing cannot be combined with peft-prefix: PEFT's key/value cache "
                         "is updated again when a layer is recomputed (PEFT refuses it too)")


def unshifted_positions(backbone: nn.Module, input_ids: torch.Tensor) -> torch.Tensor:
    """Positions 0..n-1 (RoBERTa-style encoders count from the padding index + 1)."""
    start = 0
    if backbone.config.model_type in ("roberta", "xlm-roberta"):
        start = backbone.config.pad_token_id + 1
    return (torch.arange(input_ids.shape[1], device=input_ids.device) + start).expand_as(input_ids)


def cache_argument(backbone: nn.Module) -> str | None:
    """The name under which ``backbone.forward`` takes a key/value cache, or None if it takes none.

    transformers 5.24 renamed ``past_key_values`` to ``cache`` (the old name is deprecated, not
    in the signature), so look for both rather than pin transformers.
    """
    params = inspect.signature(backbone.forward).parameters
    return next((name for name in ("cache", "past_key_values") if name in params), None)

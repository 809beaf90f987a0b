"""The one interface every adaptation method implements."""
from __future__ import annotations

import inspect
from typing import ClassVar

import torch
from torch import nn
from transformers.modeling_outputs import BaseModelOutput

from ..prefix.injection import is_decoder


class AdaptationMethod(nn.Module):
    """How inputs pass through the encoder, and what trains besides the head.

    The encoder itself is owned by ``AdaptedModel`` and handed to ``encode`` (registering it here
    too would put every encoder weight twice into state dicts).

    * ``encode``: hidden states of the real tokens only (a method that adds input positions removes
      them again), the last layer and, with ``all_layers``, every layer's output;
    * ``positions_used``: input positions the method takes from the encoder's maximum length;
    * ``config``: the method's settings (a dataclass of ``models.methods.configs``), what artifacts record.
    """

    name: ClassVar[str] = ""

    def __init__(self, backbone: nn.Module, config) -> None:
        super().__init__()
        self.config = config

    def encode(self, backbone: nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor,
               token_type_ids: torch.Tensor | None = None, all_layers: bool = False) -> BaseModelOutput:
        raise NotImplementedError

    def positions_used(self) -> int:
        return 0

    def mark_trainable(self, backbone: nn.Module) -> None:
        """Let the encoder weights this method trains take gradients (the model freezes the whole encoder first).

        Methods that own their parameters (a prefix, a prompt) leave the encoder frozen; methods that train
        part of it (its biases, low-rank updates injected into it) or all of it turn those back on.
        """

    def checkpointing_kwargs(self) -> dict:
        """Extra ``torch.utils.checkpoint`` arguments this method needs (raise if it cannot be checkpointed)."""
        return {}

    def trainer_callbacks(self) -> list:
        """``transformers.TrainerCallback`` objects the Trainer registers for this method, for what a method does
        around the optimizer's steps (AdaLoRA's budget schedule, sized to the run's steps at its start)."""
        return []

    def own_rates(self) -> dict[str, float]:
        """Learning rates of some of the method's parameters, by name prefix within the method (the rest train at the
        run's rate): parts that need another step size than the rest (the deltas of ``prefix-bias``)."""
        return {}

    @classmethod
    def encode_rows(cls, backbone: nn.Module, parts: list[tuple["AdaptationMethod", int]], input_ids: torch.Tensor,
                    attention_mask: torch.Tensor, token_type_ids: torch.Tensor | None = None,
                    all_layers: bool = False) -> BaseModelOutput:
        """One forward over rows of several tasks: ``parts`` lists, in row order, each task's instance of this
        method and how many consecutive rows it adapts.  Only methods registered with ``mixes_rows`` have it."""
        raise NotImplementedError(f"method '{cls.name}' cannot adapt rows of several tasks in one forward")


def run_backbone(backbone: nn.Module, all_layers: bool, **inputs) -> BaseModelOutput:
    """``backbone(**inputs)`` without ``None`` arguments (not every encoder takes ``token_type_ids``).

    A decoder runs without a key/value cache (``use_cache=False``): nothing here generates, and a cache would only
    hold every layer's keys for nothing.  Segment ids go only to a model whose forward names them (GPT-2 does;
    Llama-style decoders would pass them on to their attention as unknown keywords).
    """
    given = {k: v for k, v in inputs.items() if v is not None}
    if is_decoder(backbone.config):
        given["use_cache"] = False
        if "token_type_ids" in given and "token_type_ids" not in inspect.signature(backbone.forward).parameters:
            del given["token_type_ids"]
    out = backbone(**given, output_hidden_states=all_layers)
    return BaseModelOutput(last_hidden_state=out.last_hidden_state,
                           hidden_states=out.hidden_states if all_layers else None)

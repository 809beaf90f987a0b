"""A toy adaptation method in one file, as a user would add one: its config, its class, and its registration.

``shift``: one trainable vector added to every input embedding (a task's "accent"); rows of several tasks share a
forward by adding each row its own task's vector (``encode_rows``), so the server mixes its rows with others.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from models.methods.base import AdaptationMethod, run_backbone
from models.methods.registry import METHODS, MethodSpec, register_method
from models.options import option


@dataclass
class ShiftConfig:
    scale: float = option(0.1, "initial size of the input shift", flag="--shift-scale")

    def default_lr(self) -> float:
        return 1e-2


class InputShift(AdaptationMethod):
    name = "shift"

    def __init__(self, backbone: nn.Module, config: ShiftConfig) -> None:
        super().__init__(backbone, config)
        width = backbone.get_input_embeddings().embedding_dim
        self.shift = nn.Parameter(config.scale * torch.randn(width))

    @staticmethod
    def _run(backbone, shifts, input_ids, attention_mask, token_type_ids, all_layers):
        embeds = backbone.get_input_embeddings()(input_ids) + shifts[:, None, :]
        return run_backbone(backbone, all_layers, inputs_embeds=embeds, attention_mask=attention_mask,
                            token_type_ids=token_type_ids)

    def encode(self, backbone, input_ids, attention_mask, token_type_ids=None, all_layers=False):
        return self._run(backbone, self.shift.expand(len(input_ids), -1), input_ids, attention_mask, token_type_ids,
                         all_layers)

    @classmethod
    def encode_rows(cls, backbone, parts, input_ids, attention_mask, token_type_ids=None, all_layers=False):
        shifts = torch.cat([method.shift.expand(rows, -1) for method, rows in parts])
        return cls._run(backbone, shifts, input_ids, attention_mask, token_type_ids, all_layers)


if "shift" not in METHODS:
    register_method(MethodSpec("shift", ShiftConfig, "toy_method:InputShift", "toy: a trainable input shift",
                               mixes_rows=True, keeps_backbone=True))

"""Several tasks on one encoder and one method: a shared prefix with one head (and readout) per task.

The paper's multi-task prefix pre-training (MPT-2): each batch comes from one task, the prefix is
shared, every task has its own randomly initialised head.  ``view(name)`` is an ``AdaptedModel``
for one task that shares the encoder, the method and that task's head (evaluation, predict, artifacts).
"""
from __future__ import annotations

import torch
from torch import nn

from .adapted import AdaptedModel, TaskOutput, Trained
from .methods.base import AdaptationMethod
from .readout import LayerMix


class Readout(nn.Module):
    """What one task reads from the encoder (a layer mix, if any) and its head."""

    def __init__(self, head: nn.Module, mix: LayerMix | None = None) -> None:
        super().__init__()
        self.head, self.mix = head, mix


class MultiTaskModel(Trained, nn.Module):
    """encoder + one shared method + one ``Readout`` per task; ``forward(task_index=...)`` picks the head."""

    accepts_loss_kwargs = False  # as AdaptedModel: the heads return a mean loss

    def __init__(self, backbone: nn.Module, method: AdaptationMethod, heads: dict[str, nn.Module],
                 layers: str = "last") -> None:
        super().__init__()
        first = AdaptedModel(backbone, next(iter(heads.values())), method, layers=layers)  # freezes as one task would
        self.backbone, self.method, self.layers, self.spec = backbone, method, layers, first.spec
        self.names = list(heads)
        self.members = nn.ModuleDict({
            name: Readout(head, LayerMix(backbone.config.num_hidden_layers + 1) if layers == "mix" else None)
            for name, head in heads.items()})

    def view(self, name: str) -> AdaptedModel:
        """One task's model: shares every parameter with this one."""
        readout = self.members[name]
        view = AdaptedModel(self.backbone, readout.head, self.method, layers=self.layers, mix=readout.mix)
        for attr in ("backbone_name", "backbone_fingerprint"):
            if hasattr(self, attr):
                setattr(view, attr, getattr(self, attr))
        return view

    def forward(self, input_ids: torch.Tensor, task_index: torch.Tensor, attention_mask: torch.Tensor | None = None,
                token_type_ids: torch.Tensor | None = None, labels: torch.Tensor | None = None,
                **head_inputs) -> TaskOutput:
        index = task_index.reshape(-1)
        if not bool((index == index[0]).all()):
            raise ValueError("a multi-task batch must come from one task (the sampler draws one task per batch)")
        view = self.view(self.names[int(index[0])])
        return view(input_ids, attention_mask, token_type_ids, labels=labels, **head_inputs)

    def head_parameters(self) -> list[nn.Parameter]:
        return list(self.members.parameters())

    def enable_gradient_checkpointing(self) -> None:
        self.view(self.names[0]).enable_gradient_checkpointing()

    def method_record(self) -> dict:
        return self.view(self.names[0]).method_record()

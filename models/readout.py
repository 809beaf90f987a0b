"""Which encoder hidden states a head reads: the last layer, or a learned mix of every layer."""
from __future__ import annotations

import torch
from torch import nn

LAYERS = ("last", "mix")


class LayerMix(nn.Module):
    """A softmax-weighted sum of every layer's output, times a learned scale (ELMo's scalar mix).

    Starts as the plain average.  A frozen encoder's middle layers may hold more for a task than
    its last one, which pre-training shaped for its own objective.
    """

    def __init__(self, num_layers: int) -> None:
        super().__init__()
        self.weights = nn.Parameter(torch.zeros(num_layers))
        self.scale = nn.Parameter(torch.ones(()))

    def forward(self, layers: tuple[torch.Tensor, ...]) -> torch.Tensor:
        weights = torch.softmax(self.weights, dim=0).to(layers[0].dtype)
        return self.scale * torch.einsum("l,lbnh->bnh", weights, torch.stack(layers))

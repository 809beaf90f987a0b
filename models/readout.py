"""What a head reads of the encoder's output (the last layer, or a learned mix of every layer), and the one readout."""
from __future__ import annotations

import torch
from torch import nn

from .choices import LAYERS  # noqa: F401 (the choices of --layers, re-exported)


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


def read_out(head: nn.Module, mix: LayerMix | None, output, rows: slice, attention_mask: torch.Tensor,
             **head_inputs) -> torch.Tensor:
    """The one readout: ``head``'s logits for ``rows`` of the encoder's ``output`` (a ``BaseModelOutput``)."""
    return head(states(output, mix, rows, next(head.parameters()).dtype), attention_mask=attention_mask,
                **head_inputs)


def states(output, mix: LayerMix | None, rows: slice, dtype: torch.dtype) -> torch.Tensor:
    """The hidden states a head reads: ``rows`` of the last layer or of ``mix`` over every layer, in ``dtype`` (the
    head's own, fp32, also after a bf16 encoder)."""
    if mix is None:
        return output.last_hidden_state[rows].to(dtype)
    return mix(tuple(h[rows].to(dtype) for h in output.hidden_states))

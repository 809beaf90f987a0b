"""Multiple choice: one score per (context, choice) pair, softmax across choices."""
from __future__ import annotations

import torch
from torch import nn

from .registry import register_head
from .sequence import _Pooler


@register_head("multiple-choice")
class MultipleChoiceHead(nn.Module):
    """forward: hidden_states (B*C, n, hidden_size), num_choices=C -> logits (B, C).

    Each choice is encoded as its own sequence (same encoder and prefix); the head scores
    its first token and the scores of one example are compared by softmax.
    loss: labels (B,) index of the correct choice.
    """

    def __init__(self, hidden_size: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.config = {"hidden_size": hidden_size, "dropout": dropout}
        self.pooler = _Pooler(hidden_size, dropout)
        # no bias: one constant added to every choice's score cancels in the softmax across choices,
        # so its gradient is exactly zero and it could never learn
        self.scorer = nn.Linear(hidden_size, 1, bias=False)

    def forward(self, hidden_states: torch.Tensor, num_choices: int = 1, **_: object) -> torch.Tensor:
        return self.scorer(self.pooler(hidden_states)).view(-1, num_choices)

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return nn.functional.cross_entropy(logits, labels.long())

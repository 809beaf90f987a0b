"""Multiple choice: one score per (context, choice) pair, softmax across choices."""
from __future__ import annotations

import torch
from torch import nn

from .base import Head
from .pooling import Pooler
from .registry import register_head


@register_head("multiple-choice")
class MultipleChoiceHead(Head):
    """forward: hidden_states (B*C, n, hidden_size), num_choices=C -> logits (B, C).

    Each choice is encoded as its own sequence (same encoder and prefix); the head scores its
    pooled vector and the scores of one example are compared by softmax.
    loss: labels (B,) index of the correct choice.
    """

    config_keys = ("hidden_size", "dropout", "pooling")

    def __init__(self, hidden_size: int, dropout: float = 0.1, pooling: str = "first") -> None:
        super().__init__()
        self.hidden_size, self.dropout, self.pooling = hidden_size, dropout, pooling
        self.pooler = Pooler(hidden_size, dropout, pooling)
        # no bias: one constant added to every choice's score cancels in the softmax across choices,
        # so its gradient is exactly zero and it could never learn
        self.scorer = nn.Linear(hidden_size, 1, bias=False)

    def forward(self, hidden_states: torch.Tensor, attention_mask: torch.Tensor | None = None,
                num_choices: int = 1, **_: object) -> torch.Tensor:
        return self.scorer(self.pooler(hidden_states, attention_mask)).view(-1, num_choices)

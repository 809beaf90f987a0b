"""Whole-sequence heads: classification and regression from a pooled vector ([CLS] or the mean)."""
from __future__ import annotations

import torch
from torch import nn

from .base import Head
from .pooling import Pooler
from .registry import register_head


@register_head("sequence-classification")
class SequenceClassificationHead(Head):
    """forward: hidden_states (B, n, hidden_size) -> logits (B, num_labels); loss: labels (B,) ints."""

    config_keys = ("hidden_size", "num_labels", "dropout", "pooling")

    def __init__(self, hidden_size: int, num_labels: int, dropout: float = 0.1, pooling: str = "first") -> None:
        super().__init__()
        self.hidden_size, self.num_labels, self.dropout, self.pooling = hidden_size, num_labels, dropout, pooling
        self.pooler = Pooler(hidden_size, dropout, pooling)
        self.classifier = nn.Linear(hidden_size, num_labels)

    def forward(self, hidden_states: torch.Tensor, attention_mask: torch.Tensor | None = None,
                **_: object) -> torch.Tensor:
        return self.classifier(self.pooler(hidden_states, attention_mask))


@register_head("regression")
class RegressionHead(Head):
    """forward: hidden_states (B, n, hidden_size) -> scores (B,); loss: MSE against float targets (B,)."""

    config_keys = ("hidden_size", "dropout", "pooling")

    def __init__(self, hidden_size: int, dropout: float = 0.1, pooling: str = "first") -> None:
        super().__init__()
        self.hidden_size, self.dropout, self.pooling = hidden_size, dropout, pooling
        self.pooler = Pooler(hidden_size, dropout, pooling)
        self.regressor = nn.Linear(hidden_size, 1)

    def forward(self, hidden_states: torch.Tensor, attention_mask: torch.Tensor | None = None,
                **_: object) -> torch.Tensor:
        return self.regressor(self.pooler(hidden_states, attention_mask)).squeeze(-1)

    def loss(self, scores: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return nn.functional.mse_loss(scores, labels.to(scores.dtype))

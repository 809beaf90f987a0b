"""Whole-sequence heads: classification and regression from the first ([CLS]) token."""
from __future__ import annotations

import torch
from torch import nn

from .registry import register_head


class _Pooler(nn.Module):
    """First-token pooling followed by a fresh dense+tanh layer (RoBERTa-style head)."""

    def __init__(self, hidden_size: int, dropout: float) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.dense = nn.Linear(hidden_size, hidden_size)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.dropout(torch.tanh(self.dense(self.dropout(hidden_states[:, 0]))))


@register_head("sequence-classification")
class SequenceClassificationHead(nn.Module):
    """forward: hidden_states (B, n, hidden_size) -> logits (B, num_labels); loss: labels (B,) ints."""

    def __init__(self, hidden_size: int, num_labels: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.config = {"hidden_size": hidden_size, "num_labels": num_labels, "dropout": dropout}
        self.pooler = _Pooler(hidden_size, dropout)
        self.classifier = nn.Linear(hidden_size, num_labels)

    def forward(self, hidden_states: torch.Tensor, **_: object) -> torch.Tensor:
        return self.classifier(self.pooler(hidden_states))

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return nn.functional.cross_entropy(logits, labels.long())


@register_head("regression")
class RegressionHead(nn.Module):
    """forward: hidden_states (B, n, hidden_size) -> scores (B,); loss: MSE against float targets (B,)."""

    def __init__(self, hidden_size: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.config = {"hidden_size": hidden_size, "dropout": dropout}
        self.pooler = _Pooler(hidden_size, dropout)
        self.regressor = nn.Linear(hidden_size, 1)

    def forward(self, hidden_states: torch.Tensor, **_: object) -> torch.Tensor:
        return self.regressor(self.pooler(hidden_states)).squeeze(-1)

    def loss(self, scores: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return nn.functional.mse_loss(scores, labels.to(scores.dtype))

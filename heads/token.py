"""Per-token classification (NER, chunking, POS)."""
from __future__ import annotations

import torch
from torch import nn

from .base import Head
from .registry import register_head


@register_head("token-classification")
class TokenClassificationHead(Head):
    """Dropout + linear layer over every token.

    forward: hidden_states (B, n, hidden_size) -> logits (B, n, num_labels).
    loss: labels (B, n) with -100 on positions that carry no label (sub-tokens, specials).
    """

    config_keys = ("hidden_size", "num_labels", "dropout")

    def __init__(self, hidden_size: int, num_labels: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.hidden_size, self.num_labels, self.dropout = hidden_size, num_labels, dropout
        self.drop = nn.Dropout(dropout)
        self.classifier = nn.Linear(hidden_size, num_labels)

    def forward(self, hidden_states: torch.Tensor, **_: object) -> torch.Tensor:
        return self.classifier(self.drop(hidden_states))

"""Per-token classification (NER, chunking, POS)."""
from __future__ import annotations

import torch
from torch import nn

from .registry import register_head

IGNORE_INDEX = -100


@register_head("token-classification")
class TokenClassificationHead(nn.Module):
    """Dropout + linear layer over every token.

    forward: hidden_states (B, n, hidden_size) -> logits (B, n, num_labels).
    loss: labels (B, n) with -100 on positions that carry no label (sub-tokens, specials).
    """

    def __init__(self, hidden_size: int, num_labels: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.config = {"hidden_size": hidden_size, "num_labels": num_labels, "dropout": dropout}
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(hidden_size, num_labels)

    def forward(self, hidden_states: torch.Tensor, **_: object) -> torch.Tensor:
        return self.classifier(self.dropout(hidden_states))

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return nn.functional.cross_entropy(
            logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=IGNORE_INDEX
        )

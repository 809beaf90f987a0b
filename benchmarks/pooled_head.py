"""A sequence head fed one pooled vector per example, in the Trainer's calling convention (``frozen_probe``'s second
reader: the head trained alone on frozen features, by the same Trainer as every run)."""
from __future__ import annotations

import torch
from torch import nn


class PooledHead(nn.Module):
    """``head`` reading a pooled vector as a one-token sequence; the head's own loss beside the logits when labels
    come."""

    def __init__(self, head: nn.Module) -> None:
        super().__init__()
        self.head = head

    def forward(self, features: torch.Tensor, labels: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        logits = self.head(features.unsqueeze(1))
        return {"logits": logits} if labels is None else {"loss": self.head.loss(logits, labels), "logits": logits}

"""Classification from the pooled sequence plus two marked token spans (WiC target words, WSC noun/pronoun)."""
from __future__ import annotations

import torch
from torch import nn

from .base import Head
from .pooling import Pooler, masked_mean
from .registry import register_head


@register_head("span-pair-classification")
class SpanPairClassificationHead(Head):
    """forward: hidden_states (B, n, hidden_size), span1_mask and span2_mask (B, n) 0/1 -> logits (B, num_labels).

    Each span is mean-pooled over its sub-tokens and projected; the classifier sees
    [pooled sequence; span1; span2; span1 * span2] (the product makes "same sense / same
    referent" easy to express).  The masks come from the collated batch as extra model
    inputs (``AdaptedModel.forward(**head_inputs)``).
    loss: labels (B,) ints.
    """

    config_keys = ("hidden_size", "num_labels", "dropout", "pooling")

    def __init__(self, hidden_size: int, num_labels: int, dropout: float = 0.1, pooling: str = "first") -> None:
        super().__init__()
        self.hidden_size, self.num_labels, self.dropout, self.pooling = hidden_size, num_labels, dropout, pooling
        self.pooler = Pooler(hidden_size, dropout, pooling)
        self.drop = nn.Dropout(dropout)
        self.span = nn.Linear(hidden_size, hidden_size)
        self.classifier = nn.Linear(4 * hidden_size, num_labels)

    def forward(self, hidden_states: torch.Tensor, span1_mask: torch.Tensor | None = None,
                span2_mask: torch.Tensor | None = None, attention_mask: torch.Tensor | None = None,
                **_: object) -> torch.Tensor:
        if span1_mask is None or span2_mask is None:
            raise ValueError("span-pair-classification needs span1_mask and span2_mask inputs")
        spans = [torch.tanh(self.span(self.drop(masked_mean(hidden_states, m)))) for m in (span1_mask, span2_mask)]
        features = torch.cat([self.pooler(hidden_states, attention_mask), spans[0], spans[1], spans[0] * spans[1]],
                             dim=-1)
        return self.classifier(self.drop(features))

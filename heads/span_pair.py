"""Classification from the [CLS] token plus two marked token spans (WiC target words, WSC noun/pronoun)."""
from __future__ import annotations

import torch
from torch import nn

from .registry import register_head
from .sequence import _Pooler


def masked_mean(hidden_states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of the vectors where ``mask`` is 1; an empty span (cut off by truncation) gives zeros."""
    mask = mask.to(hidden_states.dtype).unsqueeze(-1)
    return (hidden_states * mask).sum(1) / mask.sum(1).clamp(min=1.0)


@register_head("span-pair-classification")
class SpanPairClassificationHead(nn.Module):
    """forward: hidden_states (B, n, hidden_size), span1_mask and span2_mask (B, n) 0/1 -> logits (B, num_labels).

    Each span is mean-pooled over its sub-tokens and projected; the classifier sees
    [CLS pooled; span1; span2; span1 * span2] (the product makes "same sense / same
    referent" easy to express).  The masks come from the collated batch as extra model
    inputs (``AdaptedModel.forward(**head_inputs)``).
    loss: labels (B,) ints.
    """

    def __init__(self, hidden_size: int, num_labels: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.config = {"hidden_size": hidden_size, "num_labels": num_labels, "dropout": dropout}
        self.pooler = _Pooler(hidden_size, dropout)
        self.dropout = nn.Dropout(dropout)
        self.span = nn.Linear(hidden_size, hidden_size)
        self.classifier = nn.Linear(4 * hidden_size, num_labels)

    def forward(self, hidden_states: torch.Tensor, span1_mask: torch.Tensor | None = None,
                span2_mask: torch.Tensor | None = None, **_: object) -> torch.Tensor:
        if span1_mask is None or span2_mask is None:
            raise ValueError("span-pair-classification needs span1_mask and span2_mask inputs")
        spans = [torch.tanh(self.span(self.dropout(masked_mean(hidden_states, m)))) for m in (span1_mask, span2_mask)]
        features = torch.cat([self.pooler(hidden_states), spans[0], spans[1], spans[0] * spans[1]], dim=-1)
        return self.classifier(self.dropout(features))

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return nn.functional.cross_entropy(logits, labels.long())

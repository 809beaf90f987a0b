"""Extractive QA: start and end logits for every token."""
from __future__ import annotations

import torch
from torch import nn

from .base import Head
from .registry import register_head


@register_head("span")
class SpanHead(Head):
    """forward: hidden_states (B, n, hidden_size) -> logits (B, n, 2) (start, end).

    loss: labels (B, 2) = token index of answer start and end (the CLS index, usually 0,
    for windows without an answer); mean of the start and end cross-entropies.
    """

    def __init__(self, hidden_size: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.hidden_size, self.dropout = hidden_size, dropout
        self.drop = nn.Dropout(dropout)
        self.qa_outputs = nn.Linear(hidden_size, 2)

    def forward(self, hidden_states: torch.Tensor, attention_mask: torch.Tensor | None = None, **_: object):
        logits = self.qa_outputs(self.drop(hidden_states))
        if attention_mask is not None:  # padding can never be a start or an end
            logits = logits.masked_fill(~attention_mask.bool().unsqueeze(-1), torch.finfo(logits.dtype).min)
        return logits

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        length = logits.shape[1]
        positions = labels.long()
        outside = (positions < 0) | (positions >= length)
        if outside.any():  # a labelling bug upstream: clamping it to a real token would train on a wrong answer
            row = int(outside.any(-1).nonzero()[0])
            raise ValueError(f"span labels {positions[row].tolist()} (row {row} of the batch) lie outside the "
                             f"{length} tokens of the input: start/end must be token indices in [0, {length})")
        start = nn.functional.cross_entropy(logits[..., 0], positions[:, 0])
        end = nn.functional.cross_entropy(logits[..., 1], positions[:, 1])
        return (start + end) / 2

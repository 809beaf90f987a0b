"""Pooling a sequence into one vector for the sequence-level heads (``POOLING``).

``first``: the first token ([CLS] of BERT-style encoders); ``mean``: the mean of the real tokens (how
sentence-transformers encoders such as the bundled one were trained); ``last``: the last real token, found from the
mask (a causal decoder's only token that has seen the whole input; the decoders' default).
"""
from __future__ import annotations

import torch
from torch import nn

from .choices import POOLING


def masked_mean(hidden_states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of the vectors where ``mask`` is 1; an empty mask (a span cut off by truncation) gives zeros."""
    mask = mask.to(hidden_states.dtype).unsqueeze(-1)
    return (hidden_states * mask).sum(1) / mask.sum(1).clamp(min=1.0)


def last_real(hidden_states: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Per row, the vector at the last position where ``mask`` is 1 (the last position without a mask).

    A causal decoder's last real token is the only one that has seen the whole input: what GPT-style sequence
    classifiers read.  Found from the mask, not from the padding side: any position of the last 1 per row.
    """
    if mask is None:
        return hidden_states[:, -1]
    positions = torch.arange(1, mask.shape[1] + 1, device=mask.device)
    last = (mask.bool() * positions).argmax(dim=1)  # the largest position (+1) holding a 1; row of no 1s -> 0
    return hidden_states[torch.arange(hidden_states.shape[0], device=hidden_states.device), last]


class Pooler(nn.Module):
    """One vector per sequence, then a fresh dense + tanh layer (the RoBERTa-style classification head).

    ``mode``: ``first`` takes the first token ([CLS]); ``mean`` averages the real tokens (padding
    excluded), which is how sentence-transformers encoders such as the bundled one were trained;
    ``last`` takes the last real token (a decoder's summary of the whole input).
    """

    def __init__(self, hidden_size: int, dropout: float, mode: str = "first") -> None:
        super().__init__()
        if mode not in POOLING:
            raise ValueError(f"unknown pooling '{mode}'; choose from {', '.join(POOLING)}")
        self.mode = mode
        self.drop = nn.Dropout(dropout)
        self.dense = nn.Linear(hidden_size, hidden_size)

    def forward(self, hidden_states: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        if self.mode == "mean":
            mask = attention_mask if attention_mask is not None else hidden_states.new_ones(hidden_states.shape[:2])
            pooled = masked_mean(hidden_states, mask)
        elif self.mode == "last":
            pooled = last_real(hidden_states, attention_mask)
        else:
            pooled = hidden_states[:, 0]
        return self.drop(torch.tanh(self.dense(self.drop(pooled))))

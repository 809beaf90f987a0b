"""Heads on their own: what a head refuses, and parameters that could never learn."""
from __future__ import annotations

import pytest
import torch

from heads import MultipleChoiceHead, SpanHead


def test_span_labels_outside_the_input_are_an_error_not_clamped():
    head = SpanHead(8)
    logits = head(torch.randn(2, 5, 8))
    assert torch.isfinite(head.loss(logits, torch.tensor([[0, 0], [1, 4]])))
    for bad in ([[0, 0], [1, 5]], [[-1, 0], [1, 2]]):
        with pytest.raises(ValueError, match="outside the 5 tokens"):
            head.loss(logits, torch.tensor(bad))


def test_multiple_choice_scorer_has_no_bias():
    """A shared bias adds the same constant to every choice: the softmax across choices cancels it exactly."""
    head = MultipleChoiceHead(8)
    assert head.scorer.bias is None
    logits = head(torch.randn(6, 4, 8), num_choices=2)
    head.loss(logits, torch.tensor([0, 1, 1])).backward()
    assert all(p.grad is not None for p in head.parameters())

"""Randomly initialised task heads: plain ``torch.nn`` modules, independent of how the encoder is adapted.

Every head maps the encoder's last hidden states (B, n, hidden_size) to logits and has a
``loss(logits, labels)`` method; heads are registered by name (``build_head("span", ...)``).
"""
from .choice import MultipleChoiceHead
from .registry import HEADS, build_head, register_head
from .sequence import RegressionHead, SequenceClassificationHead
from .span import SpanHead
from .span_pair import SpanPairClassificationHead
from .token import IGNORE_INDEX, TokenClassificationHead

__all__ = [
    "HEADS",
    "IGNORE_INDEX",
    "MultipleChoiceHead",
    "RegressionHead",
    "SequenceClassificationHead",
    "SpanHead",
    "SpanPairClassificationHead",
    "TokenClassificationHead",
    "build_head",
    "register_head",
]

"""Randomly initialised task heads: plain ``torch.nn`` modules, independent of how the encoder is adapted.

Every head maps the encoder's hidden states (B, n, hidden_size) to logits and has a
``loss(logits, labels)`` method; heads are registered by name (``build_head("span", ...)``) and
share a small base (``Head``: ``config_keys``, default loss).  ``Pooler`` is the sequence pooling
the sequence-level heads use (``POOLING``: the first token, the mean of the real tokens, or the last real token,
a decoder's).
"""
from .base import IGNORE_INDEX, Head
from .choice import MultipleChoiceHead
from .pooling import POOLING, Pooler, masked_mean
from .registry import HEADS, build_head, register_head
from .sequence import RegressionHead, SequenceClassificationHead
from .span import SpanHead
from .span_pair import SpanPairClassificationHead
from .token import TokenClassificationHead

__all__ = [
    "HEADS",
    "IGNORE_INDEX",
    "POOLING",
    "Head",
    "MultipleChoiceHead",
    "Pooler",
    "RegressionHead",
    "SequenceClassificationHead",
    "SpanHead",
    "SpanPairClassificationHead",
    "TokenClassificationHead",
    "build_head",
    "masked_mean",
    "register_head",
]

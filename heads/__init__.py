"""Randomly initialised task heads: plain ``torch.nn`` modules, independent of how the encoder is adapted.

Every head maps the encoder's hidden states (B, n, hidden_size) to logits and has a
``loss(logits, labels)`` method; heads are registered by name (``build_head("span", ...)``) and
share a small base (``Head``: ``config_keys``, default loss).  ``Pooler`` is the sequence pooling
the sequence-level heads use (``POOLING``: the first token, the mean of the real tokens, or the last real token,
a decoder's).

``POOLING`` (``choices.py``) is importable without torch, for the command line's ``--help``; the first other name
asked of this package imports every head (torch), so the registry holds them all.
"""
from __future__ import annotations

import importlib
from typing import Any

from .choices import POOLING

# name -> the module that defines it
_NAMES = {
    "IGNORE_INDEX": "base", "Head": "base", "MultipleChoiceHead": "choice", "Pooler": "pooling",
    "masked_mean": "pooling", "HEADS": "registry", "build_head": "registry", "register_head": "registry",
    "RegressionHead": "sequence", "SequenceClassificationHead": "sequence", "SpanHead": "span",
    "SpanPairClassificationHead": "span_pair", "TokenClassificationHead": "token",
}


def __getattr__(name: str) -> Any:
    if name not in _NAMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    for module in dict.fromkeys(_NAMES.values()):  # every head registers itself in HEADS when imported
        importlib.import_module(f"{__name__}.{module}")
    globals().update({n: getattr(importlib.import_module(f"{__name__}.{m}"), n) for n, m in _NAMES.items()})
    return globals()[name]


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

"""What every head shares: its settings (``config_keys``, as sentence-transformers' ``Module``) and a default loss."""
from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn

IGNORE_INDEX = -100  # label of positions that carry none (sub-tokens, special tokens, padding)


class Head(nn.Module):
    """Maps an encoder's hidden states (B, n, hidden_size) to logits; knows nothing of how the encoder was adapted.

    ``config_keys`` name the constructor arguments, stored as attributes of the same name, so that
    ``type(head)(**head.config)`` rebuilds it (artifacts record ``head_name`` and ``config``).
    The default loss is cross-entropy over the last dimension, ignoring ``IGNORE_INDEX`` labels.
    """

    config_keys: ClassVar[tuple[str, ...]] = ("hidden_size", "dropout")
    head_name: ClassVar[str] = ""  # set by @register_head

    @property
    def config(self) -> dict[str, Any]:
        return {key: getattr(self, key) for key in self.config_keys}

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1).long(),
                                           ignore_index=IGNORE_INDEX)

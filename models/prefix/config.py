"""Settings of deep prefix tuning (P-tuning v2)."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass
class PrefixConfig:
    """``prefix_len`` virtual key/value rows per layer.

    With ``reparameterize`` the rows come from a small MLP over a (prefix_len, kv_dim)
    embedding (the prefix-tuning trick that stabilises training); without it they are
    the parameters themselves.  Either way the MLP can be folded away after training.
    """

    prefix_len: int = 32
    reparameterize: bool = False
    hidden_size: int = 512  # MLP hidden size when reparameterizing
    dropout: float = 0.1  # dropout on the prefix keys/values during training
    init_std: float | None = None  # None: N(0, 1) like nn.Embedding (as the reference code)

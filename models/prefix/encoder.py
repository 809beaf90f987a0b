"""Trainable prefix parameters and their expansion into per-layer keys and values."""
from __future__ import annotations

import torch
from torch import nn

from ..methods.configs import PrefixConfig
from .injection import PrefixKV


class PrefixEncoder(nn.Module):
    """Produces, for each of ``num_layers`` layers, a key and a value of shape (B, P, kv_dim).

    Parameter count: ``P * num_layers * 2 * kv_dim`` without reparameterization; with it,
    ``P * kv_dim`` for the embedding plus the MLP ``kv_dim -> hidden -> num_layers*2*kv_dim``.
    In eval mode the (P, layers, 2, kv_dim) table is computed once and reused, so inference
    never runs the MLP per batch.
    """

    def __init__(self, config: PrefixConfig, num_layers: int, kv_dim: int) -> None:
        super().__init__()
        self.config, self.num_layers, self.kv_dim = config, num_layers, kv_dim
        out_dim = num_layers * 2 * kv_dim
        if config.reparameterize:
            self.embedding = nn.Embedding(config.prefix_len, kv_dim)
            self.mlp = nn.Sequential(
                nn.Linear(kv_dim, config.hidden_size), nn.Tanh(), nn.Linear(config.hidden_size, out_dim)
            )
        else:
            self.embedding = nn.Embedding(config.prefix_len, out_dim)
            self.mlp = None
        if config.init == "zeros":
            nn.init.zeros_(self.embedding.weight)
        elif config.init_std is not None:
            nn.init.normal_(self.embedding.weight, std=config.init_std)
        self.dropout = nn.Dropout(config.dropout)
        self._cache: torch.Tensor | None = None

    def table(self) -> torch.Tensor:
        """All prefix rows as one (P, layers, 2, kv_dim) tensor."""
        rows = self.embedding.weight
        if self.mlp is not None:
            rows = self.mlp(rows)
        return rows.view(self.config.prefix_len, self.num_layers, 2, self.kv_dim)

    def set_table(self, table: torch.Tensor) -> None:
        """Set the rows of a plain prefix from a (P, layers, 2, kv_dim) table."""
        if self.mlp is not None:
            raise ValueError("a reparameterized prefix has no rows of its own to set")
        with torch.no_grad():
            self.embedding.weight.copy_(table.reshape(self.embedding.weight.shape))
        self._cache = None

    def train(self, mode: bool = True) -> "PrefixEncoder":
        self._cache = None  # parameters may change while training
        return super().train(mode)

    def _apply(self, fn, recurse: bool = True):
        self._cache = None  # .to(device/dtype) moves the parameters; the cached table is rebuilt from them
        return super()._apply(fn, recurse)

    def _load_from_state_dict(self, *args, **kwargs) -> None:
        self._cache = None
        super()._load_from_state_dict(*args, **kwargs)

    def current_table(self) -> torch.Tensor:
        """The (P, layers, 2, kv_dim) table a forward uses: with dropout while training, computed once in eval."""
        if self.training:
            return self.dropout(self.table())
        if self._cache is None:
            with torch.no_grad():
                self._cache = self.table().detach()
        return self._cache

    def forward(self, batch_size: int) -> PrefixKV:
        # (P, L, 2, D) -> per layer (B, P, D) views; expand() shares memory across the batch
        table = self.current_table().permute(1, 2, 0, 3)
        return [
            (table[i, 0].expand(batch_size, -1, -1), table[i, 1].expand(batch_size, -1, -1))
            for i in range(self.num_layers)
        ]

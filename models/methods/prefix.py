"""P-tuning v2: deep prefix keys/values in every attention layer of a frozen encoder."""
from __future__ import annotations

import torch
from torch import nn
from transformers.modeling_outputs import BaseModelOutput

from ..prefix.encoder import PrefixEncoder
from ..prefix.injection import attention_modules, inject_prefix, kv_width
from .base import AdaptationMethod, run_backbone
from .configs import PrefixConfig


class DeepPrefix(AdaptationMethod):
    """Injects a prefix slot into ``backbone`` (``models/prefix/injection.py``) and fills it for each forward.

    The tokens keep positions 0..n-1 and the prefix uses no input position.
    """

    name = "prefix"

    def __init__(self, backbone: nn.Module, config: PrefixConfig) -> None:
        super().__init__(backbone, config)
        layers = len(attention_modules(backbone))
        self.slot = inject_prefix(backbone)
        self.encoder = PrefixEncoder(config, layers, kv_width(backbone))

    def encode(self, backbone: nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor,
               token_type_ids: torch.Tensor | None = None, all_layers: bool = False) -> BaseModelOutput:
        with self.slot.holding(self.encoder(input_ids.shape[0])):
            return run_backbone(backbone, all_layers, input_ids=input_ids, attention_mask=attention_mask,
                                token_type_ids=token_type_ids)

    @classmethod
    def encode_rows(cls, backbone: nn.Module, parts: list[tuple["DeepPrefix", int]], input_ids: torch.Tensor,
                    attention_mask: torch.Tensor, token_type_ids: torch.Tensor | None = None,
                    all_layers: bool = False) -> BaseModelOutput:
        """Each row with its own task's prefix: shorter prefixes are padded to the longest and their padding
        rows masked out of attention (``PrefixSlot.key_mask``)."""
        tables = [method.encoder.current_table() for method, _ in parts]
        longest = max(t.shape[0] for t in tables)
        rows_table, rows_mask = [], []
        for table, (_, count) in zip(tables, parts):
            padded = table.new_zeros(longest, *table.shape[1:])
            padded[: table.shape[0]] = table
            rows_table.append(padded.expand(count, *padded.shape))
            rows_mask.append((torch.arange(longest, device=table.device) < table.shape[0]).expand(count, longest))
        table = torch.cat(rows_table)  # (R, P, layers, 2, kv_dim)
        kv = [(table[:, :, layer, 0], table[:, :, layer, 1]) for layer in range(table.shape[2])]
        mask = torch.cat(rows_mask) if any(t.shape[0] != longest for t in tables) else None
        with parts[0][0].slot.holding(kv, mask):
            return run_backbone(backbone, all_layers, input_ids=input_ids, attention_mask=attention_mask,
                                token_type_ids=token_type_ids)

    @torch.no_grad()
    def init_from_tokens(self, backbone: nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                         token_type_ids: torch.Tensor | None = None, eligible: torch.Tensor | None = None,
                         generator: torch.Generator | None = None) -> torch.Tensor:
        """Set the prefix rows to the frozen encoder's own keys/values of ``prefix_len`` real tokens.

        The batch runs once through the encoder without a prefix; P positions are drawn among the
        ``eligible`` ones (default: every unmasked token), without replacement while there are enough,
        and each layer's key and value rows at those positions become that layer's prefix rows.
        Returns the chosen (row, column) positions.
        """
        eligible = attention_mask.bool() if eligible is None else eligible.bool() & attention_mask.bool()
        candidates = eligible.nonzero()
        if not len(candidates):
            raise ValueError("no token to take keys/values from")
        count, length = len(candidates), self.config.prefix_len
        order = torch.randperm(count, generator=generator)
        picks = candidates[order.repeat(-(-length // count))[:length]]  # cycle when there are fewer tokens
        training = backbone.training
        backbone.eval()  # the encoder's own K/V: no dropout
        with self.slot.recording() as recorded:
            run_backbone(backbone, False, input_ids=input_ids, attention_mask=attention_mask,
                         token_type_ids=token_type_ids)
        backbone.train(training)
        layers = self.encoder.num_layers
        table = torch.stack([torch.stack([recorded[(layer, which)][picks[:, 0], picks[:, 1]] for which in (0, 1)])
                             for layer in range(layers)])  # (layers, 2, P, kv_dim)
        self.encoder.set_table(table.permute(2, 0, 1, 3))
        return picks

    def checkpointing_kwargs(self) -> dict:
        return {"context_fn": self.slot.checkpoint_contexts}  # recomputed layers see their forward's prefix

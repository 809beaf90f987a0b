"""One collator for batches of any member: the member's own collator, plus which member it is."""
from __future__ import annotations

import torch


class MemberCollator:
    """Features carry ``task_index``; a batch (always from one member) goes through that member's collator."""

    def __init__(self, collators: list) -> None:
        self.collators = collators

    def __call__(self, features: list[dict]) -> dict[str, torch.Tensor]:
        index = {f["task_index"] for f in features}
        if len(index) != 1:
            raise ValueError("a multi-task batch mixes members: the sampler draws one member per batch")
        task = index.pop()
        batch = self.collators[task]([{k: v for k, v in f.items() if k != "task_index"} for f in features])
        batch["task_index"] = torch.full((len(features),), task, dtype=torch.long)
        return batch

"""Batches of a multi-task run: every batch from one dataset (drawn proportionally or with a temperature), collated
by that dataset's own task."""
from __future__ import annotations

import math

import torch


def dataset_weights(sizes: list[int], temperature: float) -> list[float]:
    """Probability of drawing each dataset's batch: size^(1/T), normalised (T=1: proportional to size)."""
    raw = [size ** (1.0 / temperature) for size in sizes]
    return [r / sum(raw) for r in raw]


class TaskBatchSampler:
    """Yields lists of indices into the concatenation of the datasets, one dataset per batch.

    An epoch has as many batches as the datasets have in all (sum of ceil(size / batch)). Each batch's
    dataset is drawn by ``dataset_weights``; a dataset whose batches run out within an epoch starts a
    fresh shuffle.  The order depends only on (seed, epoch), so a run resumed mid-epoch replays it.

    ``rows`` is the batch size of one process and one step (the Trainer accumulates gradients over as many
    steps as --grad-accum says).  It is deliberately not called ``batch_size``: accelerate shards a batch sampler
    across processes by whole batches only when it has no fixed batch size; with one, a short batch at a
    group boundary made it drop the group and fill the last group with indices of other batches, which
    could belong to another dataset.
    """

    def __init__(self, sizes: list[int], rows: int, temperature: float = 1.0, seed: int = 0) -> None:
        self.sizes, self.rows, self.seed = sizes, rows, seed
        self.weights = dataset_weights(sizes, temperature)
        self.offsets = [sum(sizes[:i]) for i in range(len(sizes))]
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return sum(math.ceil(size / self.rows) for size in self.sizes)

    def _batches(self, task: int, generator: torch.Generator) -> list[list[int]]:
        order = (torch.randperm(self.sizes[task], generator=generator) + self.offsets[task]).tolist()
        return [order[i: i + self.rows] for i in range(0, len(order), self.rows)]

    def __iter__(self):
        generator = torch.Generator().manual_seed(self.seed * 1000 + self.epoch)
        queues = [self._batches(t, generator) for t in range(len(self.sizes))]
        draws = torch.multinomial(torch.tensor(self.weights), len(self), replacement=True, generator=generator)
        for task in draws.tolist():
            if not queues[task]:
                queues[task] = self._batches(task, generator)
            yield queues[task].pop(0)


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

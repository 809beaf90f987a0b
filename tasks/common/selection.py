"""Choosing checkpoints on dev data only: the split to select on, and what metrics.json says was chosen."""
from __future__ import annotations

import random

from .family import TaskData


def hold_out(data: TaskData, fraction: float, seed: int) -> tuple[list, list, str]:
    """(training examples, held-out selection examples, description): a seeded share of the training data.

    With ``train_groups`` whole groups move (every question of an article), so that no group is on
    both sides; otherwise single examples.
    """
    groups = data.train_groups or [str(i) for i in range(len(data.train))]
    names = list(dict.fromkeys(groups))
    if len(names) < 2:
        raise ValueError(f"{data.train_source}: too few examples or groups to hold some out for selection")
    count = min(max(round(len(names) * fraction), 1), len(names) - 1)
    chosen = set(random.Random(seed).sample(names, count))
    kept = [e for e, g in zip(data.train, groups) if g not in chosen]
    held = [e for e, g in zip(data.train, groups) if g in chosen]
    unit = "groups" if data.train_groups else "examples"
    return kept, held, (f"{data.train_source} [held out for selection: {count} of {len(names)} {unit}, "
                        f"{len(held)} examples, seed {seed}]")


def selection_record(log_history: list[dict], metric: str, best_step: int | None, split: str, source: str,
                     selected: bool) -> dict:
    """Every dev evaluation during training, and which one was chosen (when ``selected``)."""
    key = f"eval_{metric}"
    history = [{"step": e["step"], "epoch": round(e["epoch"], 3), "train_seconds": e.get("train_seconds"),
                "dev": e[key]} for e in log_history if key in e]
    record = {"split": split, "source": source, "metric": metric, "history": history, "selected": selected}
    chosen = next((h for h in history if h["step"] == best_step), None)
    if selected and chosen is not None:
        record.update(best_step=chosen["step"], best_epoch=chosen["epoch"], best_dev=chosen["dev"])
    return record

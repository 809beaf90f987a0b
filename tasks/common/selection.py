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


def hold_out_jointly(datas: dict[str, TaskData], fraction: float, seed: int) -> dict[str, tuple[list, list, str]]:
    """``hold_out`` for several datasets of one run: datasets with groups hold out one set of groups drawn from all
    of theirs (a group two datasets share is held out of both: SQuAD 2.0's training set holds SQuAD 1.1's
    articles, so separate draws would train one on the other's held-out articles); the others draw alone."""
    grouped = {name: data for name, data in datas.items() if data.train_groups}
    out = {name: hold_out(data, fraction, seed) for name, data in datas.items() if name not in grouped}
    if len(grouped) < 2:
        return {**out, **{name: hold_out(data, fraction, seed) for name, data in grouped.items()}}
    union = TaskData([g for d in grouped.values() for g in d.train_groups], "every dataset", {}, "",
                     train_groups=[g for d in grouped.values() for g in d.train_groups])
    _, held, _ = hold_out(union, fraction, seed)
    chosen = set(held)
    for name, data in grouped.items():
        kept = [e for e, g in zip(data.train, data.train_groups) if g not in chosen]
        taken = [e for e, g in zip(data.train, data.train_groups) if g in chosen]
        if not kept or not taken:
            raise ValueError(f"{name}: holding out {len(chosen)} groups shared by the datasets leaves one side empty")
        out[name] = (kept, taken, f"{data.train_source} [held out for selection: {len(chosen)} groups shared by "
                                  f"{', '.join(grouped)}, {len(taken)} examples, seed {seed}]")
    return out


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

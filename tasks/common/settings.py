"""Typed settings of a run, built once from the command line (``cli.py``); nothing below sees argparse."""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class ModelSettings:
    """Encoder, adaptation method (its config already built and checked) and what the head reads."""

    model: str | None  # hub name or folder; None or the bundled alias: the bundled encoder
    method: str = "prefix"
    method_config: Any = None  # a dataclass of models.methods.configs (None: the method's defaults)
    head_dropout: float = 0.1
    layers: str = "last"  # the head reads the last layer, or a learned mix of all ("mix")
    pooling: str = "first"  # sequence-level heads pool the first token or the mean ("mean")
    gradient_checkpointing: bool = False
    encoder_dropout: float | None = None  # the encoder's dropout while training; None: its own config's


@dataclass
class TrainSettings:
    output_dir: Path
    lr: float | None = None  # None: the method's default (models.methods.configs)
    epochs: float = 3
    batch_size: int = 16
    eval_batch_size: int = 64
    grad_accum: int = 1
    weight_decay: float = 0.0
    warmup: float = 0.0  # ratio of steps (<1) or a step count
    max_length: int = 256
    seed: int = 42
    bf16: bool = False
    fp16: bool = False
    save_steps: int = 0  # 0: checkpoint at each epoch end only
    logging_steps: int = 50
    resume: bool = False
    # the reference protocol: dev evaluation during training, the best dev checkpoint, per-epoch decay
    eval_every: str | None = None  # "epoch", or a number of optimizer steps; None: no dev evaluation
    select_best: bool = False  # load the checkpoint with the best dev headline metric at the end
    dev_fraction: float = 0.1  # held out of the training data for selection when the family has no dev split
    schedule: str = "linear"  # linear | constant | exponential (lr x lr_decay per epoch)
    lr_decay: float = 0.95
    head_lr: float | None = None  # the head's (and layer mix's) own learning rate; None: --lr
    max_steps: int | None = None  # optimizer steps in all, instead of --epochs
    init_from: Path | None = None  # start the method (and a matching head) from this artifact
    eval_precision: str = "fp32"  # the backbone's precision when evaluating (models/precision.py)


@dataclass
class DataSettings:
    data_dir: str | None = None
    max_train_samples: int | None = None
    max_eval_samples: int | None = None


@dataclass
class RunSettings:
    """Everything a training run needs; ``task`` is the family's own settings dataclass."""

    model: ModelSettings
    train: TrainSettings
    data: DataSettings
    task: Any
    flags: dict[str, str] = field(default_factory=dict)  # the command line as parsed, recorded in metrics.json


@dataclass
class PredictSettings:
    """``predict``: an artifact applied to inputs; ``task`` holds the family's own predict settings."""

    artifact: Path
    model: str | None = None  # encoder to load the artifact onto (default: the one it names)
    eval_batch_size: int = 64
    task: Any = None
    member: str | None = None  # which task of a multi-task artifact
    precision: str = "fp32"  # the backbone's precision: fp32, bf16 (native bf16 hardware only) or int8


def train_subset(items: list, count: int | None, seed: int) -> list:
    """A seeded random subset of ``count`` items in their original order (all if ``count`` is None)."""
    if count is None or count >= len(items):
        return items
    keep = sorted(random.Random(seed).sample(range(len(items)), count))
    return [items[i] for i in keep]

"""Model outputs -> one prediction per example, by kind."""
from __future__ import annotations

import numpy as np

from .features import Inputs
from .spec import Example, TaskSpec


def argmax(spec: TaskSpec, examples: list[Example], encoded: Inputs, logits: np.ndarray) -> list[int]:
    """Class or choice index."""
    return [int(i) for i in logits.argmax(-1)]


def scores(spec: TaskSpec, examples: list[Example], encoded: Inputs, logits: np.ndarray) -> list[float]:
    return [float(x) for x in logits.reshape(-1)]


def per_option(spec: TaskSpec, examples: list[Example], encoded: Inputs, logits: np.ndarray) -> list:
    """Each option's true-minus-false margin, regrouped per example and turned into its prediction by ``choose``."""
    margins = logits[:, 1] - logits[:, 0]
    per_example: list[list[float]] = [[] for _ in examples]
    for owner, margin in zip(encoded.owners, margins):
        per_example[owner].append(float(margin))
    return [spec.choose(example, m) for example, m in zip(examples, per_example)]


"""The flags of ``python -m tasks.multitask`` beside the family's own: fields, like every other setting."""
from __future__ import annotations

from dataclasses import dataclass

from models.options import option


@dataclass
class MultitaskSettings:
    tasks: list[str] = option(help="the datasets (named ones of the family, or NAME=FOLDER of local files)",
                              metavar="NAME[=FOLDER]")
    temperature: float = option(1.0, "draw each batch's dataset with probability size^(1/T): 1 is proportional to "
                                     "size, larger values favour the smaller datasets")

    def __post_init__(self) -> None:
        if not self.temperature > 0:
            raise ValueError(f"--temperature must be positive, got {self.temperature}")
        if len(self.tasks) < 2:
            raise ValueError("multi-task training needs at least two datasets (--tasks A B ...)")

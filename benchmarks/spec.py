"""What a benchmark suite is: rows (task commands), variants (methods or recipes) and seeds."""
from __future__ import annotations

from dataclasses import dataclass, field

from models.methods import METHODS as REGISTERED  # the method registry (importable without torch)

METHODS: tuple[str, ...] = tuple(REGISTERED)


@dataclass(frozen=True)
class Row:
    name: str
    module: str  # tasks.ner | tasks.qa | tasks.glue | tasks.superglue
    args: tuple[str, ...]  # task selector and budget flags
    metric_label: str  # how the table names the run's headline metric (metrics.json "headline", percent)
    budget: str = ""
    method_args: dict[str, tuple[str, ...]] = field(default_factory=dict)
    skip: dict[str, str] = field(default_factory=dict)  # method -> why it cannot run on this row
    max_gap: float | None = None  # quality target: prefix >= finetune - max_gap (points of the row metric)
    prefix_len: int | None = None  # --prefix-len for the methods that have one (not finetune)
    # the split whose headline metric is the row's quality (None: the run's headline, e.g. test for NER);
    # a search row reads dev, so that settings are chosen on dev data only
    split: str | None = None


@dataclass(frozen=True)
class Variant:
    """One column of a suite: a method (``--mode``) with extra flags (a recipe under study)."""

    name: str
    mode: str
    flags: tuple[str, ...] = ()


STANDARD = tuple(Variant(m, m) for m in METHODS)  # one column per registered method, its defaults


@dataclass(frozen=True)
class Suite:
    name: str
    description: str
    rows: tuple[Row, ...]
    seed: int = 42  # the first seed of every variant (its results keep the plain "row/variant" key)
    common: tuple[str, ...] = ()  # flags added to every command (e.g. --model)
    local_data: bool = True  # default $PTV2_DATA_DIR to ../shared/data (paper: full train sets from the hub)
    variants: tuple[Variant, ...] = STANDARD
    seeds: dict[str, tuple[int, ...]] = field(default_factory=dict)  # variant -> its seeds (default: seed)
    # the quality targets compare these variants: prefix >= reference - row.max_gap, prefix >= peer
    compare: tuple[str, str, str] = ("prefix", "finetune", "peft-prefix")

    def variant(self, name: str) -> Variant:
        return next(v for v in self.variants if v.name == name)

    def seeds_of(self, variant: str) -> tuple[int, ...]:
        return self.seeds.get(variant, (self.seed,))

    def key(self, row: str, variant: str, seed: int) -> str:
        """Store key: ``row/variant`` for the first seed (as stores before several seeds), else ``.../seedN``."""
        return f"{row}/{variant}" if seed == self.seeds_of(variant)[0] else f"{row}/{variant}/seed{seed}"


def command(suite: Suite, row: Row, variant: str, output_dir: str, seed: int | None = None) -> list[str]:
    """The exact task CLI argv (after ``python``) for one (row, variant, seed)."""
    v = suite.variant(variant)
    flags = REGISTERED[v.mode].config_class.FLAGS
    length = ()
    if row.prefix_len is not None and "prefix_len" in flags:  # finetune has no prefix length
        length = ("--prefix-len", str(row.prefix_len))
    elif row.prefix_len is not None and "lora_r" in flags:  # LoRA at the row prefix's trainable count (BERT: r = P/2)
        length = ("--lora-r", str(max(1, row.prefix_len // 2)))
    per_method = row.method_args.get(v.name, row.method_args.get(v.mode, ()))
    return ["-m", row.module, *row.args, *length, *suite.common, "--mode", v.mode, *per_method, *v.flags,
            "--seed", str(suite.seed if seed is None else seed), "--output-dir", output_dir]

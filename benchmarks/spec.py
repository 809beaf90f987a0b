"""The vocabulary of the declarations: a suite is rows (task commands) x variants (methods or recipes) x seeds;
a multi-task group is datasets trained alone and together.  Plus the small builders the declarations use,
so that ``suites.py`` and ``studies.py`` hold data only.
"""
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
    """One column of a suite: a registered method (``--method``) with extra flags (a recipe under study)."""

    name: str
    method: str
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
    # the quality targets compare these variants: prefix >= reference - row.max_gap, prefix >= peer; None: a suite
    # without that comparison (no margin column, no target row)
    compare: tuple[str, str | None, str | None] = ("prefix", "finetune", "peft-prefix")
    # quality target: on every row, the best variant that keeps the encoder frozen (any method, since a user can
    # pick per task) >= the reference - shared_gap; None: no such target
    shared_gap: float | None = None
    # quality target: the suite's variant >= this (variant, gap)'s variant - gap on every row (a peer at a similar
    # trainable count: is the gap specific to this method?); None: no such target
    near: tuple[str, float] | None = None
    # the suite whose fine-tuning runs are fine-tuning at its own best budget (more epochs, the best kept): the page
    # sets the best frozen-backbone variant against them too (issue 42); None: no such section
    best_budget: str | None = None
    # the suite's variant under its peer by less than their seeds' spreads counts as meeting ">= peer" (issue 42's
    # reading for the cpu suite); a search keeps the plain ">=": there a new recipe must be ahead to be adopted
    peer_within_spread: bool = False
    # the every-run table also shows each run's task headline (test, or dev for held-out rows), for a suite whose
    # verdict is on that split: searches leave it out, since they choose on the quality column only
    headline_column: bool = False

    def variant(self, name: str) -> Variant:
        return next(v for v in self.variants if v.name == name)

    def variant_names(self) -> list[str]:
        return [v.name for v in self.variants]

    def seeds_of(self, variant: str) -> tuple[int, ...]:
        return self.seeds.get(variant, (self.seed,))

    def key(self, row: str, variant: str, seed: int) -> str:
        """Store key: ``row/variant`` for the first seed (as stores before several seeds), else ``.../seedN``."""
        return f"{row}/{variant}" if seed == self.seeds_of(variant)[0] else f"{row}/{variant}/seed{seed}"


@dataclass(frozen=True)
class Group:
    """A multi-task comparison: each dataset alone, all of them together, together then alone (same steps)."""

    name: str
    family: str  # tasks.multitask's family argument
    module: str  # the single-task CLI
    selector: str  # its dataset flag
    targets: tuple[str, ...]
    steps: int
    flags: tuple[str, ...]  # every run's shared flags (the recipe)
    temperature: float = 2.0


# ---------------------------------------------------------------- builders used by the declarations
def prefix_variant(name: str, *flags: str) -> Variant:
    """A recipe of our prefix method: ``--method prefix`` and ``flags``."""
    return Variant(name, "prefix", flags)


def rates(prefix: str, finetune: str) -> dict[str, tuple[str, ...]]:
    """Per-method ``--lr``: ``prefix`` for the methods that train a prefix or prompt, ``finetune`` for finetune."""
    return {"prefix": ("--lr", prefix), "finetune": ("--lr", finetune), "prompt": ("--lr", prefix),
            "peft-prefix": ("--lr", prefix)}


def held_out_row(name: str, module: str, task: tuple[str, ...], prefix_len: int, budget: str, **kw) -> Row:
    """A sentence-level search row: the quality is the score on the held-out tenth of the training data."""
    return Row(name, module, (*task, "--eval-every", "epoch"), "held-out score", prefix_len=prefix_len,
               split="held-out", budget=budget, **kw)


def paper_row(name: str, module: str, model: tuple[str, ...], task: tuple[str, ...], protocol: tuple[str, ...],
              bs: int, lr: str, psl: int, epochs: int, max_len: int | None, label: str, **kw) -> Row:
    """A row of the P-tuning v2 authors' run scripts: their batch, rate, prefix length, epochs and max length,
    the family's reference ``protocol``, the best dev epoch; fine-tuning at lr 1e-5, our prefix with dropout 0.1."""
    flags = (*model, *task, "--batch-size", str(bs), "--epochs", str(epochs),
             *(("--max-length", str(max_len)) if max_len else ()), *protocol, "--select-best")
    method_args = rates(lr, "1e-5")
    method_args["prefix"] += ("--prefix-dropout", "0.1")
    return Row(name, module, flags, label, method_args=method_args, prefix_len=psl,
               budget=f"bs {bs}, lr {lr}, prefix {psl}, {epochs} epochs, best dev epoch", **kw)

"""The convergence study: suites whose columns are recipes (variants), each run with several seeds.

Search rows train on seeded subsets and read the *dev* score (``Row.split``), so that settings are
chosen on dev data only; the chosen recipe is then checked on the full data and test is read once
(the ``cpu`` suite).  ``python -m benchmarks.run --suite study-ner --jobs 2`` runs one of them;
benchmarks/README.md has the tables and what was adopted.
"""
from __future__ import annotations

from .suites import Row, Suite, Variant

SEEDS = (42, 1, 2)


def _prefix(name: str, *flags: str) -> Variant:
    return Variant(name, "prefix", flags)


MIX_NODROP = ("--layers", "mix", "--prefix-dropout", "0")

# CoNLL-2003 search: the probe budget (3,000 training sentences, 2 epochs, first 1,000 dev sentences)
NER_SEARCH = Suite(
    "study-ner", "CoNLL-2003 recipe search: 3,000 training sentences (seeded subset), 2 epochs, prefix 32, "
                 "dev F1 on the first 1,000 dev sentences",
    (Row("conll2003-3k", "tasks.ner", ("--dataset", "conll2003", "--max-train-samples", "3000",
                                       "--max-eval-samples", "1000", "--epochs", "2"),
         "dev F1", prefix_len=32, split="dev", budget="3,000 sentences x 2 epochs (376 steps of 16)"),),
    variants=(
        _prefix("prefix"),  # the original defaults: N(0, 1) init, lr 3e-2, prefix dropout 0.1, last layer
        _prefix("mix", "--layers", "mix"),
        _prefix("nodrop", "--prefix-dropout", "0"),
        _prefix("mix-nodrop", *MIX_NODROP),
        _prefix("mix-nodrop-head1e-2", *MIX_NODROP, "--head-lr", "1e-2"),
        _prefix("mix-nodrop-head1e-1", *MIX_NODROP, "--head-lr", "1e-1"),
        _prefix("mix-nodrop-lr1e-1", *MIX_NODROP, "--lr", "1e-1"),
        _prefix("mix-nodrop-len64", *MIX_NODROP, "--prefix-len", "64"),
        _prefix("mix-nodrop-tokens", *MIX_NODROP, "--prefix-init", "tokens"),
        _prefix("mix-nodrop-zeros", *MIX_NODROP, "--prefix-init", "zeros"),
        _prefix("mix-nodrop-exp", *MIX_NODROP, "--schedule", "exponential"),
        _prefix("mix-nodrop-warmup", *MIX_NODROP, "--warmup", "0.1"),
        _prefix("mix-reparam", "--layers", "mix", "--reparam", "--prefix-dropout", "0"),
        _prefix("mix-probe", "--layers", "mix", "--prefix-len", "0"),
        Variant("peft-prefix", "peft-prefix"),
        Variant("finetune", "finetune"),
    ),
    seeds={name: SEEDS for name in ("prefix", "mix", "nodrop", "mix-nodrop", "mix-nodrop-head1e-2",
                                    "mix-nodrop-head1e-1", "mix-nodrop-lr1e-1", "mix-nodrop-len64",
                                    "mix-nodrop-tokens", "mix-nodrop-zeros", "mix-nodrop-exp", "mix-nodrop-warmup",
                                    "mix-reparam", "mix-probe", "peft-prefix", "finetune")},
    compare=("mix-nodrop", "finetune", "prefix"),
)

STUDIES = (NER_SEARCH,)

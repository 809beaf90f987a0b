"""Benchmark suites: each row is one task CLI invocation, run once per method.

A row's command is ``python -m MODULE ARGS --mode METHOD --seed SEED --output-dir DIR`` plus
the row's per-method flags (learning rate).  Its quality is the ``headline`` the task writes into
metrics.json (one metric, in percent, chosen by the task family).  Rows only use flags every task CLI shares
(tasks/common/cli.py) and the task selector of its module, so a task module can change
its internals without touching this table.

Budgets (cpu suite): the bundled encoder on a 2-core CPU, every method the same epochs.
The intended way to run it is two invocations side by side, each with OMP_NUM_THREADS=1
(one core each, on different rows; results merge into one store).  "est." is the expected
wall time of the slower method (finetune) for one (row, method) under those conditions, from
step times seen at the start of such runs (RTE prefix ~1.4 s per batch of 16 on one thread);
the measured time of every run is in results/cpu.md.  Every (row, method) is meant to stay
under ~30 minutes, most under 15, so the suite can be completed across several invocations.
"""
from __future__ import annotations

from .spec import METHODS, REGISTERED, STANDARD, Row, Suite, Variant, command  # noqa: F401 (the suites' API)
from .studies import SEEDS, STUDIES


def _lr(prefix: str, finetune: str, prompt: str | None = None, peft: str | None = None) -> dict[str, tuple[str, ...]]:
    return {"prefix": ("--lr", prefix), "finetune": ("--lr", finetune), "prompt": ("--lr", prompt or prefix),
            "peft-prefix": ("--lr", peft or prefix)}


TINY = ("--epochs", "1", "--max-train-samples", "48", "--max-eval-samples", "48", "--batch-size", "8",
        "--eval-batch-size", "16", "--logging-steps", "5")

SMOKE = Suite("smoke", "tiny subsets, 1 epoch: proves the pipeline end to end in minutes (numbers mean nothing)", (
    Row("ner-conll2003", "tasks.ner", ("--dataset", "conll2003", *TINY), "test F1", prefix_len=8),
    Row("qa-squad1", "tasks.qa", ("--dataset", "squad", "--split-by-article", "0.5", "--max-length", "192", *TINY),
        "F1", prefix_len=8),
    Row("glue-sst2", "tasks.glue", ("--task", "sst2", *TINY), "dev acc.", prefix_len=8),
    Row("superglue-copa", "tasks.superglue", ("--task", "copa", *TINY), "val acc.", prefix_len=8),
))

# cpu suite: the bundled encoder, full local data unless a subset is named; learning rates are each
# method's default (``default_lr`` of its config in models/methods/configs.py) unless a row gives one.
CPU = Suite("cpu", "bundled encoder (all-MiniLM-L6-v2) on this 2-core CPU; each (row, method) under ~30 min", (
    Row("ner-conll2003", "tasks.ner", ("--dataset", "conll2003", "--epochs", "2"),
        "test F1", budget="2 epochs x 14,041 sentences (1,756 steps of 16); est. 20 min (finetune)",
        max_gap=1.0, prefix_len=32),
    Row("ner-conll2004", "tasks.ner", ("--dataset", "conll2004", "--epochs", "10"),
        "test F1", budget="10 epochs x 922 sentences (580 steps of 16); est. 17 min", prefix_len=32),
    Row("qa-squad1-split", "tasks.qa", ("--dataset", "squad", "--split-by-article", "0.5", "--max-length", "256",
                                        "--epochs", "1"),
        "F1 (2nd half)", max_gap=2.0,
        budget="1 epoch on the first 24 articles (5,696 questions, 6,687 256-token windows, 418 steps) "
               "+ eval on the other 24; est. 60 min for finetune on one core: over the ~30 min aim", prefix_len=16),
    Row("superglue-rte", "tasks.superglue", ("--task", "rte", "--epochs", "4",
                                             "--max-length", "128"),
        "val acc.", budget="4 epochs x 2,490 pairs (624 steps); est. 25 min", prefix_len=32),
    Row("superglue-cb", "tasks.superglue", ("--task", "cb", "--epochs", "10",
                                            "--max-length", "128"),
        "val acc.", budget="10 epochs x 250 (160 steps); est. 6 min", prefix_len=16),
    Row("superglue-copa", "tasks.superglue", ("--task", "copa", "--epochs", "15"),
        "val acc.", budget="15 epochs x 400 x 2 choices (375 steps); est. 5 min", prefix_len=8),
    Row("superglue-wic", "tasks.superglue", ("--task", "wic", "--epochs", "2",
                                             "--max-length", "128", "--max-train-samples", "3000"),
        "val acc.", budget="2 epochs x 3,000 of 5,428 pairs (seeded random subset; 376 steps); est. 7 min",
        prefix_len=8),
    Row("superglue-boolq-split", "tasks.superglue", ("--task", "boolq", "--split-dev", "0.5", "--epochs", "2",
                                                     "--max-length", "128"),
        "val acc. (2nd half)", budget="no local train split: 2 epochs on the first 1,635 val questions "
                                           "(206 steps, passages cut at 128 tokens), evaluated on the other "
                                           "1,635; est. 10 min", prefix_len=16),
    Row("glue-cola", "tasks.glue", ("--task", "cola", "--epochs", "2"),
        "dev MCC",
        budget="2 epochs x 8,551 sentences (1,070 steps); est. 7 min", prefix_len=16),
    Row("glue-sst2-5k", "tasks.glue", ("--task", "sst2", "--epochs", "2",
                                        "--max-train-samples", "5000"),
        "dev acc.", budget="2 epochs x 5,000 of 67,349 sentences (seeded random subset; 626 steps); est. 5 min",
        prefix_len=16),
    Row("glue-stsb", "tasks.glue", ("--task", "stsb", "--epochs", "2", "--max-length", "128",
                                    "--max-train-samples", "3000"),
        "dev Pearson",
        # lr 3e-2 (the prefix default) diverged on this regression task (MSE loss 3-4, Pearson 17.99);
        # session 1 reached 67.7 at 1e-2 on a smaller budget
        method_args={"prefix": ("--lr", "1e-2"), "peft-prefix": ("--lr", "1e-2")},
        budget="2 epochs x 3,000 of 5,749 pairs (seeded random subset; 376 steps); prefix lr 1e-2; est. 8 min",
        prefix_len=16),
    # the prefix methods' margins over each other are within a few points: three seeds each; finetune and prompt
    # one (their margins are far outside the seed spread)
), seeds={"prefix": SEEDS, "peft-prefix": SEEDS})

# paper suite: P-tuning v2 (Liu et al. 2022) settings from the authors' run scripts (RoBERTa-large:
# batch, lr, prefix length, epochs, max length, seed 11).  The reference repository ships no DeBERTa
# scripts; its rows reuse the RoBERTa settings.  Fine-tuning uses lr 1e-5 (the usual large-model value)
# at the same budget.  Needs a GPU and network (models and data from the hub); peft-prefix cannot run on
# DeBERTa (it takes no past_key_values).
NO_PEFT_DEBERTA = {"peft-prefix": "DeBERTa-v2 takes no past_key_values, so PEFT prefix tuning cannot run on it"}
ROBERTA, DEBERTA = ("--model", "roberta-large"), ("--model", "microsoft/deberta-v2-xlarge")


# the reference protocol per family: dev scored after every epoch and the best epoch's checkpoint reported;
# the rate decays x0.95 once per epoch for NER and QA, linearly without warm-up for SuperGLUE; one rate for
# prefix and head; fp32; the head reads the last layer; prefix dropout (ours only: PEFT has none) 0.1 (not
# the NER and QA recipe, tasks/common/family.py)
PAPER_PROTOCOL = {"tasks.ner": ("--schedule", "exponential", "--lr-decay", "0.95", "--layers", "last"),
                  "tasks.qa": ("--schedule", "exponential", "--lr-decay", "0.95", "--layers", "last"),
                  "tasks.superglue": ("--schedule", "linear", "--warmup", "0")}


def _paper(name: str, module: str, model: tuple[str, ...], task: tuple[str, ...], bs: int, lr: str, psl: int,
           epochs: int, max_len: int | None, label: str, **kw) -> Row:
    flags = (*model, *task, "--batch-size", str(bs), "--epochs", str(epochs),
             *(("--max-length", str(max_len)) if max_len else ()), *PAPER_PROTOCOL[module], "--select-best")
    method_args = _lr(lr, "1e-5")
    method_args["prefix"] += ("--prefix-dropout", "0.1")
    return Row(name, module, flags, label, method_args=method_args, prefix_len=psl,
               budget=f"bs {bs}, lr {lr}, prefix {psl}, {epochs} epochs, best dev epoch", **kw)


PAPER = Suite("paper", "P-tuning v2 paper settings on RoBERTa-large / DeBERTa-v2-xlarge (GPU and network needed)", (
    _paper("ner-conll2003-roberta", "tasks.ner", ROBERTA, ("--dataset", "conll2003"), 16, "3e-2", 11, 30, 152,
           "test F1"),
    _paper("ner-conll2004-roberta", "tasks.ner", ROBERTA, ("--dataset", "conll2004"), 32, "6e-2", 144, 80, 128,
           "test F1"),
    _paper("qa-squad1-roberta", "tasks.qa", ROBERTA, ("--dataset", "squad",), 8, "5e-3", 16, 30, None,
           "dev F1"),
    _paper("qa-squad2-roberta", "tasks.qa", ROBERTA, ("--dataset", "squad_v2",), 8, "5e-3", 8, 10, None,
           "dev F1"),
    _paper("superglue-rte-roberta", "tasks.superglue", ROBERTA, ("--task", "rte"), 32, "5e-3", 128, 100, 128,
           "val acc."),
    _paper("superglue-boolq-roberta", "tasks.superglue", ROBERTA, ("--task", "boolq"), 32, "7e-3", 8, 100, 128,
           "val acc."),
    _paper("superglue-copa-roberta", "tasks.superglue", ROBERTA, ("--task", "copa"), 16, "9e-3", 8, 120, 128,
           "val acc."),
    _paper("superglue-wic-roberta", "tasks.superglue", ROBERTA, ("--task", "wic"), 32, "1e-2", 8, 50, 128,
           "val acc."),
    _paper("ner-conll2003-deberta", "tasks.ner", DEBERTA, ("--dataset", "conll2003"), 16, "3e-2", 11, 30, 152,
           "test F1", skip=NO_PEFT_DEBERTA),
    _paper("qa-squad1-deberta", "tasks.qa", DEBERTA, ("--dataset", "squad",), 8, "5e-3", 16, 30, None,
           "dev F1", skip=NO_PEFT_DEBERTA),
    _paper("qa-squad2-deberta", "tasks.qa", DEBERTA, ("--dataset", "squad_v2",), 8, "5e-3", 8, 10, None,
           "dev F1", skip=NO_PEFT_DEBERTA),
    _paper("superglue-rte-deberta", "tasks.superglue", DEBERTA, ("--task", "rte"), 32, "5e-3", 128, 100, 128,
           "val acc.", skip=NO_PEFT_DEBERTA),
), seed=11, local_data=False)

SUITES = {suite.name: suite for suite in (SMOKE, CPU, PAPER, *STUDIES)}

"""The suites, declared as data: each row is one task CLI invocation, run once per variant and seed.

``smoke`` proves the pipeline, ``cpu`` is the table every method is compared on (bundled encoder, a 2-core CPU),
``paper`` holds the P-tuning v2 authors' settings; the convergence studies are in ``studies.py``.  How a row
becomes a command: ``commands.py``.  A row's quality is the ``headline`` the task writes into metrics.json (one
metric, in percent, chosen by the task family).

Budgets (cpu suite): the bundled encoder on a 2-core CPU, every method the same epochs.  The intended way to run
it is two invocations side by side, each with OMP_NUM_THREADS=1 (one core each, on different rows; results merge
into one store).  "est." is the expected wall time of the slower method (finetune) for one (row, method) under
those conditions, from step times seen at the start of such runs; the measured time of every run is in
results/cpu.md.  Every (row, method) is meant to stay under ~30 minutes, most under 15, so the suite can be
completed across several invocations.
"""
from __future__ import annotations

from .spec import REGISTERED, STANDARD, Row, Suite, Variant, paper_row
from .studies import SEEDS, STUDIES, WARM_FROM

TINY = ("--epochs", "1", "--max-train-samples", "48", "--max-eval-samples", "48", "--batch-size", "8",
        "--eval-batch-size", "16", "--logging-steps", "5")

SMOKE = Suite("smoke", "tiny subsets, 1 epoch: proves the pipeline end to end in minutes (numbers mean nothing)", (
    Row("ner-conll2003", "tasks.ner", ("--dataset", "conll2003", *TINY), "test F1", prefix_len=8),
    Row("qa-squad1", "tasks.qa", ("--dataset", "squad", "--split-by-article", "0.5", "--max-length", "192", *TINY),
        "F1", prefix_len=8),
    Row("glue-sst2", "tasks.glue", ("--task", "sst2", *TINY), "dev acc.", prefix_len=8),
    Row("superglue-copa", "tasks.superglue", ("--task", "copa", *TINY), "val acc.", prefix_len=8),
))

# LoRA in every linear layer (feed-forward included), the configuration AdaLoRA's paper compares with: the peer
# table's second LoRA (issue 42), beside PEFT's default (the attention query and value projections); at its own
# default rate (ALL_LINEAR_LR since study-peers-lr and study-adalora-cola; the cells before that ran at 3e-3 and are
# in git history)
LORA_ALL = Variant("lora-all", "lora", ("--lora-targets", "all-linear"))
# prefix-lora with its deltas on the attention value/output and the feed-forward projections, rank 16 at rsLoRA's
# scale: study-ffn-deltas' leader on dev on both NER rows (beyond the spreads) and SST-2 (inside them), while its one
# RTE seed fell to about the majority rate (results/study-ffn-deltas.md); run beside prefix-lora's default so the cpu
# page reads it on every row's test data before any default moves
PREFIX_LORA_ALL16 = Variant("prefix-lora-all-r16", "prefix-lora",
                            ("--delta-targets", "all", "--delta-rank", "16", "--delta-scaling", "rslora"))

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
    # issue 39: SRL on CoNLL-2005, test WSJ as the headline (test Brown is in each run's metrics.json); the prefix
    # length of the token rows (the reference's 224 is for RoBERTa-large); the 8,000-predicate subset of
    # study-srl-mark, so that 12 methods x 3 seeds fit this machine (16,000 would double a run's ~8 min of training)
    # fine-tuning, the prefix and prefix-lora (the best shared-encoder method on the other rows) also score dev
    # every 250 steps: the time-to-quality plot (results/cpu_srl-conll2005_time_to_quality.png)
    # --decoding bio is the default since results/srl-decoding.md; named here because the default changed while the
    # row was running (the runner keeps a result while its command is the same)
    Row("srl-conll2005", "tasks.srl", ("--dataset", "conll2005", "--epochs", "2", "--max-train-samples", "8000",
                                       "--decoding", "bio"),
        "test WSJ F1", prefix_len=32,
        method_args={m: ("--eval-every", "250") for m in ("finetune", "prefix", "prefix-lora")},
        budget="2 epochs x 8,000 of 90,750 predicates (seeded random subset; 1,000 steps of 16) + eval on dev, "
               "test WSJ and test Brown (9,319 predicates); est. 11 min (prefix), 20 (finetune)"),
    Row("glue-stsb", "tasks.glue", ("--task", "stsb", "--epochs", "2", "--max-length", "128",
                                    "--max-train-samples", "3000"),
        "dev Pearson",
        # the prefix default 3e-2 diverged on this regression task (the first cpu suite, results/cpu-v1.md in git
        # history); 1e-2 trains
        method_args={"prefix": ("--lr", "1e-2"), "peft-prefix": ("--lr", "1e-2")},
        budget="2 epochs x 3,000 of 5,749 pairs (seeded random subset; 376 steps); prefix lr 1e-2; est. 8 min",
        prefix_len=16),
    # every method three seeds, fine-tuning included: the targets compare a frozen method's mean with fine-tuning's,
    # and a one-seed reference has no spread to read a 1-point gap against (issue 42)
), variants=(*STANDARD, LORA_ALL, PREFIX_LORA_ALL16),
    seeds={name: SEEDS for name in (*REGISTERED, LORA_ALL.name, PREFIX_LORA_ALL16.name)},
    # issue 26: some method that shares the frozen backbone is within 1 point of fine-tuning, and the prefix within 1
    # of LoRA (rank P/2: the same trainable count as the prefix)
    shared_gap=1.0, near=("lora", 1.0), best_budget="study-ft-budget", peer_within_spread=True)


def _longer(row: Row, times: int) -> Row:
    """A cpu row at ``times`` its epochs, scored after every epoch (dev, or the held-out tenth of train where dev is
    what the row reports) and the best epoch kept: where fine-tuning's own curve ends (issue 42)."""
    args = list(row.args)
    at = args.index("--epochs") + 1
    args[at] = str(int(args[at]) * times)
    return Row(row.name, row.module, (*args, "--select-best"), row.metric_label, prefix_len=row.prefix_len,
               budget=f"{times}x the cpu row's epochs, the best epoch kept; the cpu row: {row.budget}")


# issue 42: a frozen method is not "within a point of fine-tuning" against an under-trained fine-tuning (SQuAD's one
# epoch), so fine-tuning also runs each cpu row for 3x its epochs with --select-best (one seed); cpu.md sets the best
# frozen-backbone method against both.  The rows' other flags as in the cpu suite (SRL's every-250-steps scoring is
# the cpu page's time-to-quality plot and is left out here: the epochs are the points)
FT_BUDGET = Suite(
    "study-ft-budget", "Fine-tuning at 3x each cpu row's epochs, scored after every epoch and the best epoch kept "
                       "(--select-best): fine-tuning at its own best budget, against which cpu.md also reads the "
                       "frozen methods",
    tuple(_longer(row, 3) for row in CPU.rows),
    variants=(Variant("finetune", "finetune"),),
    compare=("finetune", None, None),
)

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
NER_QA_PROTOCOL = ("--schedule", "exponential", "--lr-decay", "0.95", "--layers", "last")
SUPERGLUE_PROTOCOL = ("--schedule", "linear", "--warmup", "0")
CONLL03, CONLL04 = ("--dataset", "conll2003"), ("--dataset", "conll2004")
SQUAD1, SQUAD2 = ("--dataset", "squad"), ("--dataset", "squad_v2")

# paper_row(name, module, model, task, protocol, batch size, lr, prefix length, epochs, max length, metric)
PAPER = Suite("paper", "P-tuning v2 paper settings on RoBERTa-large / DeBERTa-v2-xlarge (GPU and network needed)", (
    paper_row("ner-conll2003-roberta", "tasks.ner", ROBERTA, CONLL03, NER_QA_PROTOCOL, 16, "3e-2", 11, 30, 152,
              "test F1"),
    paper_row("ner-conll2004-roberta", "tasks.ner", ROBERTA, CONLL04, NER_QA_PROTOCOL, 32, "6e-2", 144, 80, 128,
              "test F1"),
    paper_row("qa-squad1-roberta", "tasks.qa", ROBERTA, SQUAD1, NER_QA_PROTOCOL, 8, "5e-3", 16, 30, None, "dev F1"),
    paper_row("qa-squad2-roberta", "tasks.qa", ROBERTA, SQUAD2, NER_QA_PROTOCOL, 8, "5e-3", 8, 10, None, "dev F1"),
    paper_row("superglue-rte-roberta", "tasks.superglue", ROBERTA, ("--task", "rte"), SUPERGLUE_PROTOCOL, 32, "5e-3",
              128, 100, 128, "val acc."),
    paper_row("superglue-boolq-roberta", "tasks.superglue", ROBERTA, ("--task", "boolq"), SUPERGLUE_PROTOCOL, 32,
              "7e-3", 8, 100, 128, "val acc."),
    paper_row("superglue-copa-roberta", "tasks.superglue", ROBERTA, ("--task", "copa"), SUPERGLUE_PROTOCOL, 16,
              "9e-3", 8, 120, 128, "val acc."),
    paper_row("superglue-wic-roberta", "tasks.superglue", ROBERTA, ("--task", "wic"), SUPERGLUE_PROTOCOL, 32, "1e-2",
              8, 50, 128, "val acc."),
    paper_row("ner-conll2003-deberta", "tasks.ner", DEBERTA, CONLL03, NER_QA_PROTOCOL, 16, "3e-2", 11, 30, 152,
              "test F1", skip=NO_PEFT_DEBERTA),
    paper_row("qa-squad1-deberta", "tasks.qa", DEBERTA, SQUAD1, NER_QA_PROTOCOL, 8, "5e-3", 16, 30, None, "dev F1",
              skip=NO_PEFT_DEBERTA),
    paper_row("qa-squad2-deberta", "tasks.qa", DEBERTA, SQUAD2, NER_QA_PROTOCOL, 8, "5e-3", 8, 10, None, "dev F1",
              skip=NO_PEFT_DEBERTA),
    paper_row("superglue-rte-deberta", "tasks.superglue", DEBERTA, ("--task", "rte"), SUPERGLUE_PROTOCOL, 32, "5e-3",
              128, 100, 128, "val acc.", skip=NO_PEFT_DEBERTA),
), seed=11, local_data=False)



def _warm(name: str, pretrained: str) -> Row:
    """A cpu suite row, its ``warm`` column starting from the prefix pre-trained by study-warm-pretrain."""
    row = next(r for r in CPU.rows if r.name == name)
    return Row(row.name, row.module, row.args, row.metric_label, budget=row.budget, prefix_len=row.prefix_len,
               method_args={"warm": ("--init-from", WARM_FROM[pretrained])})


# issue 26's warm starts: the low-resource rows from scratch and from a prefix pre-trained on the family's other
# tasks (run ``--suite study-warm-pretrain`` first; its description in studies.py)
WARM = Suite(
    "study-warm", "Low-resource rows from scratch and from a prefix pre-trained on the family's other tasks "
                  "(study-warm-pretrain); the cpu suite's budgets",
    (_warm("superglue-rte", "superglue-not-rte"), _warm("superglue-cb", "superglue-not-cb"),
     _warm("ner-conll2004", "ner-not-conll2004")),
    variants=(Variant("scratch", "prefix"), Variant("warm", "prefix")),
    seeds={"scratch": SEEDS, "warm": SEEDS},
    compare=("warm", "scratch", "scratch"),
)

# the README's main job as it is written there (`python -m tasks.ner --prefix-len 32`: the defaults are --method prefix
# and --seed 42), so that the README links to its measured wall-clock, memory and F1 instead of restating them
MAIN = Suite("main", "the README's main job: P-tuning v2 on CoNLL-2003 with the bundled encoder, every default", (
    Row("ner-conll2003", "tasks.ner", (), "test F1", prefix_len=32,
        budget="3 epochs x 14,041 sentences (2,634 steps of 16), dev and test scored at the end"),),
    variants=(Variant("prefix", "prefix"),), compare=("prefix", None, None))

SUITES = {suite.name: suite for suite in (SMOKE, CPU, PAPER, MAIN, *STUDIES, WARM, FT_BUDGET)}

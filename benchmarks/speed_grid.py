"""The speed benchmark's grid, declared as data: encoder sizes, (length, batch) configurations, repeats.

``full`` is sized for about 20 minutes on 2 CPU cores: a BERT-large training step there is slow
(results/speed.md of the run that had it, in git history), so it gets one configuration and few repeats; edit
these on a bigger machine.  ``quick`` is a few configurations (minutes).
"""
from __future__ import annotations

METHODS = ("finetune", "prefix", "peft-prefix", "prompt")  # finetune first: every ratio's base
SIZES = ("bundled", "bert-base", "bert-large")
PREFIX_LEN = 32  # prefix / prompt length of every method
NUM_LABELS = 9  # CoNLL-2003 tags: a token-classification head like the NER task
LR = {"finetune": 5e-5, "prefix": 1e-2, "peft-prefix": 1e-2, "prompt": 1e-2}  # AdamW's rate per method

# randomly initialised encoders of the standard BERT sizes (no download)
BERT_SIZES = {
    "bert-base": dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072),
    "bert-large": dict(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096),
}

# (sequence length, batch size) per encoder size
GRID = {
    "full": {"bundled": [(64, 16), (128, 16), (256, 8)],
             "bert-base": [(64, 8), (128, 8)],
             "bert-large": [(64, 8)]},
    "quick": {"bundled": [(64, 16)], "bert-base": [(64, 4)], "bert-large": []},
}
MEMORY = {"full": {"bundled": (128, 16), "bert-base": (128, 8), "bert-large": (64, 8)},
          "quick": {"bundled": (64, 16)}}
REPEATS = {"full": {"bundled": (2, 5), "bert-base": (1, 3), "bert-large": (1, 3)},
           "quick": {"bundled": (1, 3), "bert-base": (1, 2), "bert-large": (1, 2)}}  # (warm-up, repeats)
# timed batches per variant of the CoNLL-2003 epoch (None: the whole epoch); a whole pad-152 epoch is long on 2 cores
EPOCH_STEPS = {"full": {"dynamic+grouped": 60, "pad-152": 20}, "quick": {"dynamic+grouped": 10, "pad-152": 4}}

"""The speed benchmark's grid, declared as data: model sizes, methods, bases, (length, batch) configurations, repeats.

``full`` was sized for about 20 minutes on 2 CPU cores with four methods on the encoders: a BERT-large training
step there is slow (results/speed.md of the run that had it, in git history), so it gets one configuration and few
repeats.  Every registered method and the Qwen2-0.5B shape make a full run longer; edit these on a bigger machine.
``quick`` is a few configurations: minutes each, the decoder's the longest (a 0.5B model built for each timing
base and each memory subprocess; its int8 prefix alone took about 6 minutes on 2 busy cores, one thread).
"""
from __future__ import annotations

from models.methods import METHODS as REGISTERED  # names and configs only: no torch

from .suites import CPU

# the cpu suite's named configurations of a method (its own flags: lora-all, prefix-lora-all-r16), timed as columns
# of their own, so that a column the cpu page reads has a step time beside its quality (issue 42)
VARIANTS = {v.name: v for v in CPU.variants if v.name != v.method}
# every registered method, finetune first (every ratio's base), then those variants
METHODS = ("finetune", *(name for name in REGISTERED if name != "finetune"), *VARIANTS)
SIZES = ("bundled", "bert-base", "bert-large", "qwen2-0.5b")
PREFIX_LEN = 32  # prefix / prompt length of every method
NUM_LABELS = 9  # CoNLL-2003 tags: a token-classification head like the NER task
LR = {"finetune": 5e-5, "prefix": 1e-2, "peft-prefix": 1e-2, "prompt": 1e-2}  # AdamW's rate (others: their default)

# randomly initialised encoders of the standard BERT sizes (no download)
BERT_SIZES = {
    "bert-base": dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072),
    "bert-large": dict(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096),
}
# randomly initialised decoders of published configs, built in code (no download): Qwen2-0.5B's shape, grouped-query
# attention (14 query heads, 2 key/value heads of size 64), q/k/v biases, a gated feed-forward, 151936 tokens
DECODER_SIZES = {
    "qwen2-0.5b": dict(model_type="qwen2", vocab_size=151936, hidden_size=896, num_hidden_layers=24,
                       num_attention_heads=14, num_key_value_heads=2, intermediate_size=4864),
}

# the methods a size times unless --methods names them (default: every registered method); a 0.5B decoder step is
# slow on a CPU, so the decoder times the comparison issue 37 asks for
SIZE_METHODS = {"qwen2-0.5b": ("finetune", "prefix", "lora")}
# how the frozen base is stored (--quantize-base of the task CLIs); fp32 for every size, the quantised schemes on
# the decoder (a scheme this install or device cannot run gets a row saying why instead)
BASES = ("fp32", "int8", "nf4")  # fp32 and models.quantize.QUANTIZE_SCHEMES (not imported here: no torch)
SIZE_BASES = {"qwen2-0.5b": BASES}

# (sequence length, batch size) per size; the decoder at a shortened sequence
GRID = {
    "full": {"bundled": [(64, 16), (128, 16), (256, 8)],
             "bert-base": [(64, 8), (128, 8)],
             "bert-large": [(64, 8)],
             "qwen2-0.5b": [(128, 4)]},
    "quick": {"bundled": [(64, 16)], "bert-base": [(64, 4)], "bert-large": [], "qwen2-0.5b": [(128, 1)]},
}
MEMORY = {"full": {"bundled": (128, 16), "bert-base": (128, 8), "bert-large": (64, 8), "qwen2-0.5b": (128, 4)},
          "quick": {"bundled": (64, 16), "qwen2-0.5b": (128, 1)}}
REPEATS = {"full": {"bundled": (2, 5), "bert-base": (1, 3), "bert-large": (1, 3), "qwen2-0.5b": (1, 3)},
           "quick": {"bundled": (1, 3), "bert-base": (1, 2), "bert-large": (1, 2),
                     "qwen2-0.5b": (1, 2)}}  # (warm-up, repeats)
# timed batches per variant of the CoNLL-2003 epoch (None: the whole epoch); a whole pad-152 epoch is long on 2 cores
EPOCH_STEPS = {"full": {"dynamic+grouped": 60, "pad-152": 20}, "quick": {"dynamic+grouped": 10, "pad-152": 4}}


def methods_for(size: str, chosen: tuple[str, ...] | None = None) -> tuple[str, ...]:
    """The methods ``size`` times: ``chosen`` (--methods) if given, else the size's own list; finetune first."""
    names = chosen if chosen is not None else SIZE_METHODS.get(size, METHODS)
    return tuple(["finetune"] + [m for m in names if m != "finetune"])


def method_of(name: str) -> str:
    """The registered method a timed column runs: a variant's, else the name itself."""
    return VARIANTS[name].method if name in VARIANTS else name


def flags_of(name: str) -> tuple[str, ...]:
    """The method flags a timed column adds to its method's defaults (a variant's; none for a method)."""
    return VARIANTS[name].flags if name in VARIANTS else ()


def bases_for(size: str, chosen: tuple[str, ...] | None = None) -> tuple[str, ...]:
    """The bases ``size`` is timed with: the size's own (fp32 only for the encoders), restricted to ``chosen``."""
    return tuple(b for b in SIZE_BASES.get(size, ("fp32",)) if chosen is None or b in chosen)

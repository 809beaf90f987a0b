"""The command line of every task family: flags derived from the settings dataclasses, and typed settings from them.

Every shared flag is a field of ``settings.py``, every method flag a field of its method's config
(``models/methods/configs.py``), every family flag a field of the family's ``Settings``; ``flags.py`` turns
fields into flags.  This module adds what the fields cannot say alone: a family's recipe (its own defaults,
some per method) and the method flags that only some methods have.  It is the only module that sees an
``argparse.Namespace``.

The command line answers at once: the parsers need only the settings dataclasses, the method registry and a
family's ``FamilyFlags`` (none imports torch), so ``--help`` and usage errors come before the heavy imports;
what needs torch or the model (the pipeline, ``--pooling auto``, the precision and device checks) is imported by
the functions that run after parsing.
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Any, Callable, Mapping

from models.methods import METHODS, get_method
from models.options import dest_of, flag_name

from .allocator import keep_large_allocations
from .config_file import FLAG as CONFIG_FLAG
from .versions import check_versions
from .config_file import expand_config
from .errors import UsageError, exit_on_bad_input
from .flags import HelpFormatter, add_dataclass, argument_kwargs, field_default, flag_fields, from_namespace
from .settings import DataSettings, FamilyFlags, ModelSettings, PredictSettings, RunSettings, TrainSettings

# recipe entries that are not plain flag defaults (see TaskFamily.recipe)
RECIPE_KEYS = ("method_lr", "method_layers", "method_settings")


# --------------------------------------------------------------------------- method flags
def method_flags() -> dict[str, dict[str, Any]]:
    """Every method flag once: {flag: {"field", "annotation", "methods": {method: config field name}}}."""
    found: dict[str, dict[str, Any]] = {}
    for name, spec in METHODS.items():
        for field, annotation in flag_fields(spec.config_class):
            entry = found.setdefault(flag_name(field), {"field": field, "annotation": annotation, "methods": {}})
            entry["methods"][name] = field
    return found


def _method_flag_help(entry: dict[str, Any], recipe: Mapping[str, Any]) -> str:
    dest = dest_of(entry["field"])
    defaults = {m: method_recipe(recipe, m).get(dest, field_default(f)) for m, f in entry["methods"].items()}
    shown = "; ".join(f"{m} {'none' if v is None else v}" for m, v in defaults.items())
    return f"{entry['field'].metadata['help']} [only {', '.join(entry['methods'])}; default {shown}]"


def add_method_flags(parser: argparse._ArgumentGroup, recipe: Mapping[str, Any]) -> None:
    """The flags of every registered method, each defaulting to None ("not given": the method's own default or the
    family's recipe applies)."""
    for flag, entry in method_flags().items():
        kwargs = argument_kwargs(entry["field"], entry["annotation"], None)
        kwargs["help"] = _method_flag_help(entry, recipe)
        parser.add_argument(flag, **kwargs)


def method_config(method: str, args: argparse.Namespace, recipe: Mapping[str, Any] | None = None):
    """The method's config from the method flags given, then the family's recipe for the flags the method has; a
    flag given that the method does not use is a usage error."""
    spec, recipe, known = get_method(method), recipe or {}, method_flags()
    given = {flag: getattr(args, dest_of(e["field"])) for flag, e in known.items()
             if getattr(args, dest_of(e["field"]), None) is not None}
    unused = [flag for flag in given if method not in known[flag]["methods"]]
    if unused:
        raise UsageError(f"{unused[0]} does nothing with --method {method} (it applies to "
                         f"{', '.join(known[unused[0]]['methods'])})")
    own = spec.flags()
    if "--prefix-hidden" in given and "--reparam" in own and not given.get("--reparam"):
        raise UsageError("--prefix-hidden sets the MLP of --reparam; without --reparam it does nothing")
    defaults = method_recipe(recipe, method)
    values = {own[flag]: defaults[dest_of(known[flag]["field"])] for flag in own
              if dest_of(known[flag]["field"]) in defaults and flag not in given}
    values.update({own[flag]: value for flag, value in given.items()})
    try:
        return spec.config_class(**values)
    except ValueError as err:  # a combination the method refuses (token init with an MLP prefix)
        raise UsageError(str(err)) from None


def method_recipe(recipe: Mapping[str, Any], method: str) -> dict[str, Any]:
    """The family's recipe as ``method`` reads it (flag dest -> value): its entries for that method alone
    (``method_settings``) over its entries for every method with the flag."""
    return {**recipe, **recipe.get("method_settings", {}).get(method, {})}


# --------------------------------------------------------------------------- parsers
def _recipe_layers(recipe: Mapping[str, Any], method: str | None = None) -> str:
    """The recipe's --layers for ``method`` (its per-method entry), else the recipe's own, else the last layer."""
    return recipe.get("method_layers", {}).get(method, recipe.get("layers", "last"))


def _shared_defaults(family, recipe: Mapping[str, Any]) -> dict[str, Any]:
    """The family's defaults of shared flags: its epochs and max length, and its recipe's plain flag values."""
    methods = {dest_of(e["field"]) for e in method_flags().values()}
    plain = {k: v for k, v in recipe.items() if k not in RECIPE_KEYS and k not in methods and k != "layers"}
    return {"epochs": family.default_epochs, "max_length": family.default_max_length, **plain}


def train_parser(family, multitask: bool = False) -> argparse.ArgumentParser:
    """Every flag of a training run of ``family`` (``multitask``: without the flags that pick one dataset)."""
    recipe = family.recipe
    parser = argparse.ArgumentParser(prog=f"python -m tasks.{family.name}", description=family.description,
                                     formatter_class=HelpFormatter, epilog=(
                                         f"subcommand: python -m tasks.{family.name} predict ...  "
                                         f"{family.predict_description} (predict --help lists its flags)"))
    add_config_flag(parser)
    defaults = _shared_defaults(family, recipe)
    model = parser.add_argument_group("model and method")
    layers = _recipe_layers(recipe) + "".join(f"; {m}: {v}" for m, v in recipe.get("method_layers", {}).items())
    methods = "; ".join(f"{name}: {spec.description}" for name, spec in METHODS.items())  # the registry as it is now
    add_dataclass(model, ModelSettings, defaults, options={
        "layers": {"help": ModelSettings.__dataclass_fields__["layers"].metadata["help"] + f" (default {layers})"},
        "method": {"choices": tuple(METHODS), "help": methods}})
    add_method_flags(parser.add_argument_group("method settings (each applies to the methods it names)"), recipe)
    own_lr = "".join(f"; this task: {m} {v:g}" for m, v in recipe.get("method_lr", {}).items())
    lrs = ", ".join(f"{name} {spec.config_class().default_lr():g}" for name, spec in METHODS.items())
    add_dataclass(parser.add_argument_group("training"), TrainSettings, defaults, options={"lr": {
        "help": f"learning rate (default by method: {lrs}{own_lr}; prefix with --reparam 0.001)"}})
    add_dataclass(parser.add_argument_group("data"), DataSettings, defaults)
    add_dataclass(parser.add_argument_group(f"{family.title} data"), family.Settings,
                  skip=family.selectors() if multitask else (), options=family.flag_options())
    return parser


def predict_parser(family) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=f"python -m tasks.{family.name} predict",
                                     description=family.predict_description, formatter_class=HelpFormatter)
    add_config_flag(parser)
    add_dataclass(parser, PredictSettings)
    add_dataclass(parser.add_argument_group(f"{family.title} inputs and outputs"), family.PredictSettings)
    return parser


def add_config_flag(parser: argparse.ArgumentParser) -> None:
    """``--config`` in the help; ``run_subcommand`` reads the file before parsing (``config_file.py``)."""
    parser.add_argument(CONFIG_FLAG, metavar="FILE", help="settings from a JSON or YAML file (keys are flag names, "
                                                          "e.g. prefix_len: 32); flags on the command line win")


# --------------------------------------------------------------------------- Namespace -> settings
def _built(cls: type, args: argparse.Namespace, **values: Any):
    try:
        return from_namespace(cls, args, **values)
    except ValueError as err:
        raise UsageError(str(err)) from None


def encoder_dropout_of(method: str, given: float | None) -> float | None:
    """--encoder-dropout as given, else 0 for a method that freezes the encoder (it has no weights for dropout to
    regularise, and its noise slowed the prefix: study-encdrop in benchmarks/README.md), else None (its own)."""
    if given is not None:
        return given
    return None if get_method(method).trains_backbone else 0.0


def run_settings(args: argparse.Namespace, family, tasks: list[Any]) -> RunSettings:
    """Every shared flag as typed settings; ``tasks``: the family's settings, one per dataset."""
    from models.backbone import sentence_pooling

    recipe = family.recipe
    method = args.method
    pooling = (sentence_pooling(args.model) or "first") if args.pooling == "auto" else args.pooling
    model = _built(ModelSettings, args, method_config=method_config(method, args, recipe), pooling=pooling,
                   layers=args.layers or _recipe_layers(recipe, method),
                   encoder_dropout=encoder_dropout_of(method, args.encoder_dropout))
    train = _built(TrainSettings, args)
    # the hardware checks come after the flags' own: a contradiction on the command line is refused the same way
    # on every machine, whatever its CPU or GPU
    _check_precision(train.eval_precision)
    if train.bf16:
        _check_precision("bf16")
    if train.lr is None and not getattr(model.method_config, "reparameterize", False):  # the MLP keeps its own
        train.lr = recipe.get("method_lr", {}).get(method)
    data = _built(DataSettings, args)
    return RunSettings(model, train, data, tasks, flags=dict(vars(args)))


def family_settings(family, args: argparse.Namespace, **values: Any):
    """The family's own settings from its flags (``values`` set fields the command line does not have)."""
    return _built(family.Settings, args, **values)


def predict_settings(args: argparse.Namespace, family) -> PredictSettings:
    """The settings of ``predict``; ``device`` resolved (cuda when there is a GPU) and the precision checked on it."""
    from .devices import resolve_device

    device = resolve_device(args.device)
    task = _built(family.PredictSettings, args)
    settings = _built(PredictSettings, args, task=task, device=str(device))
    _check_precision(settings.precision, device.type)  # after the flags' own checks, as in run_settings
    return settings


def _check_precision(precision: str, device: str | None = None) -> None:
    from models.precision import check_precision

    from .devices import default_device

    try:
        check_precision(precision, device or default_device())
    except ValueError as err:
        raise UsageError(str(err)) from None


def run_subcommand(argv: list[str] | None, train_main: Callable, predict_main: Callable) -> None:
    """``[train] FLAGS`` trains and evaluates; ``predict FLAGS`` applies a saved artifact."""
    exit_on_bad_input(check_versions)()  # a release outside the declared range: one line before anything loads
    argv = sys.argv[1:] if argv is None else argv
    predicting = argv[:1] == ["predict"]
    rest = exit_on_bad_input(expand_config)(argv[1:] if argv[:1] in (["predict"], ["train"]) else argv)
    if int(os.environ.get("LOCAL_WORLD_SIZE", "1")) > 1:  # torchrun (one process needs no check, nor torch yet)
        from .devices import check_processes

        check_processes()  # no more processes on this node than GPUs (devices.py says why)
    if not predicting:  # training gains (allocator.py); predict trims its heap as free blocks add up instead, and
        keep_large_allocations()  # with that the raised thresholds bought it no speed (issue 43)
    if int(os.environ.get("RANK", "0")) != 0:  # torchrun/accelerate: rank 0 alone prints reports (errors still show)
        sys.stdout = open(os.devnull, "w")
    (predict_main if predicting else train_main)(rest)
    from .devices import close_process_group

    close_process_group()  # every rank ends together (devices.py says why)


def main(flags: FamilyFlags, argv: list[str] | None = None) -> None:
    """``python -m tasks.<family> [train] FLAGS`` or ``... predict FLAGS``: the flags are parsed with the family's
    ``FamilyFlags`` alone, then the pipeline and the family itself (``flags.load()``) are imported and run."""

    @exit_on_bad_input
    def train_main(args: list[str]) -> dict:
        parsed = train_parser(flags).parse_args(args)
        from .pipeline import train_and_evaluate

        family = flags.load()
        return train_and_evaluate(family, run_settings(parsed, family, [family_settings(family, parsed)]))

    @exit_on_bad_input
    def predict_main(args: list[str]) -> list[dict]:
        parsed = predict_parser(flags).parse_args(args)
        from .pipeline import predict_with_artifact

        family = flags.load()
        return predict_with_artifact(family, predict_settings(parsed, family))

    run_subcommand(argv, train_main, predict_main)


__all__ = ["add_method_flags", "encoder_dropout_of", "family_settings", "main", "method_config", "method_flags",
           "predict_parser", "predict_settings", "run_settings", "run_subcommand", "train_parser"]

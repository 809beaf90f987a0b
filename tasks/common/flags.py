"""Command-line flags derived from dataclass fields (``models/options.py``), as transformers' HfArgumentParser does.

Why not HfArgumentParser itself: these flags keep names that are not their field's (``--reparam`` sets
``reparameterize``), several method configs share one flag (``--prefix-len``), and a method flag must tell "not
given" from its default (so a family's recipe or the method's own default can apply); its booleans take a value
and its flags are named after the fields.  The derivation is small: type, default, help, bounds and choices come
from the field.
"""
from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from pathlib import Path
from typing import Any, Callable, Iterable

from models.options import dest_of, flag_name


def bounded(kind: type, minimum: float | None = None, below: float | None = None) -> Callable[[str], Any]:
    """argparse type: a ``kind`` number in [minimum, below) (a bad value is a usage error, exit 2)."""
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not {'an integer' if kind is int else 'a number'}: '{text}'") from None
        if minimum is not None and value < minimum:
            if below is not None:
                raise argparse.ArgumentTypeError(f"must be in [{minimum:g}, {below:g}), got {value}")
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        if below is not None and value >= below:
            raise argparse.ArgumentTypeError(f"must be in [{minimum or 0:g}, {below:g}), got {value}")
        return value
    parse.__name__ = kind.__name__ if minimum is None else f"{kind.__name__} >= {minimum}"
    return parse


POSITIVE = bounded(int, 1)
NON_NEGATIVE = bounded(int, 0)


def _base_type(annotation: Any) -> Any:
    """``int | None`` -> int; ``list[str] | None`` -> list[str]."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return args[0] if len(args) == 1 else str
    return annotation


def argument_kwargs(field: dataclasses.Field, annotation: Any, default: Any) -> dict[str, Any]:
    """argparse keyword arguments for one field's flag, with ``default`` as the flag's default."""
    meta, base = field.metadata, _base_type(annotation)
    kwargs: dict[str, Any] = {"dest": dest_of(field), "help": meta.get("help") or None, "default": default}
    if base is bool:
        kwargs["action"] = argparse.BooleanOptionalAction
        return kwargs
    if typing.get_origin(base) is list:
        kwargs["nargs"] = "+"
        base = typing.get_args(base)[0]
    if meta.get("choices"):
        kwargs["choices"] = tuple(meta["choices"])
    if base in (int, float) and ("minimum" in meta or "below" in meta):
        kwargs["type"] = bounded(base, meta.get("minimum"), meta.get("below"))
    elif base in (int, float, Path):
        kwargs["type"] = base
    if "metavar" in meta:
        kwargs["metavar"] = meta["metavar"]
    if default is dataclasses.MISSING:
        kwargs.pop("default")
        kwargs["required"] = True
    return kwargs


def flag_fields(cls: type) -> list[tuple[dataclasses.Field, Any]]:
    """(field, resolved type) of every field of ``cls`` that has a flag (its metadata has ``help``)."""
    hints = typing.get_type_hints(cls)
    return [(f, hints[f.name]) for f in dataclasses.fields(cls) if "help" in f.metadata]


def field_default(field: dataclasses.Field) -> Any:
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return field.default


def add_dataclass(parser: argparse.ArgumentParser | argparse._ArgumentGroup, cls: type,
                  defaults: dict[str, Any] | None = None, skip: Iterable[str] = (),
                  options: dict[str, dict[str, Any]] | None = None) -> None:
    """Add a flag for every field of ``cls`` that has one; ``defaults`` (by dest) replace the fields' defaults,
    ``skip`` leaves fields out, ``options`` (by field) override argparse keywords (a family's task choices)."""
    defaults, options = defaults or {}, options or {}
    for field, annotation in flag_fields(cls):
        if field.name in skip:
            continue
        kwargs = argument_kwargs(field, annotation, defaults.get(dest_of(field), field_default(field)))
        kwargs.update(options.get(field.name, {}))
        parser.add_argument(flag_name(field), *field.metadata.get("aliases", ()), **kwargs)


def from_namespace(cls: type, args: argparse.Namespace, **values: Any):
    """An instance of ``cls`` from the parsed flags of its fields (``values`` set the rest)."""
    given = {f.name: getattr(args, dest_of(f)) for f, _ in flag_fields(cls) if hasattr(args, dest_of(f))}
    return cls(**{**given, **values})


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows a flag's default, except None: those flags' help says what applies when they are not given (a
    method's or the family's default), which "(default: None)" would contradict."""

    def _get_help_string(self, action: argparse.Action) -> str:
        if action.default is None or action.default is argparse.SUPPRESS or not action.help:
            return action.help or ""
        return super()._get_help_string(action)

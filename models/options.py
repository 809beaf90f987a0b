"""Dataclass fields that declare their command-line flag: the one source of a setting's default, help and bounds.

``option(default, "help")`` is ``dataclasses.field`` with metadata that ``tasks/common/flags.py`` turns into an
argparse argument (as transformers' ``HfArgumentParser`` does for its dataclasses); the metadata keys are:

* ``help``; ``flag``: the flag's name when it is not ``--`` + the field name with dashes; ``aliases``;
* ``choices``; ``minimum`` (inclusive) and ``below`` (exclusive) bounds for numbers; ``metavar``;
* ``selector``: the field picks the dataset (a multi-task run names its datasets itself and leaves it out).

Importable without torch or argparse: method configs (``models/methods/configs.py``) and the pipeline's
settings (``tasks/common/settings.py``) both use it.
"""
from __future__ import annotations

import dataclasses
from typing import Any

_EMPTY = dataclasses.MISSING


def option(default: Any = _EMPTY, help: str = "", *, factory: Any = _EMPTY, **metadata: Any) -> Any:  # noqa: A002
    """A dataclass field with its flag's metadata (see the module docstring); no default makes the flag required."""
    meta = {"help": help, **metadata}
    if factory is not _EMPTY:
        return dataclasses.field(default_factory=factory, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def flag_name(field: dataclasses.Field) -> str:
    """The command-line name of a field: its ``flag`` metadata, else ``--`` + the name with dashes."""
    return field.metadata.get("flag") or "--" + field.name.replace("_", "-")


def dest_of(field: dataclasses.Field) -> str:
    """The argparse destination of a field's flag (``--prefix-dropout`` -> ``prefix_dropout``)."""
    return flag_name(field).lstrip("-").replace("-", "_")

"""``--config FILE``: settings from a JSON or YAML file, with the command line winning (as ``HfArgumentParser`` reads
JSON files).  Each key is a flag's name (``prefix_len``, ``prefix-len`` or ``--prefix-len``); its value goes through
the same parser as the flag would, so the file gets the same checks and messages as the command line.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .errors import DataError, UsageError

FLAG = "--config"


def expand_config(argv: list[str]) -> list[str]:
    """``argv`` with ``--config FILE`` replaced by the file's settings as flags, placed before the first flag (after
    positional words such as ``tasks.multitask``'s family) so that flags given on the command line win."""
    if FLAG not in argv and not any(a.startswith(FLAG + "=") for a in argv):
        return argv
    rest, files = [], []
    i = 0
    while i < len(argv):
        if argv[i] == FLAG:
            if i + 1 >= len(argv):
                raise UsageError(f"{FLAG} needs a JSON or YAML file")
            files.append(Path(argv[i + 1]))
            i += 2
            continue
        if argv[i].startswith(FLAG + "="):
            files.append(Path(argv[i].partition("=")[2]))
        else:
            rest.append(argv[i])
        i += 1
    first = next((i for i, token in enumerate(rest) if token.startswith("-")), len(rest))
    return rest[:first] + [token for path in files for token in _as_flags(path, _read(path))] + rest[first:]


def _read(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise DataError(path, None, "config file not found")
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix == ".json":
            values = json.loads(text)
        else:
            import yaml  # a dependency of transformers

            values = yaml.safe_load(text)
    except (json.JSONDecodeError, ValueError) as err:
        raise DataError(path, getattr(err, "lineno", None), f"not valid JSON: {err}") from None
    except Exception as err:  # yaml.YAMLError and its subclasses
        mark = getattr(err, "problem_mark", None)
        raise DataError(path, None if mark is None else mark.line + 1, f"not valid YAML: {err}") from None
    if not isinstance(values, dict):
        raise DataError(path, None, "a config file holds one mapping of flag names to values")
    return values


def _as_flags(path: Path, values: dict[str, Any]) -> list[str]:
    tokens: list[str] = []
    for key, value in values.items():
        flag = "--" + str(key).lstrip("-").replace("_", "-")
        if value is None:
            continue
        if isinstance(value, bool):
            tokens.append(flag if value else "--no-" + flag[2:])
        elif isinstance(value, list):
            tokens += [flag, *map(str, value)]
        elif isinstance(value, (str, int, float)):
            tokens += [flag, str(value)]
        else:
            raise DataError(path, None, f"'{key}': expected a string, number, boolean or list")
    return tokens

"""One error type for bad user input, rendered as a single line with exit code 2."""
from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import Callable, TypeVar

from models.choices import EncoderNotFound

EXIT_BAD_INPUT = 2
F = TypeVar("F", bound=Callable)


class DataError(Exception):
    """Bad input: a file, line or example the user must fix.

    ``where`` is a line number (int) or an example id (str); it may be None
    when the problem concerns the whole file (missing, empty).
    """

    def __init__(self, path: str | Path | None, where: int | str | None, message: str) -> None:
        self.path, self.where, self.message = path, where, message
        super().__init__(str(self))

    def __str__(self) -> str:
        location = "" if self.path is None else str(self.path)
        if self.where is not None:
            kind = "line " if isinstance(self.where, int) else "example "
            location = f"{location}: {kind}{self.where}" if location else f"{kind}{self.where}"
        return f"{location}: {self.message}" if location else self.message


class UsageError(Exception):
    """Bad flags or combinations of flags (not tied to a file)."""


def exit_on_bad_input(main: F) -> F:
    """Turn DataError/UsageError into one line on stderr and exit code 2 (no traceback)."""

    @functools.wraps(main)
    def wrapper(*args, **kwargs):
        try:
            return main(*args, **kwargs)
        except (DataError, UsageError, EncoderNotFound) as err:
            print(f"error: {err}", file=sys.stderr)
            raise SystemExit(EXIT_BAD_INPUT) from None

    return wrapper  # type: ignore[return-value]

"""Reading a UTF-8 text file as lines, for every line-based reader (CoNLL, raw text, GLUE TSV/JSONL)."""
from __future__ import annotations

import gzip
import json
import zlib
from pathlib import Path
from typing import Iterable, Iterator

from .errors import DataError


def read_lines(path: str | Path) -> list[str]:
    """The lines of ``path``; a DataError names the file (and the line of a bad byte).

    A ``.gz`` file is read decompressed (the CoNLL-2005 release ships gzip files).  A UTF-8 BOM is dropped; only ``\\n`` ends a line (a ``\\r`` before it is removed):
    ``str.splitlines()`` would also break on U+2028, U+0085 etc., which can sit inside a
    token or sentence and would shift every later line number.  The final newline ends the
    last line; it does not start an empty one.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(path, None, "file not found")
    raw = path.read_bytes()
    if path.suffix == ".gz":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as err:
            raise DataError(path, None, f"not a readable gzip file ({err})") from None
    try:
        text = raw.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as err:
        raise DataError(path, raw[: err.start].count(b"\n") + 1,
                        f"not valid UTF-8 (byte 0x{raw[err.start]:02x})") from None
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line.removesuffix("\r") for line in lines]


def iter_lines(path: str | Path) -> Iterator[str]:
    """``read_lines`` one line at a time (the same lines, the same errors), holding one line in memory: what the
    streaming predict readers use.  A bad byte or a broken gzip stream fails when its line is reached."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, None, "file not found")
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as handle:
        try:
            for number, raw in enumerate(handle, start=1):  # binary lines end at b"\n" only
                try:
                    text = raw.decode("utf-8")
                except UnicodeDecodeError as err:
                    raise DataError(path, number, f"not valid UTF-8 (byte 0x{raw[err.start]:02x})") from None
                if number == 1:
                    text = text.removeprefix("\ufeff")
                yield text.removesuffix("\n").removesuffix("\r")
        except (OSError, EOFError, zlib.error) as err:  # gzip.BadGzipFile is an OSError
            raise DataError(path, None, f"not a readable gzip file ({err})") from None


def read_jsonl(path: str | Path) -> list[tuple[int, dict]]:
    """(line number, object) for every non-blank line; a line that is not a JSON object is a DataError naming it."""
    return list(iter_jsonl(path, read_lines(path)))


def iter_jsonl(path: str | Path, lines: Iterable[str] | None = None) -> Iterator[tuple[int, dict]]:
    """``read_jsonl`` one record at a time (``lines``: the file's, streamed by default)."""
    path = Path(path)
    for number, line in enumerate(iter_lines(path) if lines is None else lines, start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as err:
            raise DataError(path, number, f"invalid JSON: {err.msg} (column {err.colno})") from None
        if not isinstance(value, dict):
            raise DataError(path, number, f"expected a JSON object, got {type(value).__name__}")
        yield number, value

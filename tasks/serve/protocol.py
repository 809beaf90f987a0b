"""Reading one request (an HTTP body or a JSONL line) without trusting it: every way it can be malformed is
a ``BadRequest`` (status 400) with a message, never an exception that escapes or a blown stack.

* bytes that are not UTF-8 (a leading BOM is dropped);
* text that is not JSON, or uses NaN/Infinity (not JSON, and not renderable back);
* JSON nested deeper than ``MAX_DEPTH`` (a request is a shallow record): ``json.loads`` itself would stop at
  the interpreter's recursion limit with a RecursionError, which is caught too;
* an integer of more than ``sys.get_int_max_str_digits()`` digits (4,300; ``int()`` refuses it, a ValueError);
* a value that is not an object ``{"task": NAME, "input": ...}`` (or ``"inputs": [...]``, several inputs of the
  task, answered in order) with a non-empty string ``task``.

``result_json`` and ``error_json`` are the answer's side: one input's output, or an error with its status.
"""
from __future__ import annotations

import json
import re
import sys
from typing import Any

from .errors import RequestError

MAX_DEPTH = 64
SHAPE = 'a request is a JSON object {"task": NAME, "input": {...}} or {"task": NAME, "inputs": [{...}, ...]}'


class Inputs(list):
    """The inputs of a request that has several (``"inputs": [...]``): the engine answers each in order, with its
    own output or error, and the request as a whole is bounded by ``--max-request-rows``."""


class BadRequest(RequestError):
    """A request that cannot be read at all (HTTP 400); ``malformed_json`` when the bytes are not JSON."""

    status = 400

    def __init__(self, message: str, malformed_json: bool = False) -> None:
        super().__init__(message)
        self.malformed_json = malformed_json


def _no_constant(name: str) -> Any:
    raise BadRequest(f"{name} is not JSON", malformed_json=True)


_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_SQUARE = str.maketrans("{}", "[]")


def nested_deeper(text: str, limit: int = MAX_DEPTH) -> bool:
    """Whether the JSON ``text`` (valid JSON: its brackets balance) nests lists/objects deeper than ``limit``.

    Without recursion and at C speed: strings dropped, only brackets kept, then each pass of
    ``replace("[]", "")`` removes every innermost pair, one level; more than ``limit`` passes is too deep.
    """
    if text.count("[") + text.count("{") <= limit:  # the usual request: no scan at all
        return False
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text)).translate(_SQUARE)
    for _ in range(limit):
        if not brackets:
            return False
        brackets = brackets.replace("[]", "")
    return bool(brackets)


def parse_json(data: bytes | str) -> Any:
    """The JSON value of ``data``; BadRequest(malformed_json=True) saying what is wrong."""
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as err:
            raise BadRequest(f"not valid UTF-8 (byte 0x{data[err.start]:02x} at offset {err.start})",
                             malformed_json=True) from None
    else:
        text = data
    text = text.removeprefix("\ufeff")
    try:
        value = json.loads(text, parse_constant=_no_constant)
    except json.JSONDecodeError as err:
        where = f"column {err.colno}" if err.lineno == 1 else f"line {err.lineno}, column {err.colno}"
        raise BadRequest(f"{err.msg} ({where})", malformed_json=True) from None
    except RecursionError:
        raise BadRequest(f"nested deeper than {MAX_DEPTH} levels", malformed_json=True) from None
    except ValueError as err:  # int(): "Exceeds the limit (4300 digits) for integer string conversion"
        if "integer string conversion" in str(err):
            raise BadRequest(f"an integer of more than {_max_digits()} digits",
                             malformed_json=True) from None
        raise BadRequest(str(err), malformed_json=True) from None
    if nested_deeper(text):
        raise BadRequest(f"nested deeper than {MAX_DEPTH} levels", malformed_json=True)
    return value


def read_request(value: Any) -> tuple[str, Any]:
    """(task, input) of a parsed request, the input an ``Inputs`` list for ``"inputs"``; BadRequest when it is
    not ``{"task": NAME, "input": ...}`` or ``{"task": NAME, "inputs": [...]}``."""
    if not isinstance(value, dict):
        raise BadRequest(f"{SHAPE}, not a JSON {_type_name(value)}")
    task = value.get("task")
    if not isinstance(task, str) or not task:
        raise BadRequest(f'{SHAPE}: "task" must be a non-empty string')
    if "input" in value and "inputs" in value:
        raise BadRequest(f'{SHAPE}: "input" or "inputs", not both')
    if "inputs" in value:
        inputs = value["inputs"]
        if not isinstance(inputs, list) or not inputs:
            raise BadRequest(f'{SHAPE}: "inputs" must be a non-empty array')
        return task, Inputs(inputs)
    if "input" not in value:
        raise BadRequest(f'{SHAPE}: "input" is missing')
    return task, value["input"]


def status_of(error: BaseException) -> int:
    """The HTTP status of an error: its ``status`` when that is a 4xx/5xx, else 500."""
    status = getattr(error, "status", 500)
    return status if isinstance(status, int) and 400 <= status <= 599 else 500


def error_json(error: BaseException) -> dict[str, Any]:
    return {"error": str(error) or type(error).__name__, "status": status_of(error)}


def result_json(result: Any) -> dict[str, Any]:
    """One input's answer: ``{"output": ...}``, or ``{"error", "status"}`` when it failed."""
    return error_json(result) if isinstance(result, BaseException) else {"output": result}


def _max_digits() -> int:
    return getattr(sys, "get_int_max_str_digits", lambda: 4300)()


def _type_name(value: Any) -> str:
    return {dict: "object", list: "array", str: "string", int: "number", float: "number", bool: "boolean",
            type(None): "null"}.get(type(value), type(value).__name__)

"""Serve many trained tasks on one frozen backbone: over HTTP, or a JSONL file of requests offline.

    python -m tasks.serve --artifact runs/ner-conll2003-prefix --artifact qa=runs/qa-squad-prefix --port 8000
    curl -s localhost:8000/predict -d '{"task": "conll2003", "input": {"text": "John lives in Paris"}}'
    python -m tasks.serve --artifact A --artifact B --input requests.jsonl --output answers.jsonl

A request is ``{"task": NAME, "input": ...}``: NER ``{"tokens": [...]}`` or ``{"text": "..."}``, QA
``{"question", "context"}``, a GLUE/SuperGLUE task a record with its file's fields (e.g. RTE
``{"premise", "hypothesis"}``); or ``{"task": NAME, "inputs": [...]}``, several inputs of the task, each answered
with its own output or error. The HTTP server's endpoints, bounds and status codes: ``tasks/serve/server.py``;
every flag is a field of ``settings.py``.

Offline (JSONL), every non-blank line gets one output line, in order: ``{"id"?, "task", "output"}`` (``"outputs":
[{"output"} or {"error", "status"}, ...]`` for several inputs), or
``{"id"?, "task"?, "line", "error", "status"}`` for a line that failed: 400 not UTF-8/JSON/an object with
"task" and "input", 404/413/422 refused by the engine, 500 the engine failed on it. A failed line never
stops the others. The answers are written to a temporary file next to ``--output`` and renamed over it at
the end, so ``--output`` is never a partial file: it is the complete answers or, if the run dies, whatever
was there before (flushing line by line would leave a half-written file behind a crash). Counts go to
stdout, each failed line to stderr (the first 20). The input is read, answered and written 1,024 lines at a
time (``CHUNK_LINES``), never held whole.

Exit status of the JSONL mode: 0 when every line was answered; otherwise the number of failed lines,
at most 100 (so 100 means 100 or more). An input file that cannot be read at all (missing, no requests)
or bad flags: one line on stderr, exit status 2, nothing written (2 failed lines also exit with 2; then
the output file exists and stderr names the lines).
"""
from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Iterator

from tasks.common.allocator import keep_large_allocations
from tasks.common.errors import DataError, exit_on_bad_input
from tasks.common.flags import HelpFormatter, add_dataclass, from_namespace

from . import limits
from .isolation import answer_isolated
from .protocol import BadRequest, error_json, parse_json, read_request, result_json
from .settings import FLAG_OPTIONS, ServeCommand, ServeSettings
from .worker import EngineInfo, describe

if TYPE_CHECKING:  # the engine (torch) is imported after the flags are parsed: --help and usage errors come first
    from .engine import Engine

MAX_EXIT_STATUS = 100
SHOWN_ERRORS = 20
CHUNK_LINES = 1024  # request lines read, answered and written at a time (the file is never held whole)


def parser() -> argparse.ArgumentParser:
    """Every flag derived from the fields of ``ServeCommand`` and ``ServeSettings`` (``settings.py``)."""
    p = argparse.ArgumentParser(prog="python -m tasks.serve", description=__doc__.splitlines()[0],
                                formatter_class=HelpFormatter,
                                epilog="exit status (JSONL mode): 0 when every line was answered, else the number "
                                       f"of failed lines (at most {MAX_EXIT_STATUS}), each with an error line in "
                                       "--output; 2 also when the input file cannot be read at all (one line on "
                                       "stderr, nothing written)")
    add_dataclass(p, ServeCommand, options=FLAG_OPTIONS)
    add_dataclass(p.add_argument_group("engine, batching and HTTP server"), ServeSettings, options=FLAG_OPTIONS)
    return p


class Line:
    """One non-blank line of the input: its request, or why it cannot be one."""

    __slots__ = ("number", "size", "message", "task", "payload", "error")

    def __init__(self, number: int, size: int) -> None:
        self.number, self.size = number, size
        self.message: dict | None = None
        self.task: str | None = None
        self.payload: Any = None
        self.error: BadRequest | None = None


def check_requests(path: Path) -> None:
    """A DataError when ``path`` cannot be read or holds no request line (read up to its first one only): before
    the engine loads."""
    if not path.is_file():
        raise DataError(path, None, "file not found")
    if next(iter_requests(path), None) is None:
        raise DataError(path, None, "no requests")


def iter_requests(path: Path) -> Iterator[Line]:
    """Every non-blank line of ``path`` in turn, read or with its BadRequest; the file is read a line at a time,
    never whole (issue 43)."""
    try:
        with open(path, "rb") as handle:
            for number, data in enumerate(handle, start=1):
                data = data.removesuffix(b"\n").removesuffix(b"\r")
                if number == 1:
                    data = data.removeprefix(b"\xef\xbb\xbf")
                if data.strip():
                    yield _parsed(Line(number, len(data)), data)
    except OSError as err:
        raise DataError(path, None, f"cannot be read: {err.strerror}") from None


def _parsed(line: Line, data: bytes) -> Line:
    """``line`` with its request read from ``data``, or the BadRequest that says why it is none."""
    try:
        value = parse_json(data)
        line.message = value if isinstance(value, dict) else None
        line.task, line.payload = read_request(value)
    except BadRequest as err:
        line.error = BadRequest(f"invalid JSON: {err}") if err.malformed_json else err
    return line


def _record(line: Line, result: Any) -> dict:
    """The output line of ``line``: ``{"output"}``, ``{"outputs": [...]}`` for several inputs (each with its own
    output or error), or the line's error."""
    record: dict[str, Any] = {}
    if line.message is not None and "id" in line.message:
        record["id"] = line.message["id"]
    if line.task is not None:
        record["task"] = line.task
    if isinstance(result, BaseException):
        record.update(line=line.number, **error_json(result))
    elif isinstance(result, list):
        record["outputs"] = [result_json(item) for item in result]
    else:
        record["output"] = result
    return record


def answer_file(engine: Engine, source: Path, target: Path, batch: int,
                batch_tokens: int = limits.MAX_BATCH_TOKENS, chunk: int = CHUNK_LINES) -> dict[str, Any]:
    """The offline mode: the same ``Engine.answer`` path (and isolation) as the server, batches cut by the
    same rule (``--max-batch`` requests, ``--max-batch-tokens`` estimated tokens).  ``source`` is read, answered
    and written ``chunk`` lines at a time: only one chunk's requests and answers exist at once (issue 43).

    Counts: "answered", "unreadable" (400), "refused" (404/413/422 by the engine), "faults" (500), and
    "errors": (line number, message) of each failed line."""
    counts: dict[str, Any] = {"answered": 0, "unreadable": 0, "refused": 0, "faults": 0, "errors": []}
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".partial")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            requests = iter_requests(source)
            while lines := list(itertools.islice(requests, chunk)):
                for line, result in zip(lines, _answered(engine, lines, batch, batch_tokens)):
                    _write(out, line, result, counts)
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    return counts


def _answered(engine: Engine, lines: list[Line], batch: int, batch_tokens: int) -> list[Any]:
    """The result of each of ``lines``, in order: its BadRequest, or the engine's answer or error."""
    readable = [i for i, line in enumerate(lines) if line.error is None]
    results: list[Any] = [line.error for line in lines]
    for indices in limits.plan_batches([limits.estimate_tokens(lines[i].size) for i in readable], batch,
                                       batch_tokens):
        rows = [readable[i] for i in indices]
        requests = [(lines[i].task, lines[i].payload) for i in rows]
        for i, result in zip(rows, answer_isolated(engine, requests)):
            results[i] = result
    return results


def _write(out: IO[str], line: Line, result: Any, counts: dict[str, Any]) -> None:
    """The output line of ``line`` written to ``out``, and counted."""
    record = _record(line, result)
    try:
        text = json.dumps(record, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as err:  # the engine's answer is not JSON
        record = _record(line, _NotJSON(f"the engine's answer is not JSON: {err}"))
        text = json.dumps(record, ensure_ascii=False)
    out.write(text + "\n")
    status = record.get("status")
    if status is None:
        counts["answered"] += 1
        return
    counts["unreadable" if status == 400 else "faults" if status >= 500 else "refused"] += 1
    counts["errors"].append((line.number, record["error"]))


def announce(info: EngineInfo) -> None:
    print(f"serving {', '.join(f'{n} ({t.family}, {t.method})' for n, t in info.tasks.items())} on "
          f"{info.backbone_name}", flush=True)


def serve(artifacts: list[str], settings: ServeSettings) -> None:
    """The HTTP server, its engine loaded first (in a process of its own unless ``--no-engine-process``)."""
    from .server import create_app, run_server
    from .worker import EngineProcess, EngineThread, engine_threads, load_engine

    if settings.engine_process:  # the HTTP process never imports torch
        engine: EngineProcess | EngineThread = EngineProcess(load_engine, artifacts, settings,
                                                             threads=engine_threads(settings.engine_threads))
    else:
        from .engine import Engine

        engine = EngineThread(Engine(artifacts, settings))
    if settings.engine_process and settings.http_nice:  # after the spawn: the engine keeps its priority
        os.nice(settings.http_nice)
    announce(engine.info)
    run_server(create_app(engine, settings))


class _NotJSON(Exception):
    status = 500


@exit_on_bad_input
def run(argv: list[str]) -> int:
    """Serve, or answer a JSONL file; the exit status (see the module docstring)."""
    args = parser().parse_args(argv)
    command, settings = from_namespace(ServeCommand, args), from_namespace(ServeSettings, args)
    if (command.input is None) != (command.output is None):
        raise DataError(None, None, "--input and --output go together (the offline JSONL mode)")
    if command.input is not None:  # an unreadable input file fails before the engine loads, not after
        check_requests(command.input)
    if command.input is None:
        serve(command.artifacts, settings)
        return 0
    from .engine import Engine

    engine = Engine(command.artifacts, settings)
    announce(describe(engine))
    counts = answer_file(engine, command.input, command.output, settings.max_batch, settings.max_batch_tokens)
    failed = len(counts["errors"])
    for number, message in counts["errors"][:SHOWN_ERRORS]:
        print(f"{command.input}: line {number}: {message}", file=sys.stderr)
    if failed > SHOWN_ERRORS:
        print(f"... and {failed - SHOWN_ERRORS} more failed lines (see --output)", file=sys.stderr)
    print(f"{counts['answered']} answered, {counts['refused']} refused, {counts['unreadable']} unreadable, "
          f"{counts['faults']} server faults (see their error lines); wrote {command.output}")
    return min(failed, MAX_EXIT_STATUS)


def main(argv: list[str] | None = None) -> None:
    from tasks.common.errors import exit_on_bad_input
    from tasks.common.versions import check_versions

    exit_on_bad_input(check_versions)()  # a release outside the declared range: one line, exit 2
    keep_large_allocations()
    status = run(sys.argv[1:] if argv is None else argv)
    if status:
        raise SystemExit(status)


if __name__ == "__main__":
    main()

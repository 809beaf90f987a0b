"""Serve many trained tasks on one frozen backbone: over HTTP, or a JSONL file of requests offline.

    python -m tasks.serve --artifact runs/ner-conll2003-prefix --artifact qa=runs/qa-squad-prefix --port 8000
    curl -s localhost:8000/predict -d '{"task": "conll2003", "input": {"text": "John lives in Paris"}}'
    python -m tasks.serve --artifact A --artifact B --input requests.jsonl --output answers.jsonl

A request is ``{"task": NAME, "input": ...}``: NER ``{"tokens": [...]}`` or ``{"text": "..."}``, QA
``{"question", "context"}``, a GLUE/SuperGLUE task a record with its file's fields (e.g. RTE
``{"premise", "hypothesis"}``). The HTTP server's endpoints, bounds and status codes: ``tasks/serve/server.py``.

Offline (JSONL), every non-blank line gets one output line, in order: ``{"id"?, "task", "output"}``, or
``{"id"?, "task"?, "line", "error", "status"}`` for a line that failed: 400 not UTF-8/JSON/an object with
"task" and "input", 404/413/422 refused by the engine, 500 the engine failed on it. A failed line never
stops the others. The answers are written to a temporary file next to ``--output`` and renamed over it at
the end, so ``--output`` is never a partial file: it is the complete answers or, if the run dies, whatever
was there before (flushing line by line would leave a half-written file behind a crash). Counts go to
stdout, each failed line to stderr (the first 20).

Exit status of the JSONL mode: 0 when every line was answered; otherwise the number of failed lines,
at most 100 (so 100 means 100 or more). An input file that cannot be read at all (missing, no requests)
or bad flags: one line on stderr, exit status 2, nothing written (2 failed lines also exit with 2; then
the output file exists and stderr names the lines).
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from models.precision import PRECISIONS
from tasks.common.allocator import keep_large_allocations
from tasks.common.flags import POSITIVE
from tasks.common.errors import DataError, exit_on_bad_input

from . import limits
from .engine import Engine
from .isolation import answer_isolated
from .protocol import BadRequest, parse_json, read_request

MAX_EXIT_STATUS = 100
SHOWN_ERRORS = 20


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: '{text}'") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, not {text}")
    return value


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m tasks.serve", description=__doc__.splitlines()[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter,
                                epilog="exit status (JSONL mode): 0 when every line was answered, else the number "
                                       f"of failed lines (at most {MAX_EXIT_STATUS}), each with an error line in "
                                       "--output; 2 also when the input file cannot be read at all (one line on "
                                       "stderr, nothing written)")
    p.add_argument("--artifact", action="append", required=True, metavar="[NAME=]FOLDER",
                   help="a trained artifact (repeatable); its task is named NAME, else its dataset or task name")
    p.add_argument("--model", default=None, help="the backbone to serve on (default: the first artifact's encoder)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--max-batch", type=POSITIVE, default=limits.MAX_BATCH,
                   help="requests answered together at most (also the JSONL mode's batch)")
    p.add_argument("--max-batch-tokens", type=POSITIVE, default=limits.MAX_BATCH_TOKENS,
                   help="tokens in one batch at most: the batcher estimates a request as its bytes / 4, the engine "
                        "counts padded sub-tokens per forward; a larger request runs alone")
    p.add_argument("--batch-wait-ms", type=float, default=5.0,
                   help="how long a request waits for others to join its batch")
    p.add_argument("--max-rows", type=POSITIVE, default=64, help="encoder rows in one forward pass at most")
    p.add_argument("--max-request-rows", type=POSITIVE, default=32,
                   help="encoder rows one request may need (QA windows, choices, options) at most; more get 413")
    p.add_argument("--max-request-tokens", type=POSITIVE, default=8192,
                   help="sub-tokens of one request at most; more get 413 (text over 16 characters per allowed "
                        "sub-token is refused before it is tokenized)")
    p.add_argument("--max-body-bytes", type=POSITIVE, default=limits.MAX_BODY_BYTES,
                   help="larger request bodies get 413, before they are read when they declare their length")
    p.add_argument("--max-queue", type=POSITIVE, default=limits.MAX_QUEUE,
                   help="requests waiting for a batch at most; more get 503 with Retry-After")
    p.add_argument("--request-timeout", type=_positive_float, default=limits.REQUEST_TIMEOUT,
                   help="seconds from a request's arrival to its answer; later: 503, its queued work dropped")
    p.add_argument("--drain-seconds", type=_positive_float, default=limits.DRAIN_SECONDS,
                   help="after SIGTERM: new requests get 503, in-flight ones are answered for this long, then exit")
    p.add_argument("--precision", choices=PRECISIONS, default="fp32",
                   help="precision of the shared backbone: bf16 (native bf16 hardware only) or int8 (CPU; each "
                        "request then runs alone, since int8 scales activations over the whole batch)")
    p.add_argument("--device", default=None, help="cpu, cuda or cuda:N (default: cuda when there is a GPU)")
    p.add_argument("--input", type=Path, default=None, help="answer this JSONL file of requests instead of serving")
    p.add_argument("--output", type=Path, default=None, help="where the JSONL answers go (with --input)")
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


def read_requests(path: Path) -> list[Line]:
    """Every non-blank line of ``path``, read or with its BadRequest; a DataError only when the file itself
    cannot be read or holds no line at all."""
    if not path.is_file():
        raise DataError(path, None, "file not found")
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise DataError(path, None, f"cannot be read: {err.strerror}") from None
    lines = []
    for number, data in enumerate(raw.removeprefix(b"\xef\xbb\xbf").split(b"\n"), start=1):
        data = data.removesuffix(b"\r")
        if not data.strip():
            continue
        line = Line(number, len(data))
        try:
            value = parse_json(data)
            line.message = value if isinstance(value, dict) else None
            line.task, line.payload = read_request(value)
        except BadRequest as err:
            line.error = BadRequest(f"invalid JSON: {err}") if err.malformed_json else err
        lines.append(line)
    if not lines:
        raise DataError(path, None, "no requests")
    return lines


def _record(line: Line, result: Any) -> dict:
    record: dict[str, Any] = {}
    if line.message is not None and "id" in line.message:
        record["id"] = line.message["id"]
    if line.task is not None:
        record["task"] = line.task
    if hasattr(result, "status") and isinstance(result, BaseException):
        record.update(line=line.number, error=str(result) or type(result).__name__, status=result.status)
    else:
        record["output"] = result
    return record


def answer_file(engine: Engine, source: Path, target: Path, batch: int,
                batch_tokens: int = limits.MAX_BATCH_TOKENS, lines: list[Line] | None = None) -> dict[str, Any]:
    """The offline mode: the same ``Engine.answer`` path (and isolation) as the server, batches cut by the
    same rule (``--max-batch`` requests, ``--max-batch-tokens`` estimated tokens).

    Counts: "answered", "unreadable" (400), "refused" (404/413/422 by the engine), "faults" (500), and
    "errors": (line number, message) of each failed line. ``lines``: ``source`` already read."""
    lines = read_requests(source) if lines is None else lines
    readable = [line for line in lines if line.error is None]
    results: dict[int, Any] = {line.number: line.error for line in lines if line.error is not None}
    for indices in limits.plan_batches([limits.estimate_tokens(line.size) for line in readable], batch,
                                       batch_tokens):
        chunk = [readable[i] for i in indices]
        for line, result in zip(chunk, answer_isolated(engine, [(line.task, line.payload) for line in chunk])):
            results[line.number] = result
    counts: dict[str, Any] = {"answered": 0, "unreadable": 0, "refused": 0, "faults": 0, "errors": []}
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".partial")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            for line in lines:
                record = _record(line, results[line.number])
                try:
                    text = json.dumps(record, ensure_ascii=False, allow_nan=False)
                except (TypeError, ValueError) as err:  # the engine's answer is not JSON
                    record = _record(line, _NotJSON(f"the engine's answer is not JSON: {err}"))
                    text = json.dumps(record, ensure_ascii=False)
                out.write(text + "\n")
                status = record.get("status")
                if status is None:
                    counts["answered"] += 1
                    continue
                counts["unreadable" if status == 400 else "faults" if status >= 500 else "refused"] += 1
                counts["errors"].append((line.number, record["error"]))
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    return counts


class _NotJSON(Exception):
    status = 500


@exit_on_bad_input
def run(argv: list[str]) -> int:
    """Serve, or answer a JSONL file; the exit status (see the module docstring)."""
    args = parser().parse_args(argv)
    if (args.input is None) != (args.output is None):
        raise DataError(None, None, "--input and --output go together (the offline JSONL mode)")
    # an unreadable input file fails before the engine loads, not after
    lines = read_requests(args.input) if args.input is not None else None
    engine = Engine(args.artifact, backbone=args.model, max_rows=args.max_rows, precision=args.precision,
                    device=args.device, max_batch_tokens=args.max_batch_tokens,
                    max_request_rows=args.max_request_rows, max_request_tokens=args.max_request_tokens)
    print(f"serving {', '.join(f'{n} ({t.family.name}, {t.method})' for n, t in engine.tasks.items())} on "
          f"{engine.backbone_name}", flush=True)
    if args.input is not None:
        counts = answer_file(engine, args.input, args.output, args.max_batch, args.max_batch_tokens, lines)
        failed = len(counts["errors"])
        for number, message in counts["errors"][:SHOWN_ERRORS]:
            print(f"{args.input}: line {number}: {message}", file=sys.stderr)
        if failed > SHOWN_ERRORS:
            print(f"... and {failed - SHOWN_ERRORS} more failed lines (see --output)", file=sys.stderr)
        print(f"{counts['answered']} answered, {counts['refused']} refused, {counts['unreadable']} unreadable, "
              f"{counts['faults']} server faults (see their error lines); wrote {args.output}")
        return min(failed, MAX_EXIT_STATUS)
    from .server import create_app, run_server

    app = create_app(engine, args.max_batch, args.batch_wait_ms, args.max_body_bytes,
                     max_batch_tokens=args.max_batch_tokens, max_queue=args.max_queue,
                     request_timeout=args.request_timeout)
    run_server(app, args.host, args.port, drain_seconds=args.drain_seconds,
               limit_concurrency=limits.concurrency_limit(args.max_queue, args.max_batch))
    return 0


def main(argv: list[str] | None = None) -> None:
    keep_large_allocations()
    status = run(sys.argv[1:] if argv is None else argv)
    if status:
        raise SystemExit(status)


if __name__ == "__main__":
    main()

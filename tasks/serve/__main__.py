"""Serve many trained tasks on one frozen backbone: over HTTP, or a JSONL file of requests offline.

    python -m tasks.serve --artifact runs/ner-conll2003-prefix --artifact qa=runs/qa-squad-prefix --port 8000
    curl -s localhost:8000/predict -d '{"task": "conll2003", "input": {"text": "John lives in Paris"}}'
    python -m tasks.serve --artifact A --artifact B --input requests.jsonl --output answers.jsonl

A request is ``{"task": NAME, "input": ...}``: NER ``{"tokens": [...]}`` or ``{"text": "..."}``, QA
``{"question", "context"}``, a GLUE/SuperGLUE task a record with its file's fields (e.g. RTE
``{"premise", "hypothesis"}``). Offline, each output line is ``{"id"?, "task", "output"}`` or
``{"id"?, "task", "error", "status"}``; the count of each is printed.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from models.precision import PRECISIONS
from tasks.common.allocator import keep_large_allocations
from tasks.common.flags import POSITIVE
from tasks.common.errors import DataError, exit_on_bad_input
from tasks.common.textfile import read_jsonl

from .engine import Engine, RequestError


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m tasks.serve", description=__doc__.splitlines()[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--artifact", action="append", required=True, metavar="[NAME=]FOLDER",
                   help="a trained artifact (repeatable); its task is named NAME, else its dataset or task name")
    p.add_argument("--model", default=None, help="the backbone to serve on (default: the first artifact's encoder)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--max-batch", type=POSITIVE, default=32, help="requests answered together at most")
    p.add_argument("--batch-wait-ms", type=float, default=5.0,
                   help="how long a request waits for others to join its batch")
    p.add_argument("--max-rows", type=POSITIVE, default=64, help="encoder rows in one forward pass at most")
    p.add_argument("--max-body-bytes", type=POSITIVE, default=1_000_000, help="larger request bodies get 413")
    p.add_argument("--precision", choices=PRECISIONS, default="fp32",
                   help="precision of the shared backbone: bf16 (native bf16 hardware only) or int8 (CPU)")
    p.add_argument("--input", type=Path, default=None, help="answer this JSONL file of requests instead of serving")
    p.add_argument("--output", type=Path, default=None, help="where the JSONL answers go (with --input)")
    return p


def read_requests(path: Path) -> list[dict]:
    """Every line a JSON object with "task" and "input"; a bad line is an error naming it (nothing is answered)."""
    requests = []
    for number, request in read_jsonl(path):
        if not isinstance(request.get("task"), str) or "input" not in request:
            raise DataError(path, number, 'a request is a JSON object {"task": NAME, "input": {...}}')
        requests.append(request)
    if not requests:
        raise DataError(path, None, "no requests")
    return requests


def answer_file(engine: Engine, source: Path, target: Path, batch: int) -> dict[str, int]:
    """The offline mode: the same ``Engine.answer`` path as the server, ``batch`` requests at a time."""
    requests = read_requests(source)
    counts = {"answered": 0, "refused": 0}
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target, "w", encoding="utf-8") as out:
        for start in range(0, len(requests), batch):
            chunk = requests[start: start + batch]
            for request, result in zip(chunk, engine.answer([(r["task"], r["input"]) for r in chunk])):
                line = {k: request[k] for k in ("id",) if k in request} | {"task": request["task"]}
                if isinstance(result, RequestError):
                    line.update(error=str(result), status=result.status)
                    counts["refused"] += 1
                else:
                    line["output"] = result
                    counts["answered"] += 1
                out.write(json.dumps(line, ensure_ascii=False) + "\n")
    return counts


@exit_on_bad_input
def run(argv: list[str]) -> None:
    args = parser().parse_args(argv)
    if (args.input is None) != (args.output is None):
        raise DataError(None, None, "--input and --output go together (the offline JSONL mode)")
    engine = Engine(args.artifact, backbone=args.model, max_rows=args.max_rows, precision=args.precision)
    print(f"serving {', '.join(f'{n} ({t.family.name}, {t.method})' for n, t in engine.tasks.items())} on "
          f"{engine.backbone_name}", flush=True)
    if args.input is not None:
        counts = answer_file(engine, args.input, args.output, args.max_batch)
        print(f"{counts['answered']} answered, {counts['refused']} refused (see their error lines); "
              f"wrote {args.output}")
        return
    import uvicorn

    from .server import create_app

    app = create_app(engine, args.max_batch, args.batch_wait_ms, args.max_body_bytes)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")


def main(argv: list[str] | None = None) -> None:
    keep_large_allocations()
    run(sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    main()

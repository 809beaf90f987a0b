"""Every setting of ``python -m tasks.serve``, one field each: its default, help and bounds (one source).

``ServeSettings`` holds what the engine, the batcher and the HTTP server read (``Engine(artifacts, settings)``,
``create_app(engine, settings)``, ``run_server(app)``); ``ServeCommand`` what to serve and, offline, which
files.  The command line is derived from these fields by ``tasks/common/flags.py``, as the task CLIs derive
theirs; the numbers themselves, and why they are what they are, live in ``limits.py``.  Nothing else in
``tasks/serve`` has a default of its own.
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from models.options import option
from models.choices import PRECISIONS

from . import limits


def positive_seconds(text: str) -> float:
    """argparse type: a finite number of seconds above 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: '{text}'") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, not {text}")
    return value


@dataclass
class ServeSettings:
    """The engine's bounds and precision, the batcher's, and the HTTP server's (``--input`` mode: the first two)."""

    # the engine
    backbone: str | None = option(None, "the backbone to serve on (default: the first artifact's encoder)",
                                  flag="--model")
    precision: str = option("fp32", "precision of the shared backbone: bf16 (native bf16 hardware only) or int8 "
                                    "(CPU; each request then runs alone, since int8 scales activations over the "
                                    "whole batch)", choices=PRECISIONS)
    device: str | None = option(None, "cpu, cuda or cuda:N (default: cuda when there is a GPU)")
    max_rows: int = option(limits.MAX_ROWS, "encoder rows in one forward pass at most", minimum=1)
    max_batch_tokens: int = option(limits.MAX_BATCH_TOKENS, "tokens in one batch at most: the batcher estimates a "
                                                            "request as its bytes / 4, the engine counts padded "
                                                            "sub-tokens per forward; a larger request runs alone",
                                   minimum=1)
    max_request_rows: int = option(limits.MAX_REQUEST_ROWS, "encoder rows one request may need (QA windows, "
                                                            "choices, options, several \"inputs\") at most; more "
                                                            "get 413", minimum=1)
    max_request_tokens: int = option(limits.MAX_REQUEST_TOKENS, "sub-tokens of one input at most; more get 413 "
                                                                "(text over 16 characters per allowed sub-token is "
                                                                "refused before it is tokenized)", minimum=1)
    # the batcher
    max_batch: int = option(limits.MAX_BATCH, "requests answered together at most (also the JSONL mode's batch)",
                            minimum=1)
    batch_wait_ms: float = option(limits.BATCH_WAIT_MS, "how long a request waits for others to join its batch",
                                  minimum=0.0)
    max_queue: int = option(limits.MAX_QUEUE, "requests admitted and not yet in a batch at most; more get 503 with "
                                              "Retry-After, decided before their body is read", minimum=1)
    request_timeout: float = option(limits.REQUEST_TIMEOUT, "seconds from a request's arrival to its answer; later: "
                                                            "503, its queued work dropped")
    # the HTTP server
    host: str = option(limits.HOST, "address to listen on")
    port: int = option(limits.PORT, "port to listen on (0: any free one; the URL is printed)", minimum=0)
    max_body_bytes: int = option(limits.MAX_BODY_BYTES, "larger request bodies get 413, before they are read when "
                                                        "they declare their length", minimum=1)
    drain_seconds: float = option(limits.DRAIN_SECONDS, "after SIGTERM: new requests get 503, in-flight ones are "
                                                        "answered for this long, then exit")
    access_log: bool = option(False, "log one line per HTTP request (uvicorn's access log) on stderr")
    engine_process: bool = option(True, "run the engine in a process of its own, fed batches by the HTTP process "
                                        "(tasks/serve/worker.py); --no-engine-process: on a thread of the HTTP "
                                        "process, which shares its GIL and cores with the request handling")
    engine_threads: int = option(0, "torch's threads in the engine process (0: one less than the cores, at least "
                                    "1, leaving a core to the HTTP process); with --no-engine-process: torch's "
                                    "own", minimum=0)
    http_nice: int = option(limits.HTTP_NICE, "with the engine in its own process: the HTTP process lowers its own "
                                              "scheduling priority by this much (nice) once the engine process has "
                                              "started, so that a storm of requests it refuses cannot take the "
                                              "engine's cores (0: as the engine)", minimum=0, below=20)

    def changed(self, **changes: Any) -> ServeSettings:
        """A copy with ``changes`` (field names; an unknown one is a TypeError)."""
        return replace(self, **changes) if changes else self

    def differences(self, other: ServeSettings, names: tuple[str, ...]) -> dict[str, tuple[Any, Any]]:
        """The fields of ``names`` that differ: name -> (this value, the other's)."""
        return {n: (getattr(self, n), getattr(other, n)) for n in names if getattr(self, n) != getattr(other, n)}

    def bounds(self) -> dict[str, Any]:
        """The bounds in force, by flag name (``GET /info``)."""
        skip = {"backbone", "precision", "device", "host", "port", "access_log", "engine_process",
                "engine_threads", "http_nice"}
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name not in skip}


# the fields ``Engine`` reads (fixed when it is built)
ENGINE_FIELDS = ("backbone", "precision", "device", "max_rows", "max_batch_tokens", "max_request_rows",
                 "max_request_tokens")


@dataclass
class ServeCommand:
    """What ``python -m tasks.serve`` serves, and the files of its offline JSONL mode."""

    artifacts: list[str] = option(help="a trained artifact (repeatable); its task is named NAME, else its dataset or "
                                       "task name", flag="--artifact", metavar="[NAME=]FOLDER")
    input: Path | None = option(None, "answer this JSONL file of requests instead of serving")
    output: Path | None = option(None, "where the JSONL answers go (with --input)")


# argparse keywords the fields' types cannot say: seconds above 0, and --artifact repeated or with several folders
FLAG_OPTIONS: dict[str, dict[str, Any]] = {
    "request_timeout": {"type": positive_seconds},
    "drain_seconds": {"type": positive_seconds},
    "artifacts": {"action": "extend"},
}

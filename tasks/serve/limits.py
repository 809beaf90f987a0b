"""The serving bounds: their defaults (and why), the cost estimate a batch is bounded by, and the rule
that cuts a stream of requests into batches (the server's batcher and the JSONL mode share it).

Defaults:

* ``MAX_BATCH`` 32 requests and ``MAX_BATCH_TOKENS`` 16,384 estimated tokens per engine call (the value
  text-embeddings-inference uses for ``--max-batch-tokens``): at a few hundred tokens a request the
  token budget binds before the count does, so one batch of long inputs cannot cost 32 times one long input.
* ``MAX_ROWS`` 64 encoder rows in one forward pass: two full batches of single-row requests.
* ``MAX_REQUEST_ROWS`` 32 rows and ``MAX_REQUEST_TOKENS`` 8,192 sub-tokens for one request (QA windows,
  choices, several ``"inputs"``): one request cannot cost more than half a forward's rows.
* ``BATCH_WAIT_MS`` 5 ms a request waits for others to join its batch: well under one forward's time.
* ``MAX_BODY_BYTES`` 1,000,000: a request body larger than that is refused (413) before it is parsed.
* ``LINGER_BYTES`` 8,000,000 and ``LINGER_SECONDS`` 5 s: after a 413 for a body over the cap, up to that much
  of the body is read and thrown away before the connection closes (nginx's lingering close, whose
  ``lingering_timeout`` is 5 s), so a client that sends its whole body before reading hears the 413 instead
  of a reset; a client that sent ``Expect: 100-continue`` is answered before it sends anything.
* ``MAX_QUEUE`` 256 waiting requests (8 full batches): beyond it a request is refused at once with 503
  instead of waiting longer than any client would.
* ``REQUEST_TIMEOUT`` 60 s from a request's arrival to its answer (TorchServe's default is 120 s); its
  work is dropped if it is still queued.
* ``DRAIN_SECONDS`` 20 s for in-flight requests after SIGTERM: under Kubernetes' default 30 s grace
  period, so the server exits by itself before it is killed.
* ``READY_HIGH_WATER`` 0.8: ``GET /ready`` says 503 once the queue holds 80 % of ``--max-queue``, so a
  load balancer sends new work elsewhere before requests are refused.
* ``HTTP_NICE`` 10: the HTTP process's nice above the engine process's (``worker.py``), so that under a storm of
  refused requests the engine gets the cores first; the HTTP process still gets about a tenth of a contended
  core (weight 110 against 1024), enough to refuse fast, and every core it wants while the engine is idle.
* The engine's torch threads (``--engine-threads``, default one less than the cores): measured on 2 cores (AMD EPYC,
  quiet, wrk on the same cores; ``python -m benchmarks serving --only overload``, the second with
  ``--server-flags='--engine-threads 2'``): ``benchmarks/results/serving_overload.md`` and
  ``serving_overload-engine-threads-2.md``.  Two threads answer more at every level but hold less of it under
  overload, and their refusals slow past the 50 ms aim at 8x: the engine's second thread takes the core the HTTP
  process refuses on.  The default keeps refusals fast and the rate flat; ``--engine-threads 2`` is for a machine
  whose clients back off (``Retry-After``).  The full run: ``benchmarks/results/serving.md``.
"""
from __future__ import annotations

from collections.abc import Sequence

MAX_BATCH = 32
MAX_BATCH_TOKENS = 16_384
MAX_ROWS = 64
MAX_REQUEST_ROWS = 32
MAX_REQUEST_TOKENS = 8192
BATCH_WAIT_MS = 5.0
MAX_BODY_BYTES = 1_000_000
LINGER_BYTES = 8_000_000
LINGER_SECONDS = 5.0
MAX_QUEUE = 256
REQUEST_TIMEOUT = 60.0
DRAIN_SECONDS = 20.0
READY_HIGH_WATER = 0.8
HTTP_NICE = 10
RETRY_AFTER_SECONDS = 1  # the Retry-After of every 503: overload passes in about a batch's time
HOST, PORT = "127.0.0.1", 8000  # loopback unless told otherwise: the server has no authentication

BYTES_PER_TOKEN = 4  # English text runs about 4 bytes per (sub)token; the JSON keys make this an overestimate


def estimate_tokens(body_bytes: int) -> int:
    """A request's cost for the batch budget: its body's bytes / 4, at least 1.

    Cheap (no tokenizer on the event loop) and an overestimate for short inputs, whose JSON keys count too;
    the engine bounds the rows of one forward itself (``--max-rows``) and refuses over-long inputs (413).
    """
    return max(1, body_bytes // BYTES_PER_TOKEN)


def fits(batch_size: int, batch_tokens: int, cost: int, max_batch: int, max_batch_tokens: int) -> bool:
    """Whether one more request of ``cost`` joins a batch of ``batch_size`` requests and ``batch_tokens``.

    The first request of a batch always joins, however large: a request over the budget runs alone.
    """
    if batch_size == 0:
        return True
    return batch_size < max_batch and batch_tokens + cost <= max_batch_tokens


def plan_batches(costs: Sequence[int], max_batch: int, max_batch_tokens: int) -> list[list[int]]:
    """Consecutive indices of ``costs`` cut into batches by ``fits`` (order kept: no request jumps the queue)."""
    batches: list[list[int]] = []
    current: list[int] = []
    tokens = 0
    for index, cost in enumerate(costs):
        if not fits(len(current), tokens, cost, max_batch, max_batch_tokens):
            batches.append(current)
            current, tokens = [], 0
        current.append(index)
        tokens += cost
    if current:
        batches.append(current)
    return batches

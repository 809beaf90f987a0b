"""Admission: which requests the server takes, decided from the request line and headers alone.

Every refusal is the server's own JSON 503 with ``Retry-After`` (``{"error", "status"}``, as every other error),
counted by reason in ``GET /health`` and ``GET /metrics``.  ``Front`` is a plain ASGI layer in front of the app's
routing: for ``POST /predict`` it refuses (shutting down, the batching worker not running, ``--max-queue``
requests already admitted and not yet in a batch) or answers 413 (a declared ``Content-Length`` over
``--max-body-bytes``) before the body is read, any JSON parsed or any task looked up, with response bytes
encoded once when the app is built.  uvicorn's own ``limit_concurrency`` is not used: above it uvicorn answers a
plain-text 503 that no client can tell from a proxy's, which ``--max-queue`` now does in JSON.

Design (issue 41): under a storm of requests that will be refused, the model's worker must keep its share of
the machine.  Both ways weighed are taken:

* a refusal costs as little as it can in Python: one counter compared, pre-encoded bytes sent; no routing, no
  request object, no body, no JSON, no logging unless ``--access-log``;
* that was not enough with the engine on a thread of this process: the overload phase of ``python -m
  benchmarks serving`` (``wrk`` at 1x to 8x a sustainable concurrency, 2 cores) answered 83 requests/s at 1x
  and 26 and 20 at 4x and 8x, the storm's ~2,000 refusals/s taking the GIL and the cores from the forward.  So
  the engine runs in a process of its own fed by a bounded queue (TorchServe's frontend and workers:
  ``worker.py``; ``--max-queue`` here, one batch on the pipe at a time), and this process lowers its own
  scheduling priority (``--http-nice``), so that the cores the storm would take go to the engine first
  (measurements in ``limits.py``, ``HTTP_NICE``).

A place in the queue is a ``Slot``: taken here, given back when the batcher takes the request into a batch or
when its handler ends, whichever comes first; so ``--max-queue`` bounds the requests admitted and not yet
computing (those still sending their body included), with one comparison.

After a 413 for a body over the cap the body is read and dropped, up to ``limits.LINGER_BYTES`` within
``limits.LINGER_SECONDS``, before the connection closes (nginx's lingering close): a client that sends its
whole body before reading gets the 413 instead of a connection reset.  A client that sent
``Expect: 100-continue`` is answered at once, before it sends anything.
"""
from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from starlette.responses import JSONResponse

from . import limits

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

PREDICT = "/predict"
SLOT = "tasks.serve.slot"  # the scope key of an admitted request's Slot
REASONS = ("draining", "not_running", "queue_full")


def error_body(status: int, message: str) -> bytes:
    return json.dumps({"error": message, "status": status}, separators=(",", ":")).encode()


def error_headers(status: int, body: bytes, close: bool = False) -> list[tuple[bytes, bytes]]:
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if status == 503:
        headers.append((b"retry-after", str(limits.RETRY_AFTER_SECONDS).encode()))
    if close:
        headers.append((b"connection", b"close"))
    return headers


class Slot:
    """An admitted request's place among the ``--max-queue`` waiting ones, given back once."""

    __slots__ = ("_admission",)

    def __init__(self, admission: Admission) -> None:
        self._admission: Admission | None = admission

    def release(self) -> None:
        if self._admission is not None:
            self._admission.waiting -= 1
            self._admission = None


class Admission:
    """The counters every refusal is decided on, and what ``run_server``'s drain needs (refuse new requests,
    count the admitted ones, abort the rest)."""

    def __init__(self, max_queue: int, running: Callable[[], bool], abort: Callable[[str], None]) -> None:
        self.max_queue, self._running, self.abort = max_queue, running, abort
        self.draining = False
        self.closing = False  # the drain is over and the listener closed: every answer closes its connection
        self.inflight = 0  # admitted and not yet answered (the drain waits for them)
        self.waiting = 0  # admitted and not yet taken into a batch (bounded by max_queue)
        self.refused = dict.fromkeys(REASONS, 0)
        messages = {"draining": "shutting down: not taking new requests",
                    "not_running": "not ready: the engine or its batching worker is not running (GET /health)",
                    "queue_full": f"overloaded: {max_queue} requests already waiting (--max-queue); retry later"}
        self.bodies = {reason: error_body(503, message) for reason, message in messages.items()}
        self.headers = {(reason, close): error_headers(503, body, close)
                        for reason, body in self.bodies.items() for close in (False, True)}

    def refusal(self) -> str | None:
        """Why a new request is refused now (a key of ``REASONS``), or None."""
        if self.draining:
            return "draining"
        if not self._running():
            return "not_running"
        if self.waiting >= self.max_queue:
            return "queue_full"
        return None

    def admit(self) -> Slot:
        self.inflight += 1
        self.waiting += 1
        return Slot(self)

    def leave(self, slot: Slot) -> None:
        slot.release()
        self.inflight -= 1


class Front:
    """ASGI layer before the app's routing: ``POST /predict`` is refused (503) or over the body cap (413) here,
    from its headers; every other request passes untouched."""

    def __init__(self, app: Callable, admission: Admission, max_body_bytes: int) -> None:
        self.app, self.admission, self.max_body_bytes = app, admission, max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != PREDICT or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        admission = self.admission
        reason = admission.refusal()
        if reason is not None:
            admission.refused[reason] += 1
            await send({"type": "http.response.start", "status": 503,
                        "headers": admission.headers[(reason, admission.closing)]})
            await send({"type": "http.response.body", "body": admission.bodies[reason]})
            return
        early = self._declared_length_error(scope)
        if early is not None:
            await early(scope, receive, send)
            return
        slot = scope[SLOT] = admission.admit()
        try:
            await self.app(scope, receive, send)
        finally:
            admission.leave(slot)

    def _declared_length_error(self, scope: Scope) -> JSONResponse | None:
        """400 for a Content-Length that is not a number, 413 (lingering) for one over the cap, else None."""
        declared = next((value for name, value in scope["headers"] if name == b"content-length"), None)
        if declared is None:
            return None
        text = declared.decode("latin-1")
        if not text.strip().isdigit():
            return JSONResponse({"error": f"Content-Length '{text}' is not a number", "status": 400}, 400)
        if int(text) <= self.max_body_bytes:
            return None
        return Lingering(413, f"a request body of {int(text)} bytes; at most {self.max_body_bytes} "
                              "(--max-body-bytes)", read_yet=False)


def expects_continue(scope: Scope) -> bool:
    return any(name == b"expect" and value.lower() == b"100-continue" for name, value in scope["headers"])


class Lingering(JSONResponse):
    """A JSON error that closes the connection after reading and dropping what the client still sends of its body
    (``limits.LINGER_BYTES`` within ``limits.LINGER_SECONDS`` at most); nothing is read when the client waits
    for ``100 Continue`` and nothing was read yet (it has not sent its body and will not)."""

    def __init__(self, status: int, message: str, read_yet: bool) -> None:
        super().__init__({"error": message, "status": status}, status, {"Connection": "close"})
        self.read_yet = read_yet

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        if not self.read_yet and expects_continue(scope):
            await send({"type": "http.response.body", "body": self.body})
            return
        await send({"type": "http.response.body", "body": self.body, "more_body": True})
        await discard_body(receive)
        await send({"type": "http.response.body", "body": b""})


async def discard_body(receive: Receive, most: int = limits.LINGER_BYTES,
                       seconds: float = limits.LINGER_SECONDS) -> int:
    """Read and drop the rest of the request body: until it ends, the client goes, more than ``most`` bytes came
    or ``seconds`` passed; the bytes dropped (-1 when the time ran out)."""
    async def drop() -> int:
        dropped = 0
        while dropped <= most:
            message = await receive()
            dropped += len(message.get("body", b""))
            if message["type"] != "http.request" or not message.get("more_body", False):
                break
        return dropped

    try:
        return await asyncio.wait_for(drop(), seconds)
    except asyncio.TimeoutError:
        return -1

"""HTTP serving on FastAPI (served by uvicorn): concurrent requests of any task batched into shared forwards.

FastAPI and uvicorn are the Python ecosystem's most used async web stack, actively maintained, with
a plain ASGI interface; the batching is ours: requests wait at most ``wait_ms`` for others to join,
at most ``max_batch`` of them and ``max_batch_tokens`` estimated tokens (body bytes / 4, see
``limits.py``) go into one ``Engine.answer`` call, run in an engine thread so the event loop keeps
accepting requests meanwhile. A request larger than the token budget runs alone.

    POST /predict   {"task": "conll2003", "input": {"text": "John lives in Paris"}}  ->  {"task", "output", "seconds"}
    GET  /health    liveness: 200 while the process serves, {"status": "ok", "ready", "draining", "tasks", counters}
    GET  /ready     readiness: 200 {"status": "ready"}; 503 before the batching worker runs, while the queue
                    holds the high-water mark (80 % of ``max_queue``) or more, and while shutting down
                    (``python -m tasks.serve`` loads the engine before it listens: no answer at all before)
    GET  /tasks     every task: family, method, labels, artifact (its folder's name, not its path)

Isolation: one request's failure is that request's answer. The engine's per-request errors answer their
request only; if ``Engine.answer`` raises for a batch (anything but KeyboardInterrupt/SystemExit), each
request of the batch is retried alone so only the culprit gets the 500 (``isolation.py``); the worker
never dies of an engine error or a bug of its own.

Back-pressure: at most ``max_queue`` requests wait; more are refused with 503 and ``Retry-After`` rather
than 429, because the refusal is about this server's capacity, not about one client's rate (429 is a
per-client rate limit, RFC 6585), a load balancer takes 503 as "try another replica", TorchServe answers
503 when its job queue is full, and uvicorn's own ``limit_concurrency`` answers 503 too: one status for
overload. A request not answered within ``request_timeout`` seconds of its arrival gets 503 as well (not
504: there is no upstream gateway here, the cause is the same overload, and the dropped work makes a retry
safe); if it was still queued its work is dropped (the batcher skips requests nobody waits for). A client
that disconnects while waiting has its request dropped the same way. After SIGTERM (``run_server``) new
requests get 503, in-flight ones are answered for up to ``drain_seconds``, then the listener closes (new
connections are refused), each open connection's next request gets 503 and ``Connection: close`` (for up
to 1 s), and the process exits.

Every error is JSON ``{"error": "...", "status": N}``:

    400  the body is not a request: not UTF-8, not JSON (or NaN/Infinity), nested deeper than 64 levels,
         an integer of more than 4,300 digits, not an object, "task" missing or not a non-empty string,
         "input" missing; also a Content-Length that is not a number
    404  unknown task (or an unknown path)
    405  a method the path does not take
    408  the body did not arrive within the request timeout
    413  the body is larger than ``max_body_bytes`` (``--max-body-bytes``; refused from its Content-Length
         before it is read, or cut off while a chunked body streams in), or the engine refuses an input too
         long to answer without cutting it (``--max-rows``/the task's max length)
    422  an input the task cannot read
    500  a server fault: the engine failed on this request, or gave an answer that is not JSON
    503  the queue is full (``--max-queue``), no answer within ``--request-timeout``, the worker is not
         running, or the server is shutting down (``--drain-seconds``); always with ``Retry-After``.
         uvicorn itself answers a plain-text 503 above ``limit_concurrency`` connections
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import queue
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from . import limits
from .engine import Engine
from .errors import ServerFault
from .isolation import ABANDONED, answer_isolated
from .protocol import BadRequest, parse_json, read_request

log = logging.getLogger("tasks.serve")


class Unavailable(Exception):
    """The server cannot take or finish a request now: HTTP 503 with Retry-After."""

    status = 503


# --------------------------------------------------------------------------- the engine thread
class EngineThread:
    """One daemon thread that runs engine calls one at a time (one forward at a time).

    A daemon, unlike a ThreadPoolExecutor's worker: an engine call stuck past the drain bound must not keep
    the process from exiting. A call's outcome is ``(True, value)`` or ``(False, the exception)``, never
    raised into the event loop, so nothing the engine raises can pass for the worker's own cancellation.
    """

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._loop, name="engine", daemon=True)
        self._thread.start()

    def call(self, function, *args) -> asyncio.Future:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._jobs.put((loop, future, function, args))
        return future

    def close(self) -> None:
        self._jobs.put(None)

    def _loop(self) -> None:
        while (job := self._jobs.get()) is not None:
            loop, future, function, args = job
            try:
                outcome = (True, function(*args))
            except BaseException as err:  # noqa: B036 - handed to the event loop, which decides
                outcome = (False, err)
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: nobody waits
                loop.call_soon_threadsafe(_settle, future, outcome)


def _settle(future: asyncio.Future, outcome: tuple[bool, Any]) -> None:
    if not future.done():
        future.set_result(outcome)


# --------------------------------------------------------------------------- the batcher
class Entry:
    __slots__ = ("task", "payload", "cost", "future", "taken")

    def __init__(self, task: str, payload: Any, cost: int, future: asyncio.Future) -> None:
        self.task, self.payload, self.cost, self.future, self.taken = task, payload, cost, future, False


class Batcher:
    """A bounded queue of requests, answered in batches of at most ``max_batch`` requests and
    ``max_batch_tokens`` estimated tokens, collected for up to ``wait_ms``, in arrival order.

    A request whose future is done (timed out, client gone, aborted) is skipped, never computed.
    """

    def __init__(self, engine: Engine, max_batch: int = limits.MAX_BATCH, wait_ms: float = 5.0,
                 max_batch_tokens: int = limits.MAX_BATCH_TOKENS, max_queue: int = limits.MAX_QUEUE) -> None:
        self.engine, self.max_batch, self.wait = engine, max_batch, wait_ms / 1000
        self.max_batch_tokens, self.max_queue = max_batch_tokens, max_queue
        self.pending: deque[Entry] = deque()
        self.current: list[Entry] = []  # the batch the engine is computing
        self._arrived = asyncio.Event()
        self.thread: EngineThread | None = None
        self.running = False
        self.batches = self.requests = 0  # engine calls made and requests sent to them
        self.refused = self.skipped = self.faults = 0

    # ------------------------------------------------------------ the event loop's side
    def queued(self) -> int:
        """Requests waiting that somebody still waits for."""
        return sum(not entry.future.done() for entry in self.pending)

    def submit(self, task: str, payload: Any, cost: int) -> Entry:
        """Queue a request; Unavailable when the worker is not running or the queue is full."""
        if not self.running:
            raise Unavailable("the batching worker is not running")
        if len(self.pending) >= self.max_queue:  # drop the abandoned before counting
            live = deque(entry for entry in self.pending if not entry.future.done())
            self.skipped += len(self.pending) - len(live)
            self.pending = live
        if len(self.pending) >= self.max_queue:
            self.refused += 1
            raise Unavailable(f"overloaded: {self.max_queue} requests already queued (--max-queue); retry later")
        entry = Entry(task, payload, cost, asyncio.get_running_loop().create_future())
        self.pending.append(entry)
        self._arrived.set()
        return entry

    def abort_all(self, reason: str) -> None:
        """Answer every queued or computing request with 503 ``reason`` (shutdown, a dead worker)."""
        for entry in [*self.current, *self.pending]:
            if not entry.future.done():
                entry.future.set_result(Unavailable(reason))
        self.pending.clear()

    def _head(self) -> Entry | None:
        """The first queued request somebody waits for (the others are dropped on the way)."""
        while self.pending and self.pending[0].future.done():
            self.pending.popleft()
            self.skipped += 1
        return self.pending[0] if self.pending else None

    async def _collect(self) -> list[Entry]:
        while self._head() is None:
            self._arrived.clear()
            await self._arrived.wait()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.wait
        batch: list[Entry] = []
        tokens = 0
        while True:
            entry = self._head()
            if entry is None:
                left = deadline - loop.time()
                if left <= 0:
                    break
                self._arrived.clear()
                try:
                    await asyncio.wait_for(self._arrived.wait(), left)
                except asyncio.TimeoutError:
                    break
                continue
            if not limits.fits(len(batch), tokens, entry.cost, self.max_batch, self.max_batch_tokens):
                break
            self.pending.popleft()
            entry.taken = True
            batch.append(entry)
            tokens += entry.cost
        return batch

    async def _answer(self, batch: list[Entry]) -> None:
        live = [entry for entry in batch if not entry.future.done()]
        self.skipped += len(batch) - len(live)
        if not live:
            return
        self.current = live
        self.batches, self.requests = self.batches + 1, self.requests + len(live)
        ok, value = await self.thread.call(answer_isolated, self.engine, [(e.task, e.payload) for e in live],
                                           lambda index: not live[index].future.done())
        if not ok:
            if isinstance(value, (KeyboardInterrupt, SystemExit)):
                raise value
            log.error("the batcher failed on a batch", exc_info=value)
            value = [ServerFault(f"the server failed on this batch: {type(value).__name__}: {value}")] * len(live)
        for entry, result in zip(live, value):
            if result is ABANDONED:
                self.skipped += 1
            elif not entry.future.done():
                entry.future.set_result(result)
            if isinstance(result, ServerFault):
                self.faults += 1
        self.current = []

    async def run(self) -> None:
        """The worker: survives any error of the engine or its own, stops when cancelled (or on
        KeyboardInterrupt/SystemExit from the engine, which stop the process)."""
        if self.thread is None:
            self.thread = EngineThread()
        self.running = True
        try:
            while True:
                batch: list[Entry] = []
                try:
                    batch = await self._collect()
                    await self._answer(batch)
                except Exception as err:  # a bug of ours: its batch hears of it, the worker goes on
                    log.error("the batching worker failed", exc_info=err)
                    for entry in batch:
                        if not entry.future.done():
                            entry.future.set_result(ServerFault(f"the server failed: {type(err).__name__}"))
                    self.current = []
                    await asyncio.sleep(0.01)  # a persistent bug must not spin
        finally:
            self.running = False
            self.abort_all("the batching worker stopped")

    def close(self) -> None:
        if self.thread is not None:
            self.thread.close()


# --------------------------------------------------------------------------- admission and drain
class Admission:
    """What ``run_server``'s drain needs: refuse new requests, count the admitted ones, abort the rest."""

    def __init__(self, batcher: Batcher) -> None:
        self.batcher, self.draining, self.inflight = batcher, False, 0
        self.closing = False  # the drain is over and the listener closed: every answer closes its connection

    def abort(self, reason: str) -> None:
        self.batcher.abort_all(reason)


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    if status == 503:
        headers = {"Retry-After": str(limits.RETRY_AFTER_SECONDS), **(headers or {})}
    return JSONResponse({"error": message, "status": status}, status_code=status, headers=headers)


def _status(result: BaseException) -> int:
    status = getattr(result, "status", 500)
    return status if isinstance(status, int) and 400 <= status <= 599 else 500


async def _read_capped(request: Request, cap: int) -> bytes | None:
    """The body, or None as soon as more than ``cap`` bytes have arrived."""
    chunks, size = [], 0
    async with contextlib.aclosing(request.stream()) as stream:
        async for chunk in stream:
            size += len(chunk)
            if size > cap:
                return None
            chunks.append(chunk)
    return b"".join(chunks)


_TIMED_OUT, _GONE = object(), object()


def create_app(engine: Engine, max_batch: int = limits.MAX_BATCH, wait_ms: float = 5.0,
               max_body_bytes: int = limits.MAX_BODY_BYTES, *, max_batch_tokens: int = limits.MAX_BATCH_TOKENS,
               max_queue: int = limits.MAX_QUEUE, request_timeout: float = limits.REQUEST_TIMEOUT,
               ready_high_water: float = limits.READY_HIGH_WATER, poll_seconds: float = 0.25) -> FastAPI:
    """The app; ``poll_seconds`` is how often a waiting request checks that its client is still there."""
    batcher = Batcher(engine, max_batch, wait_ms, max_batch_tokens, max_queue)
    admission = Admission(batcher)
    high_water = max(1, math.ceil(ready_high_water * max_queue))
    counters = {"timeouts": 0, "disconnected": 0}

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI):
        worker = asyncio.create_task(batcher.run(), name="batcher")
        await asyncio.sleep(0)  # the worker runs (and /ready can say so) before the first request
        try:
            yield
        finally:
            worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await worker
            batcher.close()

    app = FastAPI(title="ptv2-nlu", lifespan=lifespan)
    app.state.batcher, app.state.admission = batcher, admission

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, err: StarletteHTTPException) -> JSONResponse:
        return _error(err.status_code, str(err.detail), dict(err.headers or {}))

    @app.exception_handler(Exception)
    async def server_error(_request: Request, err: Exception) -> JSONResponse:  # a bug: still JSON
        log.error("unhandled error", exc_info=err)
        return _error(500, f"internal server error: {type(err).__name__}")

    def readiness() -> str | None:
        """Why the server is not ready, or None."""
        if not batcher.running:
            return "not ready: the batching worker is not running"
        if admission.draining:
            return "shutting down"
        queued = batcher.queued()
        if queued >= high_water:
            return f"saturated: {queued} requests queued (high-water mark {high_water} of --max-queue {max_queue})"
        return None

    @app.get("/health")
    async def health() -> dict:
        return {"status": "ok", "ready": readiness() is None, "draining": admission.draining,
                "tasks": list(engine.tasks), "backbone": engine.backbone_name,
                "batches": batcher.batches, "requests": batcher.requests, "queued": batcher.queued(),
                "refused": batcher.refused, "skipped": batcher.skipped, "faults": batcher.faults, **counters}

    @app.get("/ready")
    async def ready():
        reason = readiness()
        if reason is not None:
            return _error(503, reason)
        return {"status": "ready", "queued": batcher.queued(), "max_queue": max_queue}

    @app.get("/tasks")
    async def tasks() -> dict:
        return {name: {"family": t.family.name, "method": t.method, "shared_backbone": t.shared,
                       "labels": t.record.get("labels"), "artifact": Path(t.artifact).name}
                for name, t in engine.tasks.items()}

    async def wait_for(request: Request, entry: Entry, deadline: float) -> Any:
        loop = asyncio.get_running_loop()
        while True:
            left = deadline - loop.time()
            if left <= 0:
                return _TIMED_OUT
            done, _ = await asyncio.wait({entry.future}, timeout=min(poll_seconds, left))
            if done:
                return entry.future.result()
            if await request.is_disconnected():
                return _GONE

    async def answer(request: Request, deadline: float) -> JSONResponse:
        started = time.perf_counter()
        declared = request.headers.get("content-length")
        if declared is not None:
            if not declared.strip().isdigit():
                return _error(400, f"Content-Length '{declared}' is not a number")
            if int(declared) > max_body_bytes:
                return _error(413, f"a request body of {int(declared)} bytes; at most {max_body_bytes} "
                                   f"(--max-body-bytes)", {"Connection": "close"})
        loop = asyncio.get_running_loop()
        try:
            body = await asyncio.wait_for(_read_capped(request, max_body_bytes), max(0.0, deadline - loop.time()))
        except asyncio.TimeoutError:
            return _error(408, f"the request body did not arrive within {request_timeout:g} s (--request-timeout)",
                          {"Connection": "close"})
        except ClientDisconnect:
            counters["disconnected"] += 1
            return _error(400, "the client disconnected before its body arrived")
        if body is None:
            return _error(413, f"a request body of more than {max_body_bytes} bytes; at most {max_body_bytes} "
                               f"(--max-body-bytes)", {"Connection": "close"})
        try:
            task, payload = read_request(parse_json(body))
        except BadRequest as err:
            return _error(400, f"malformed JSON: {err}" if err.malformed_json else str(err))
        if admission.draining:
            return _error(503, "shutting down: not taking new requests")
        try:
            entry = batcher.submit(task, payload, limits.estimate_tokens(len(body)))
        except Unavailable as err:
            return _error(503, str(err))
        try:
            result = await wait_for(request, entry, deadline)
        finally:
            if not entry.future.done():  # timed out, client gone, or this handler cancelled: drop the work
                entry.future.cancel()
        if result is _TIMED_OUT:
            counters["timeouts"] += 1
            where = ("its batch was still computing" if entry.taken else "it was dropped from the queue")
            return _error(503, f"no answer within {request_timeout:g} s (--request-timeout); {where}")
        if result is _GONE:
            counters["disconnected"] += 1
            return _error(503, "the client disconnected")  # nobody reads it
        if isinstance(result, BaseException):
            return _error(_status(result), str(result) or type(result).__name__)
        try:
            return JSONResponse({"task": task, "output": result, "seconds": round(time.perf_counter() - started, 4)})
        except (TypeError, ValueError) as err:  # e.g. NaN, or an object JSON cannot hold
            log.error("the engine's answer is not JSON", exc_info=err)
            batcher.faults += 1
            return _error(500, f"the engine's answer is not JSON: {err}")

    async def admit(request: Request) -> JSONResponse:
        deadline = asyncio.get_running_loop().time() + request_timeout
        if admission.draining:
            return _error(503, "shutting down: not taking new requests")
        if not batcher.running:
            return _error(503, "not ready: the batching worker is not running")
        admission.inflight += 1
        try:
            return await answer(request, deadline)
        finally:
            admission.inflight -= 1

    @app.post("/predict")
    async def predict(request: Request) -> JSONResponse:
        response = await admit(request)
        if admission.closing:  # no keep-alive once the listener is closed: the exit would close the connection
            response.headers["Connection"] = "close"  # under the client's next request (sent, and no status)
        return response

    return app


# --------------------------------------------------------------------------- uvicorn with a drain
def _draining_server_class():
    import signal

    import uvicorn

    class DrainingServer(uvicorn.Server):
        """uvicorn's server, with a drain on the first SIGTERM/SIGINT: the app refuses new requests (503)
        at once while the listening socket stays open, in-flight requests are answered for up to
        ``drain_seconds`` (then answered 503), then the listener closes and open connections are closed after
        their next answer (``_close_connections``), then uvicorn's own shutdown runs. A second signal is
        uvicorn's: stop now (SIGINT: force)."""

        def __init__(self, config: uvicorn.Config, admission: Admission, drain_seconds: float) -> None:
            super().__init__(config)
            self.admission, self.drain_seconds = admission, drain_seconds
            self._drain_signal: int | None = None
            self._drain_task: asyncio.Task | None = None

        def handle_exit(self, sig: int, frame) -> None:
            if self._drain_signal is None and not self.should_exit:
                self._drain_signal = sig
                self.admission.draining = True  # a plain flag: safe in a signal handler
                return
            super().handle_exit(sig, frame)

        async def on_tick(self, counter: int) -> bool:
            if self._drain_signal is not None and self._drain_task is None:
                self._drain_task = asyncio.create_task(self._drain())
            return await super().on_tick(counter)

        async def _drain(self) -> None:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + self.drain_seconds
            while self.admission.inflight and loop.time() < deadline:
                await asyncio.sleep(0.05)
            if self.admission.inflight:
                log.warning("%d request(s) still in flight after %g s: answered 503", self.admission.inflight,
                            self.drain_seconds)
                self.admission.abort(f"the server shut down before answering (--drain-seconds {self.drain_seconds:g})")
            await self._close_connections(loop)
            self.config.timeout_graceful_shutdown = 1  # the 503s just sent only need to be flushed
            super().handle_exit(self._drain_signal or signal.SIGTERM, None)

        async def _close_connections(self, loop: asyncio.AbstractEventLoop) -> None:
            """Refuse new connections, then answer each open one's next request with 503 and close it (for up
            to 1 s): uvicorn's exit closes the connections it sees idle, maybe as a request arrives on one, and
            a keep-alive client would lose that request with no status. While draining, answers keep their
            connections open, so that clients do not reconnect into the accept queue, which the listener's
            close resets."""
            self.admission.closing = True
            for listener in self.servers:
                listener.close()
            deadline = loop.time() + 1
            while self.server_state.connections and loop.time() < deadline:
                await asyncio.sleep(0.02)

    return DrainingServer


def run_server(app: FastAPI, host: str = "127.0.0.1", port: int = 8000, *,
               drain_seconds: float = limits.DRAIN_SECONDS, limit_concurrency: int | None = None,
               log_level: str = "warning") -> None:
    """Serve ``app`` (from ``create_app``) with uvicorn until SIGTERM/SIGINT, then drain (see DrainingServer).

    The process exits within about ``drain_seconds`` + 2 s of the signal, with the signal's status (uvicorn
    re-raises it once shut down).
    """
    import uvicorn

    config = uvicorn.Config(app, host=host, port=port, log_level=log_level, limit_concurrency=limit_concurrency,
                            timeout_graceful_shutdown=drain_seconds, lifespan="on")
    _draining_server_class()(config, app.state.admission, drain_seconds).run()

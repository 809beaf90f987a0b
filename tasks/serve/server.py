"""HTTP serving on FastAPI (served by uvicorn): concurrent requests of any task batched into shared forwards.

FastAPI and uvicorn are the Python ecosystem's most used async web stack, actively maintained, with
a plain ASGI interface; the batching is ours: requests wait at most ``--batch-wait-ms`` for others to join,
at most ``--max-batch`` of them and ``--max-batch-tokens`` estimated tokens (body bytes / 4, see
``limits.py``) go into one ``Engine.answer`` call. The engine runs in a process of its own (``worker.py``,
issue 41): this process admits requests, reads and checks their bodies, batches them and sends each batch
over a pipe, so that neither its GIL nor, at a lower scheduling priority (``--http-nice``), its cores are
taken from the engine by a storm of requests it refuses. ``create_app`` also takes an ``Engine`` of this
process and runs it on a thread (the tests, ``--no-engine-process``). A request larger than the token budget
runs alone. Every setting is a field of ``ServeSettings`` (``settings.py``).

    POST /predict   {"task": "conll2003", "input": {"text": "John lives in Paris"}}  ->  {"task", "output", "seconds"}
                    {"task": "conll2003", "inputs": [{...}, {...}]}  ->  {"task", "outputs": [{"output"} or
                    {"error", "status"}, ...], "seconds"}: several inputs of one task, answered in order, each
                    with its own result; together bounded by --max-request-rows
    GET  /health    liveness: 200 while the process serves, {"status": "ok", "ready", "draining", "tasks", "engine"
                    (where it runs, its pid, alive), counters}; 503 {"error", "status", ...the same} once the engine
                    process has died (it is not restarted: the orchestrator restarts the server)
    GET  /ready     readiness: 200 {"status": "ready"}; 503 before the batching worker runs, once the engine process
                    has died, while the queue holds the high-water mark (80 % of ``max_queue``) or more, and while
                    shutting down
                    (``python -m tasks.serve`` loads the engine before it listens: no answer at all before)
    GET  /tasks     every task: family, method, placement, labels, artifact (its folder's name, not its path)
    GET  /info      the encoder and its fingerprint, the tasks with their methods, the limits in force, the version
    GET  /metrics   Prometheus text format (``metrics.py``)
    GET  /docs      OpenAPI (``/openapi.json``): each task's input and output (``schemas.py``)

Admission and overload (``admission.py``): refusals are decided from the request's headers, before its body is
read; every refusal is this server's JSON 503 with ``Retry-After``, never uvicorn's plain text (its
``limit_concurrency`` is not used). 503 rather than 429, because the refusal is about this server's capacity,
not about one client's rate (429 is a per-client rate limit, RFC 6585), a load balancer takes 503 as "try
another replica", and TorchServe answers 503 when its job queue is full. A request not answered within
``--request-timeout`` seconds of its arrival gets 503 as well (not 504: there is no upstream gateway here, the
cause is the same overload, and the dropped work makes a retry safe); if it was still queued its work is
dropped (the batcher skips requests nobody waits for). A client that disconnects while waiting has its request
dropped the same way. After SIGTERM (``run_server``) new requests get 503, in-flight ones are answered for up
to ``--drain-seconds``, then the listener closes (new connections are refused), each open connection's next
request gets 503 and ``Connection: close`` (for up to 1 s), and the process exits.

Isolation: one request's failure is that request's answer. The engine's per-request errors answer their
request only; if ``Engine.answer`` raises for a batch (anything but KeyboardInterrupt/SystemExit), each
request of the batch is retried alone so only the culprit gets the 500 (``isolation.py``, run where the engine
runs); the worker never dies of an engine error or a bug of its own. If the engine process dies, the requests
of its batch and every later one get 503 at once.

Every error is JSON ``{"error": "...", "status": N}``:

    400  the body is not a request: not UTF-8, not JSON (or NaN/Infinity), nested deeper than 64 levels,
         an integer of more than 4,300 digits, not an object, "task" missing or not a non-empty string,
         "input"/"inputs" missing (or both); also a Content-Length that is not a number
    404  unknown task (or an unknown path)
    405  a method the path does not take
    408  the body did not arrive within the request timeout
    413  the body is larger than ``--max-body-bytes`` (refused from its Content-Length before it is read, or cut
         off while a chunked body streams in; the rest of the body is read and dropped before the connection
         closes), more "inputs" than ``--max-request-rows``, or the engine refuses an input too long to answer
         without cutting it (``--max-request-rows``, ``--max-request-tokens``, the task's max length)
    422  an input the task cannot read: a field of the wrong type (the message names it, ``schemas.py``), or
         what the task's reader refuses
    500  a server fault: the engine failed on this request, or gave an answer that is not JSON
    503  too many requests waiting (``--max-queue``), no answer within ``--request-timeout``, the worker is not
         running, the engine process died, or the server is shutting down (``--drain-seconds``); always with
         ``Retry-After``
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections import deque
from collections.abc import Callable
from importlib import metadata
from typing import Any

from fastapi import FastAPI, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from . import limits
from .admission import PREDICT, SLOT, Admission, Front, Lingering, Slot
from .errors import RequestError, ServerFault, TooLong, Unavailable, unknown_task
from .isolation import ABANDONED
from .metrics import Metrics
from .protocol import BadRequest, Inputs, parse_json, read_request, result_json, status_of
from .schemas import Schemas
from .settings import ENGINE_FIELDS, ServeSettings
from .worker import EngineProcess, EngineRunner, EngineThread

__all__ = ["Batcher", "EngineProcess", "EngineThread", "Service", "Unavailable", "create_app", "run_server"]

log = logging.getLogger("tasks.serve")


# --------------------------------------------------------------------------- the batcher
class Entry:
    __slots__ = ("task", "payload", "cost", "future", "taken", "slot")

    def __init__(self, task: str, payload: Any, cost: int, future: asyncio.Future, slot: Slot | None) -> None:
        self.task, self.payload, self.cost, self.future, self.taken = task, payload, cost, future, False
        self.slot = slot


class Batcher:
    """A queue of requests, answered in batches of at most ``max_batch`` requests and ``max_batch_tokens``
    estimated tokens, collected for up to ``batch_wait_ms``, in arrival order. Its length is bounded by
    admission (``admission.py``: a request's slot is given back when a batch takes it).

    A request whose future is done (timed out, client gone, aborted) is skipped, never computed. Each batch goes
    to ``runner`` (``worker.py``: the engine's own process, or a thread of this one).
    """

    def __init__(self, runner: EngineRunner, settings: ServeSettings,
                 on_batch: Callable[[int], None] | None = None) -> None:
        self.runner, self.settings, self.on_batch = runner, settings, on_batch
        self.pending: deque[Entry] = deque()
        self.current: list[Entry] = []  # the batch the engine is computing
        self._arrived = asyncio.Event()
        self.running = False
        self.batches = self.requests = 0  # engine calls made and requests sent to them
        self.skipped = self.faults = 0

    # ------------------------------------------------------------ the event loop's side
    def queued(self) -> int:
        """Requests waiting that somebody still waits for."""
        return sum(not entry.future.done() for entry in self.pending)

    def serving(self) -> bool:
        """Whether requests can be answered: the batching worker runs and the engine is alive."""
        return self.running and self.runner.failure is None

    def submit(self, task: str, payload: Any, cost: int, slot: Slot | None = None) -> Entry:
        """Queue a request; Unavailable when the worker is not running."""
        if not self.running:
            raise Unavailable("the batching worker is not running")
        if len(self.pending) >= 2 * self.settings.max_queue:  # abandoned requests pile up behind a stuck batch
            live = deque(entry for entry in self.pending if not entry.future.done())
            self.skipped += len(self.pending) - len(live)
            self.pending = live
        entry = Entry(task, payload, cost, asyncio.get_running_loop().create_future(), slot)
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

    async def _next(self, deadline: float) -> Entry | None:
        """The next live request, waiting for one until ``deadline`` (the loop's time); None when none came."""
        loop = asyncio.get_running_loop()
        while (entry := self._head()) is None:
            left = deadline - loop.time()
            if left <= 0:
                return None
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), left)
            except asyncio.TimeoutError:
                return None
        return entry

    async def _collect(self) -> list[Entry]:
        while self._head() is None:
            self._arrived.clear()
            await self._arrived.wait()
        deadline = asyncio.get_running_loop().time() + self.settings.batch_wait_ms / 1000
        batch: list[Entry] = []
        tokens = 0
        while (entry := await self._next(deadline)) is not None:
            if not limits.fits(len(batch), tokens, entry.cost, self.settings.max_batch, self.settings.max_batch_tokens):
                break
            self.pending.popleft()
            entry.taken = True
            if entry.slot is not None:
                entry.slot.release()
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
        if self.on_batch is not None:
            self.on_batch(len(live))
        ok, value = await self.runner.call([(e.task, e.payload) for e in live],
                                           lambda index: not live[index].future.done())
        if not ok:
            if isinstance(value, (KeyboardInterrupt, SystemExit)):
                raise value
            if isinstance(value, Unavailable):  # the engine died: 503 for its batch (the runner said why)
                value = [value] * len(live)
            else:
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
        self.runner.start()
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
        self.runner.close()


# --------------------------------------------------------------------------- the handlers
_TIMED_OUT, _GONE = object(), object()


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    if status == 503:
        headers = {"Retry-After": str(limits.RETRY_AFTER_SECONDS), **(headers or {})}
    return JSONResponse({"error": message, "status": status}, status_code=status, headers=headers)


def _failed(error: BaseException) -> JSONResponse:
    return _error(status_of(error), str(error) or type(error).__name__)


class Checked:
    """A readable request on its way: its task, what goes to the engine, and the errors of inputs that do not
    (several inputs: a 422 for each input of the wrong types, by position)."""

    def __init__(self, task: str, payload: Any) -> None:
        self.task, self.payload = task, payload
        self.refused: dict[int, RequestError] = {}

    def merge(self, result: Any) -> Any:
        """The engine's result with the refused inputs put back in their places."""
        if not self.refused or not isinstance(result, list):
            return result
        answers = iter(result)
        count = len(result) + len(self.refused)
        return [self.refused[i] if i in self.refused else next(answers) for i in range(count)]


class Service:
    """The app's state and its handlers, one method per endpoint (``create_app`` registers them)."""

    def __init__(self, runner: EngineRunner, settings: ServeSettings, poll_seconds: float) -> None:
        self.runner, self.settings, self.poll_seconds = runner, settings, poll_seconds
        self.engine = runner.info  # the served tasks and the encoder, as described by the engine (``worker.py``)
        self.batcher = Batcher(runner, settings)
        self.admission = Admission(settings.max_queue, self.batcher.serving, self.batcher.abort_all)
        self.metrics = Metrics(self.admission, self.batcher.queued)
        self.batcher.on_batch = self.metrics.batch_size.observe
        runner.observe_forwards(self.metrics.forward_rows.observe)
        self.schemas = Schemas(self.engine.tasks)
        self.high_water = max(1, math.ceil(limits.READY_HIGH_WATER * settings.max_queue))
        self.counters = {"timeouts": 0, "disconnected": 0}

    @contextlib.asynccontextmanager
    async def lifespan(self, _app: FastAPI):
        worker = asyncio.create_task(self.batcher.run(), name="batcher")
        await asyncio.sleep(0)  # the worker runs (and /ready can say so) before the first request
        try:
            yield
        finally:
            worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await worker
            self.batcher.close()

    # ------------------------------------------------------------ GET
    def readiness(self) -> str | None:
        """Why the server is not ready, or None."""
        if self.runner.failure is not None:
            return f"not ready: {self.runner.failure}"
        if not self.batcher.running:
            return "not ready: the batching worker is not running"
        if self.admission.draining:
            return "shutting down"
        queued = self.batcher.queued()
        if queued >= self.high_water:
            return (f"saturated: {queued} requests queued (high-water mark {self.high_water} of --max-queue "
                    f"{self.settings.max_queue})")
        return None

    async def health(self) -> Response:
        """200 while the server can answer; 503 (JSON ``{"error", "status"}`` with the same counts) once its
        engine is gone, so that a liveness probe restarts it."""
        b, refused = self.batcher, self.admission.refused
        counts = {"ready": self.readiness() is None, "draining": self.admission.draining,
                  "tasks": list(self.engine.tasks), "backbone": self.engine.backbone_name,
                  "engine": self.runner.state(), "batches": b.batches, "requests": b.requests, "queued": b.queued(),
                  "in_flight": self.admission.inflight,
                  "refused": sum(refused.values()), "refused_by_reason": dict(refused), "skipped": b.skipped,
                  "faults": b.faults, **self.counters}
        if self.runner.failure is not None:
            return JSONResponse({"error": self.runner.failure, "status": 503, **counts}, status_code=503,
                                headers={"Retry-After": str(limits.RETRY_AFTER_SECONDS)})
        return JSONResponse({"status": "ok", **counts})

    async def ready(self) -> Response:
        reason = self.readiness()
        if reason is not None:
            return _error(503, reason)
        return JSONResponse({"status": "ready", "queued": self.batcher.queued(), "max_queue": self.settings.max_queue})

    async def tasks(self) -> dict:
        return {name: {"family": t.family, "method": t.method, "placement": t.placement, "shared_backbone": t.shared,
                       "labels": t.labels, "artifact": t.artifact} for name, t in self.engine.tasks.items()}

    async def info(self) -> dict:
        return {"encoder": self.engine.backbone_name, "fingerprint": self.engine.fingerprint,
                "tasks": {name: {"family": t.family, "method": t.method, "placement": t.placement}
                          for name, t in self.engine.tasks.items()},
                "precision": self.settings.precision, "engine_runs_in": self.runner.runs_in,
                "limits": self.settings.bounds(), "version": _version()}

    async def metrics_text(self) -> Response:
        text, content_type = self.metrics.exposition()
        return Response(text, media_type=content_type)

    # ------------------------------------------------------------ POST /predict
    async def predict(self, request: Request) -> Response:
        started = time.perf_counter()
        deadline = asyncio.get_running_loop().time() + self.settings.request_timeout
        task, response = await self._predict(request, deadline, started)
        self.metrics.answered(task, response.status_code, time.perf_counter() - started)
        if self.admission.closing:  # no keep-alive once the listener is closed: the exit would close the connection
            response.headers["Connection"] = "close"  # under the client's next request (sent, and no status)
        return response

    async def _predict(self, request: Request, deadline: float, started: float) -> tuple[str | None, Response]:
        """(the served task it named or None, the answer)."""
        body = await self._body(request, deadline)
        if isinstance(body, Response):
            return None, body
        task, checked = self._check(body)
        if isinstance(checked, Response):
            return task, checked
        if not isinstance(checked.payload, Inputs) or checked.payload:
            result = await self._compute(request, checked, len(body), deadline)
            if isinstance(result, Response):
                return task, result
        else:  # every input refused: nothing to compute
            result = Inputs()
        return task, self._respond(task, checked.merge(result), started)

    async def _body(self, request: Request, deadline: float) -> bytes | Response:
        """The body, or the answer that refuses it: 413 past the cap (the rest read and dropped), 408, 400."""
        cap = self.settings.max_body_bytes
        try:
            body = await asyncio.wait_for(_read_capped(request, cap), max(0.0, deadline - _now()))
        except asyncio.TimeoutError:
            return _error(408, f"the request body did not arrive within {self.settings.request_timeout:g} s "
                               "(--request-timeout)", {"Connection": "close"})
        except ClientDisconnect:
            self.counters["disconnected"] += 1
            return _error(400, "the client disconnected before its body arrived")
        if body is None:
            return Lingering(413, f"a request body of more than {cap} bytes; at most {cap} (--max-body-bytes)",
                             read_yet=True)
        return body

    def _check(self, body: bytes) -> tuple[str | None, Checked | Response]:
        """(the served task, or None), and the request read (400), its task known (404), its input(s) of the task's
        types (422) and count (413)."""
        try:
            task, payload = read_request(parse_json(body))
        except BadRequest as err:
            return None, _error(400, f"malformed JSON: {err}" if err.malformed_json else str(err))
        if task not in self.engine.tasks:
            return None, _failed(unknown_task(task, list(self.engine.tasks)))
        if not isinstance(payload, Inputs):
            problem = self.schemas.problem(task, payload)
            return task, _error(422, problem) if problem else Checked(task, payload)
        if len(payload) > self.settings.max_request_rows:
            return task, _failed(TooLong(f"task '{task}': {len(payload)} inputs; at most "
                                         f"{self.settings.max_request_rows} (--max-request-rows)"))
        checked = Checked(task, Inputs())
        for index, item in enumerate(payload):
            problem = self.schemas.problem(task, item, f"inputs[{index}]")
            if problem:
                checked.refused[index] = RequestError(problem)
            else:
                checked.payload.append(item)
        return task, checked

    async def _compute(self, request: Request, checked: Checked, size: int, deadline: float) -> Any:
        """The engine's result for the request, or the 503 that ends its wait."""
        if self.admission.draining:
            return _error(503, "shutting down: not taking new requests")
        try:
            entry = self.batcher.submit(checked.task, checked.payload, limits.estimate_tokens(size),
                                        request.scope.get(SLOT))
        except Unavailable as err:
            return _error(503, str(err))
        try:
            result = await self._wait(request, entry, deadline)
        finally:
            if not entry.future.done():  # timed out, client gone, or this handler cancelled: drop the work
                entry.future.cancel()
        if result is _TIMED_OUT:
            self.counters["timeouts"] += 1
            where = "its batch was still computing" if entry.taken else "it was dropped from the queue"
            return _error(503, f"no answer within {self.settings.request_timeout:g} s (--request-timeout); {where}")
        if result is _GONE:
            self.counters["disconnected"] += 1
            return _error(503, "the client disconnected")  # nobody reads it
        return result

    async def _wait(self, request: Request, entry: Entry, deadline: float) -> Any:
        """The entry's result; _TIMED_OUT at ``deadline``, _GONE when the client went away."""
        while True:
            left = deadline - _now()
            if left <= 0:
                return _TIMED_OUT
            done, _ = await asyncio.wait({entry.future}, timeout=min(self.poll_seconds, left))
            if done:
                return entry.future.result()
            if await request.is_disconnected():
                return _GONE

    def _respond(self, task: str, result: Any, started: float) -> Response:
        """200 with the output (or each input's output or error), the error's own status, or 500 for an answer
        that is not JSON."""
        if isinstance(result, BaseException):
            return _failed(result)
        seconds = round(time.perf_counter() - started, 4)
        content = ({"task": task, "outputs": [result_json(r) for r in result], "seconds": seconds}
                   if isinstance(result, list) else {"task": task, "output": result, "seconds": seconds})
        try:
            return JSONResponse(content)
        except (TypeError, ValueError) as err:  # e.g. NaN, or an object JSON cannot hold
            log.error("the engine's answer is not JSON", exc_info=err)
            self.batcher.faults += 1
            return _error(500, f"the engine's answer is not JSON: {err}")


def _now() -> float:
    return asyncio.get_running_loop().time()


def _version() -> str:
    try:
        return metadata.version("ptv2-nlu")
    except metadata.PackageNotFoundError:
        return "unknown"


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


# --------------------------------------------------------------------------- the app
def create_app(engine: Any, settings: ServeSettings | None = None, *, poll_seconds: float = 0.25,
               **changes: Any) -> FastAPI:
    """The app for ``engine`` under ``settings`` (default: the engine's own, or ``ServeSettings()``) with
    ``changes`` (its field names). ``engine``: an ``EngineProcess`` (the engine in its own process), or an
    ``Engine`` of this process (or anything with its interface), then run on a thread (``EngineThread``). The
    engine's bounds are fixed when it is built, so a setting it reads that differs from its own is a ValueError.
    ``poll_seconds`` is how often a waiting request checks that its client is still there."""
    runner = engine if isinstance(engine, EngineRunner) else EngineThread(engine)
    own = runner.info.settings
    settings = (settings or own or ServeSettings()).changed(**changes)
    differ = settings.differences(own, ENGINE_FIELDS) if own is not None else {}
    if differ:
        raise ValueError(f"the engine was built with other settings ({differ}): build it with the app's")
    service = Service(runner, settings, poll_seconds)
    app = FastAPI(title="ptv2-nlu", version=_version(), lifespan=service.lifespan,
                  description="Many tasks on one frozen backbone: python -m tasks.serve")
    app.state.service, app.state.settings = service, settings
    app.state.batcher, app.state.admission = service.batcher, service.admission
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _server_error)
    for path, handler in (("/health", service.health), ("/ready", service.ready), ("/tasks", service.tasks),
                          ("/info", service.info), ("/metrics", service.metrics_text)):
        app.add_api_route(path, handler, methods=["GET"])
    app.add_api_route(PREDICT, service.predict, methods=["POST"], summary="answer a request of one task")
    app.add_middleware(Front, admission=service.admission, max_body_bytes=settings.max_body_bytes)
    app.openapi = lambda: _openapi(app, service.schemas)
    return app


async def _http_error(_request: Request, err: StarletteHTTPException) -> JSONResponse:
    return _error(err.status_code, str(err.detail), dict(err.headers or {}))


async def _server_error(_request: Request, err: Exception) -> JSONResponse:  # a bug: still JSON
    log.error("unhandled error", exc_info=err)
    return _error(500, f"internal server error: {type(err).__name__}")


def _openapi(app: FastAPI, schemas: Schemas) -> dict[str, Any]:
    """FastAPI's OpenAPI document, with every task's request and response bodies on POST /predict."""
    if app.openapi_schema is None:
        document = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
        app.openapi_schema = schemas.document(document, PREDICT)
    return app.openapi_schema


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

        async def startup(self, sockets: list | None = None) -> None:
            await super().startup(sockets)
            for listener in self.servers:  # the address bound (port 0: the one the system chose)
                for sock in listener.sockets:
                    host, port = sock.getsockname()[:2]
                    print(f"listening on http://{host}:{port} (API docs: http://{host}:{port}/docs)", flush=True)

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


def run_server(app: FastAPI, log_level: str = "warning") -> None:
    """Serve ``app`` (from ``create_app``) with uvicorn on its settings' host and port until SIGTERM/SIGINT, then
    drain (see DrainingServer); ``--access-log`` adds uvicorn's line per request.

    The process exits within about ``drain_seconds`` + 2 s of the signal, with the signal's status (uvicorn
    re-raises it once shut down).
    """
    import uvicorn

    settings: ServeSettings = app.state.settings
    config = uvicorn.Config(app, host=settings.host, port=settings.port, log_level=log_level,
                            access_log=settings.access_log, timeout_graceful_shutdown=settings.drain_seconds,
                            lifespan="on")  # no limit_concurrency: every refusal is the app's JSON 503
    if settings.access_log:
        logging.getLogger("uvicorn.access").setLevel(logging.INFO)
    _draining_server_class()(config, app.state.admission, settings.drain_seconds).run()

"""Where the engine runs: a process of its own (``EngineProcess``, what ``python -m tasks.serve`` uses unless
``--no-engine-process``) or a thread of the HTTP process (``EngineThread``, for an ``Engine`` built in the same
process: the tests, ``--no-engine-process``).  The batcher (``server.py``) sees one interface, ``EngineRunner``:
``call(batch)`` runs the one serving route, ``answer_isolated(engine, batch)`` (``isolation.py`` around
``Engine.answer``), on one batch at a time and settles an asyncio future with ``(True, one result per request)``
or ``(False, the exception)``; ``info`` describes the served tasks (``/tasks``, ``/info``, the schemas) without
the engine's objects.

Why a process (issue 41): with the engine on a thread of the HTTP process, a storm of requests refused at
admission (thousands a second) keeps the event loop busy, and the forward, Python between its torch kernels,
competes with the loop for the GIL and for the cores.  Timed inside the server, an engine call's wall time grew
far more than its own CPU time under the storm (it was waiting), and a much shorter GIL switch interval did not
bring it back, so the loop's share of the cores, not only the GIL, is what it lost.  In a process of its own the
engine has its own interpreter and GIL, and the HTTP process lowers its own scheduling priority (``--http-nice``)
so that the cores go to the engine first (TorchServe's frontend and model workers, fed by a bounded job queue:
here ``--max-queue``, admission's bound, and one batch on the pipe at a time).  Before and after:
``benchmarks/results/serving.md`` (its git history holds the thread's table).

torch's threads in the engine process: ``--engine-threads`` (default: one less than the cores; ``limits.py``).
Run from the main thread of a process with torch's default (every core) while the HTTP process and the clients
want cores too, OpenMP's threads waited on each other and a batch took several times as long as with one thread.

The engine process is spawned (not forked: torch and OpenMP threads do not survive a fork), loads the artifacts
itself and sends back the description of its tasks; a load error is raised in the HTTP process as it would have
been in-process (a bad artifact: one line, exit 2).  It ignores SIGINT and SIGTERM, which the HTTP process turns
into its drain (a Ctrl-C or a group's SIGTERM reaches both), and exits when its pipe closes (the HTTP process
closed it, or died).  Batches and answers cross the pipe pickled (JSON values one way, answers and the errors
of ``errors.py`` the other).  If the engine process dies, the batch it was computing and every later request
are answered 503 at once (never a hang), ``/ready`` and ``/health`` answer 503 naming the exit status, and the
server stays up for the operator or the orchestrator's liveness probe to restart it (no restart of its own).

What the thread has and the process has not: ``wanted``, the check that skips a request nobody waits for any
more when a failed batch is retried request by request (the process retries every one; the front end drops
the answers nobody waits for).
"""
from __future__ import annotations

import asyncio
import atexit
import contextlib
import itertools
import logging
import multiprocessing
import os
import pickle
import queue
import signal
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import ServerFault, Unavailable
from .isolation import answer_isolated
from .schemas import text_fields
from .settings import ServeSettings

log = logging.getLogger("tasks.serve")

Outcome = tuple[bool, Any]  # (True, one result per request) or (False, the exception of the call)
Requests = list[tuple[str, Any]]
STOP_SECONDS = 5.0  # how long a closing engine process may finish the batch it computes before it is terminated


# --------------------------------------------------------------------------- what the front end knows
@dataclass(frozen=True)
class TaskView:
    """One served task as the front end sees it (``/tasks``, ``/info``, its schema): plain, picklable values."""

    name: str
    family: str
    method: str
    placement: str | None
    shared: bool
    labels: list | None
    artifact: str  # its folder's name, never its path
    text_fields: tuple[str, ...] | None  # a GLUE/SuperGLUE pair task's text fields (``schemas.text_fields``)


@dataclass(frozen=True)
class EngineInfo:
    """The engine as the front end sees it: its encoder, its tasks and the settings it was built with."""

    backbone_name: str
    fingerprint: str | None
    tasks: dict[str, TaskView]
    settings: ServeSettings | None


def describe(engine: Any) -> EngineInfo:
    """The one description of an engine's tasks, in either mode (an engine without placements or a task object,
    such as the tests' fake, is described all the same)."""
    tasks = {name: TaskView(name, getattr(t.family, "name", str(t.family)), t.method, getattr(t, "placement", None),
                            bool(getattr(t, "shared", False)), t.record.get("labels"), Path(t.artifact).name,
                            text_fields(getattr(t, "task", None)))
             for name, t in engine.tasks.items()}
    return EngineInfo(engine.backbone_name, getattr(engine, "fingerprint", None), tasks,
                      getattr(engine, "settings", None))


def _settle(future: asyncio.Future, outcome: Outcome) -> None:
    if not future.done():
        future.set_result(outcome)


# --------------------------------------------------------------------------- the interface
class EngineRunner:
    """What the batcher needs of the place the engine runs."""

    runs_in = ""
    info: EngineInfo

    def start(self) -> None:
        """Ready to take calls (called by the batching worker as it starts)."""

    def call(self, requests: Requests, wanted: Callable[[int], bool] | None = None) -> asyncio.Future:
        """A future of the event loop that settles with the batch's ``Outcome``; never raises into the loop."""
        raise NotImplementedError

    def observe_forwards(self, observe: Callable[[int], None]) -> None:
        """Have ``observe`` called with the rows of every forward (the server's metrics)."""

    @property
    def failure(self) -> str | None:
        """Why the engine cannot answer any more (it died), or None."""
        return None

    def state(self) -> dict[str, Any]:
        """What ``GET /health`` says of the engine."""
        return {"runs_in": self.runs_in, "alive": self.failure is None, "failure": self.failure}

    def close(self) -> None:
        """Stop after the call in progress."""


# --------------------------------------------------------------------------- a thread of this process
class EngineThread(EngineRunner):
    """One daemon thread that runs the engine's calls one at a time (one forward at a time).

    A daemon, unlike a ThreadPoolExecutor's worker: an engine call stuck past the drain bound must not keep the
    process from exiting. A call's outcome is never raised into the event loop, so nothing the engine raises can
    pass for the batcher's own cancellation.
    """

    runs_in = "thread"

    def __init__(self, engine: Any) -> None:
        self.engine, self.info = engine, describe(engine)
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._jobs = queue.SimpleQueue()  # a closed thread's queue ends with its stop mark
            self._thread = threading.Thread(target=self._loop, args=(self._jobs,), name="engine", daemon=True)
            self._thread.start()

    def call(self, requests: Requests, wanted: Callable[[int], bool] | None = None) -> asyncio.Future:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._jobs.put((loop, future, requests, wanted))
        return future

    def observe_forwards(self, observe: Callable[[int], None]) -> None:
        if hasattr(self.engine, "on_forward"):
            self.engine.on_forward = observe

    def close(self) -> None:
        self._jobs.put(None)

    def _loop(self, jobs: queue.SimpleQueue) -> None:
        while (job := jobs.get()) is not None:
            loop, future, requests, wanted = job
            try:
                outcome = (True, answer_isolated(self.engine, requests, wanted))
            except BaseException as err:  # noqa: B036 - handed to the event loop, which decides
                outcome = (False, err)
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: nobody waits
                loop.call_soon_threadsafe(_settle, future, outcome)


# --------------------------------------------------------------------------- a process of its own
def load_engine(artifacts: list, settings: ServeSettings) -> Any:
    """``Engine(artifacts, settings)``, imported here so that the HTTP process never imports torch."""
    from .engine import Engine

    return Engine(artifacts, settings)


class EngineProcess(EngineRunner):
    """The engine built by ``build(*args)`` (picklable: a module's function or class) in a spawned process,
    fed one batch at a time over a pipe; its answers are read by a thread of this process and settle the batch's
    future in the event loop. The constructor returns once the engine is loaded (or raises its load error).
    ``threads``: torch's threads in the engine process (``engine_threads``; None: torch's default)."""

    runs_in = "process"

    def __init__(self, build: Callable[..., Any], *args: Any, threads: int | None = None) -> None:
        context = multiprocessing.get_context("spawn")
        self._conn, child = context.Pipe()
        self._process = context.Process(target=serve_engine, args=(child, build, args, threads),
                                        name="tasks.serve-engine", daemon=True)
        self._process.start()
        child.close()  # only the engine process holds its end: its exit is this end's EOF
        # before multiprocessing's own exit handler, which would SIGTERM it (ignored) and wait for it forever
        atexit.register(self._kill)
        self.info: EngineInfo = self._loaded()
        self._lock = threading.Lock()  # the waiting calls and the failure, shared with the reader thread
        self._waiting: dict[int, tuple[asyncio.AbstractEventLoop, asyncio.Future]] = {}
        self._numbers = itertools.count()
        self._observe: Callable[[int], None] | None = None
        self._failure: str | None = None
        self._closing = False
        self._reader = threading.Thread(target=self._read, name="engine-answers", daemon=True)
        self._reader.start()

    @property
    def pid(self) -> int | None:
        return self._process.pid

    @property
    def failure(self) -> str | None:
        return self._failure

    def state(self) -> dict[str, Any]:
        return {**super().state(), "pid": self.pid}

    def _loaded(self) -> EngineInfo:
        """The engine's description once it is loaded; its load error (or exit) raised here."""
        while not self._conn.poll(0.2):
            if not self._process.is_alive():
                break
        try:
            kind, value = self._conn.recv()
        except (EOFError, OSError):
            self._process.join()
            raise RuntimeError(f"the engine process {_exit(self._process.exitcode)} while loading") from None
        if kind == "failed":
            self._process.join(STOP_SECONDS)
            raise value
        return value

    def observe_forwards(self, observe: Callable[[int], None]) -> None:
        self._observe = observe

    def call(self, requests: Requests, wanted: Callable[[int], bool] | None = None) -> asyncio.Future:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        number = next(self._numbers)
        with self._lock:  # registered before the failure is read: the reader's sweep cannot miss it
            failure = self._failure
            if failure is None:
                self._waiting[number] = (loop, future)
        if failure is not None:
            future.set_result((False, Unavailable(failure)))
            return future
        try:  # small (a batch's JSON values) and the engine process is idle, reading: this does not block
            self._conn.send((number, requests))
        except (OSError, ValueError) as err:  # the pipe is broken: the engine process is gone (the reader says so)
            with self._lock:
                self._waiting.pop(number, None)
            _settle(future, (False, Unavailable(self._failure or f"the engine process is gone ({err})")))
        return future

    def _read(self) -> None:
        """The reader thread: each answer settles its call's future, until the engine process's end closes."""
        while True:
            try:
                number, outcome, forwards = self._conn.recv()
            except (EOFError, OSError):
                break
            except Exception as err:  # noqa: BLE001 - an answer this process cannot unpickle: its batch fails
                log.error("an answer of the engine process cannot be read", exc_info=err)
                self._sweep((False, ServerFault(f"the engine's answer cannot be read: {type(err).__name__}")))
                continue
            with self._lock:
                waiter = self._waiting.pop(number, None)
            if waiter is not None:
                with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: nobody waits
                    waiter[0].call_soon_threadsafe(self._deliver, waiter[1], outcome, forwards)
        self._died()

    def _deliver(self, future: asyncio.Future, outcome: Outcome, forwards: list[int]) -> None:
        if self._observe is not None:
            for rows in forwards:
                self._observe(rows)
        _settle(future, outcome)

    def _died(self) -> None:
        self._process.join(1.0)  # its pipe closed as it exited: its status is there at once
        reason = f"the engine process {_exit(self._process.exitcode)}"
        if not self._closing:
            log.error("%s: every request is answered 503 until the server is restarted", reason)
        with self._lock:
            self._failure = reason
        self._sweep((False, Unavailable(reason)))

    def _sweep(self, outcome: Outcome) -> None:
        """Settle every waiting call with ``outcome``."""
        with self._lock:
            waiters, self._waiting = list(self._waiting.values()), {}
        for loop, future in waiters:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_settle, future, outcome)

    def close(self) -> None:
        """Ask the engine process to stop after its batch; terminate it if it has not within STOP_SECONDS."""
        self._closing = True
        with contextlib.suppress(OSError, ValueError):
            self._conn.send(None)
        self._process.join(STOP_SECONDS)
        self._kill()
        self._reader.join(STOP_SECONDS)

    def _kill(self) -> None:
        if self._process.is_alive():
            self._process.kill()  # it ignores SIGTERM (the drain is the HTTP process's)
            self._process.join(STOP_SECONDS)


def _exit(code: int | None) -> str:
    """How a process ended, in words."""
    if code is None:
        return "did not exit"
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"was killed by {signal.Signals(-code).name}"
    return f"exited with status {code}"


# --------------------------------------------------------------------------- inside the engine process
def engine_threads(asked: int) -> int:
    """torch's threads in the engine process: ``asked``, or for 0 one less than the cores this process may use
    (at least 1), so that the HTTP process keeps a core (see ``ServeSettings.engine_threads``)."""
    return asked or max(1, len(os.sched_getaffinity(0)) - 1)


def serve_engine(conn: Any, build: Callable[..., Any], args: tuple, threads: int | None = None) -> None:
    """The engine process's main: build the engine, send its description (or its load error), then answer
    batches until the pipe closes or says stop (None)."""
    from tasks.common.allocator import keep_large_allocations

    for sig in (signal.SIGINT, signal.SIGTERM):  # the HTTP process drains, then closes the pipe
        signal.signal(sig, signal.SIG_IGN)
    keep_large_allocations()
    if threads is not None:
        import torch

        torch.set_num_threads(threads)
    try:
        engine = build(*args)
    except Exception as err:  # noqa: BLE001 - raised in the HTTP process instead
        conn.send(("failed", _portable(err)))
        return
    forwards: list[int] = []
    if hasattr(engine, "on_forward"):
        engine.on_forward = forwards.append
    conn.send(("ready", describe(engine)))
    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError):  # the HTTP process is gone
            return
        if job is None:
            return
        number, requests = job
        forwards.clear()
        try:
            outcome: Outcome = (True, answer_isolated(engine, requests))
        except Exception as err:  # noqa: BLE001 - answer_isolated lets only KeyboardInterrupt/SystemExit through
            outcome = (False, err)
        _reply(conn, (number, outcome, forwards))


def _reply(conn: Any, message: tuple[int, Outcome, list[int]]) -> None:
    """Send an answer; one that cannot be pickled becomes a ServerFault for its request alone."""
    try:
        conn.send(message)
        return
    except (OSError, EOFError):
        raise SystemExit(0) from None  # the HTTP process is gone
    except Exception:  # noqa: BLE001 - pickling failed before anything was written
        pass
    number, (ok, value), forwards = message
    if not ok or not isinstance(value, list):
        conn.send((number, (False, ServerFault(f"the engine's answer cannot be sent: {type(value).__name__}")),
                   forwards))
        return
    conn.send((number, (True, [_sendable(result) for result in value]), forwards))


def _sendable(result: Any) -> Any:
    try:
        pickle.dumps(result)
    except Exception as err:  # noqa: BLE001
        return ServerFault(f"the engine's answer cannot be sent to the front end: {type(err).__name__}: {err}")
    return result


def _portable(err: Exception) -> Exception:
    """A load error the HTTP process can unpickle and report as it would in-process: bad input as a UsageError
    (one line, exit 2), anything else as a RuntimeError with its traceback printed here."""
    from models.choices import EncoderNotFound
    from tasks.common.errors import DataError, UsageError

    if isinstance(err, (DataError, UsageError, EncoderNotFound)):
        return UsageError(str(err))
    traceback.print_exception(err)
    return RuntimeError(f"the engine failed to load: {type(err).__name__}: {err}")

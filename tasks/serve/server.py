"""HTTP serving on FastAPI (served by uvicorn): concurrent requests of any task batched into shared forwards.

FastAPI and uvicorn are the Python ecosystem's most used async web stack, actively maintained, with
a plain ASGI interface; the batching is ours: requests wait at most ``wait_ms`` for others to join,
at most ``max_batch`` go into one ``Engine.answer`` call, run in a worker thread so the event loop
keeps accepting requests meanwhile.

    POST /predict   {"task": "conll2003", "input": {"text": "John lives in Paris"}}  ->  {"task", "output"}
    GET  /health    {"status": "ok", "tasks": [...]}
    GET  /tasks     every task: family, method, labels

Errors are JSON ``{"error": "..."}``: 400 malformed JSON or request shape, 404 unknown task, 413 input
(or body) too long, 422 an input the task cannot read.
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from .engine import Engine, RequestError


class Batcher:
    """Collects requests for up to ``wait_ms`` (or ``max_batch`` of them) and answers them in one engine call."""

    def __init__(self, engine: Engine, max_batch: int = 32, wait_ms: float = 5.0) -> None:
        self.engine, self.max_batch, self.wait = engine, max_batch, wait_ms / 1000
        self.queue: asyncio.Queue = asyncio.Queue()
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="engine")  # one forward at a time
        self.batches = self.requests = 0

    async def submit(self, task: str, payload: Any):
        future = asyncio.get_running_loop().create_future()
        await self.queue.put((task, payload, future))
        return await future

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self.queue.get()]
            deadline = loop.time() + self.wait
            while len(batch) < self.max_batch and (left := deadline - loop.time()) > 0:
                try:
                    batch.append(await asyncio.wait_for(self.queue.get(), left))
                except asyncio.TimeoutError:
                    break
            requests = [(task, payload) for task, payload, _ in batch]
            try:
                results = await loop.run_in_executor(self.executor, self.engine.answer, requests)
            except Exception as err:  # a bug, not a bad request: every waiting client hears of it
                results = [err] * len(batch)
            self.batches, self.requests = self.batches + 1, self.requests + len(batch)
            for (_, _, future), result in zip(batch, results):
                if not future.done():
                    future.set_result(result)


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def create_app(engine: Engine, max_batch: int = 32, wait_ms: float = 5.0, max_body_bytes: int = 1_000_000) -> FastAPI:
    batcher = Batcher(engine, max_batch, wait_ms)

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI):
        worker = asyncio.create_task(batcher.run())
        yield
        worker.cancel()
        batcher.executor.shutdown(wait=False)

    app = FastAPI(title="ptv2-nlu", lifespan=lifespan)
    app.state.batcher = batcher

    @app.get("/health")
    async def health() -> dict:
        return {"status": "ok", "tasks": list(engine.tasks), "backbone": engine.backbone_name,
                "batches": batcher.batches, "requests": batcher.requests}

    @app.get("/tasks")
    async def tasks() -> dict:
        return {name: {"family": t.family.name, "method": t.method, "shared_backbone": t.shared,
                       "labels": t.record.get("labels"), "artifact": str(t.artifact)}
                for name, t in engine.tasks.items()}

    @app.post("/predict")
    async def predict(request: Request):
        started = time.perf_counter()
        body = await request.body()
        if len(body) > max_body_bytes:
            return _error(413, f"request body of {len(body)} bytes; at most {max_body_bytes}")
        try:
            message = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            return _error(400, f"malformed JSON: {err}")
        if not isinstance(message, dict) or not isinstance(message.get("task"), str) or "input" not in message:
            return _error(400, 'a request is a JSON object {"task": NAME, "input": {...}}')
        result = await batcher.submit(message["task"], message["input"])
        if isinstance(result, RequestError):
            return _error(result.status, str(result))
        if isinstance(result, Exception):
            return _error(500, f"{type(result).__name__}: {result}")
        return {"task": message["task"], "output": result, "seconds": round(time.perf_counter() - started, 4)}

    return app

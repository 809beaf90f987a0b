"""One request's failure is that request's answer, never its batch mates'.

``answer_isolated`` calls ``Engine.answer`` for a batch and turns whatever comes back into one result per
request: the engine's answer (a list of them for a request of several inputs), its ``RequestError`` (4xx), or
a ``ServerFault`` (500) when the engine returned an exception object for that request. When the call itself
fails (it raises anything but KeyboardInterrupt/SystemExit, or returns something that is not one answer per
request), every request of the batch is retried alone, so only the culprit gets the 500. The server runs it
where its engine runs (``worker.py``: the engine process, or a thread) and the JSONL mode calls it directly.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from .errors import ServerFault

log = logging.getLogger("tasks.serve")

ABANDONED = object()  # a retried request nobody waits for any more: not computed


def _describe(err: BaseException) -> str:
    return f"{type(err).__name__}: {err}" if str(err) else type(err).__name__


def _call(engine: Any, requests: list[tuple[str, Any]]) -> tuple[list | None, BaseException | None]:
    """(results, None), or (None, the error) when ``answer`` raises or does not answer every request."""
    try:
        results = engine.answer(requests)
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as err:  # noqa: B036 - the engine's bugs must not reach the worker
        log.error("the engine failed on a batch of %d request(s)", len(requests), exc_info=err)
        return None, err
    if not isinstance(results, list) or len(results) != len(requests):
        count = len(results) if isinstance(results, list) else type(results).__name__
        err = ServerFault(f"the engine gave {count} answers for {len(requests)} requests")
        log.error("%s", err)
        return None, err
    return results, None


def _result(result: Any) -> Any:
    """The engine's result for one request, an exception object without a status made a ServerFault (also
    inside the list that answers a request of several inputs)."""
    if isinstance(result, list):
        return [_result(item) for item in result]
    if isinstance(result, BaseException) and not hasattr(result, "status"):
        log.error("the engine answered a request with an error", exc_info=result)
        return ServerFault(f"the engine failed on this request: {_describe(result)}")
    return result


def answer_isolated(engine: Any, requests: list[tuple[str, Any]],
                    wanted: Callable[[int], bool] | None = None) -> list[Any]:
    """One result per request: an answer, an error with ``.status``, or ``ABANDONED`` for a request that
    ``wanted(index)`` says nobody waits for any more when it would be retried alone."""
    if not requests:
        return []
    results, error = _call(engine, requests)
    if results is not None:
        return [_result(r) for r in results]
    if len(requests) == 1:
        return [error if isinstance(error, ServerFault) else
                ServerFault(f"the engine failed on this request: {_describe(error)}")]
    out = []
    for index, request in enumerate(requests):  # alone, so only the culprit fails
        if wanted is not None and not wanted(index):
            out.append(ABANDONED)
            continue
        alone, error = _call(engine, [request])
        out.append(_result(alone[0]) if alone is not None else
                   error if isinstance(error, ServerFault) else
                   ServerFault(f"the engine failed on this request: {_describe(error)}"))
    return out

"""What a request can be answered with instead of its output: each error carries the HTTP status the server sends."""
from __future__ import annotations


class RequestError(Exception):
    """A request the engine cannot answer: the task cannot read its input (422)."""

    status = 422


class UnknownTask(RequestError):
    status = 404


def unknown_task(name: str, served: list[str]) -> UnknownTask:
    """The 404 of a request for a task this server does not answer (the engine's and the server's one message)."""
    return UnknownTask(f"unknown task '{name}'; this server answers: {', '.join(served)}")


class TooLong(RequestError):
    """The input is over a bound (the message names the bound and the flag that sets it)."""

    status = 413


class ServerFault(RequestError):
    """The server failed on this request alone (a bug or a fault of the machine, not of the input): 500."""

    status = 500


class Unavailable(Exception):
    """The server cannot take or finish a request now (overloaded, shutting down, the engine down): 503 with
    Retry-After."""

    status = 503

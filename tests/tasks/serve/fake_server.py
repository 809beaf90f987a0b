"""``python -m fake_server --port N [--drain-seconds S]`` (with tests/tasks/serve on PYTHONPATH): the real server
(``create_app`` + ``run_server``, SIGTERM drain included) on the fake engine, for the subprocess tests."""
from __future__ import annotations

import argparse

from fake_engine import FakeEngine
from tasks.serve import limits
from tasks.serve.server import create_app, run_server


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--drain-seconds", type=float, default=limits.DRAIN_SECONDS)
    p.add_argument("--request-timeout", type=float, default=limits.REQUEST_TIMEOUT)
    args = p.parse_args()
    app = create_app(FakeEngine(), wait_ms=1, request_timeout=args.request_timeout, poll_seconds=0.05)
    run_server(app, "127.0.0.1", args.port, drain_seconds=args.drain_seconds,
               limit_concurrency=limits.concurrency_limit(limits.MAX_QUEUE, limits.MAX_BATCH))


if __name__ == "__main__":
    main()

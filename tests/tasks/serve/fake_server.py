"""``python -m fake_server --port N [any flag of python -m tasks.serve]`` (with tests/tasks/serve on PYTHONPATH):
the real server (``create_app`` + ``run_server``, SIGTERM drain included) on the fake engine, for the subprocess
tests; its flags are derived from ``ServeSettings`` as the real command's are, and as there the engine runs in a
process of its own unless ``--no-engine-process``."""
from __future__ import annotations

import argparse

from fake_engine import FakeEngine
from tasks.common.flags import add_dataclass, from_namespace
from tasks.serve.server import create_app, run_server
from tasks.serve.settings import FLAG_OPTIONS, ServeSettings
from tasks.serve.worker import EngineProcess


def main() -> None:
    p = argparse.ArgumentParser()
    add_dataclass(p, ServeSettings, options=FLAG_OPTIONS)
    settings = from_namespace(ServeSettings, p.parse_args())
    engine = EngineProcess(FakeEngine) if settings.engine_process else FakeEngine()
    run_server(create_app(engine, settings.changed(batch_wait_ms=1), poll_seconds=0.05))


if __name__ == "__main__":
    main()

"""The command line answers at once: ``--help``, ``predict --help`` and usage errors of every entry point come
before the heavy imports (issue 40).  Each case runs in a fresh interpreter, calls the entry point's ``main`` with
``SystemExit`` caught, and reports which heavy packages ``sys.modules`` holds: none may be there (a check of what
was imported, not a timer)."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import REPO, subprocess_env

HEAVY = ("torch", "transformers", "peft", "datasets", "seqeval", "sklearn", "scipy")
FAMILIES = ("ner", "qa", "glue", "superglue", "srl")

PROBE = """
import contextlib, importlib, io, json, sys
module, attribute = {target!r}.split(":")
out, err = io.StringIO(), io.StringIO()
with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
    try:
        getattr(importlib.import_module(module), attribute)({argv!r})
        code = 0
    except SystemExit as exit_:
        code = exit_.code
print(json.dumps({{"code": code, "stdout": out.getvalue(), "stderr": err.getvalue(),
                  "heavy": [name for name in {heavy!r} if name in sys.modules]}}))
"""


def probe(target: str, argv: list[str]) -> dict:
    """Run ``target`` ("module:function") with ``argv`` in a fresh interpreter: its exit code, output, and the heavy
    packages imported by then."""
    result = subprocess.run([sys.executable, "-c", PROBE.format(target=target, argv=argv, heavy=HEAVY)], cwd=REPO,
                            env=subprocess_env(), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


CASES = [
    *[(f"tasks.{family}.__main__:main", argv, code) for family in FAMILIES for argv, code in (
        (["--help"], 0), (["predict", "--help"], 0),
        (["--bogus"], 2), (["--method", "nope"], 2), (["--epochs", "x"], 2), (["predict", "--bogus"], 2))],
    ("tasks.glue.__main__:main", ["--task", "nope"], 2),
    ("tasks.multitask.__main__:main", ["--help"], 0),
    ("tasks.multitask.__main__:main", ["nofamily"], 2),
    *[("tasks.multitask.__main__:main", [family, "--help"], 0) for family in FAMILIES],
    ("tasks.multitask.__main__:main", ["ner", "--tasks", "conll2003", "--temperature", "x"], 2),
    ("tasks.multitask.__main__:main", ["ner", "--tasks", "conll2003"], 2),  # refused by MultitaskSettings
    ("tasks.serve.__main__:main", ["--help"], 0),
    ("tasks.serve.__main__:main", ["--artifact", "a", "--port", "x"], 2),
    ("benchmarks.cli:main", ["--help"], 0),
    ("benchmarks.cli:main", ["speed", "--help"], 0),
    ("benchmarks.cli:main", ["bogus"], 2),
]


@pytest.mark.parametrize(("target", "argv", "code"), CASES,
                         ids=[f"{t.split(':')[0].removesuffix('.__main__')} {' '.join(a)}" for t, a, _ in CASES])
def test_help_and_usage_errors_import_nothing_heavy(target, argv, code):
    result = probe(target, argv)
    assert result["code"] == code, result["stderr"][-2000:]
    assert result["heavy"] == [], f"{target} {' '.join(argv)} imported {result['heavy']}"
    assert "usage:" in result["stdout"] if code == 0 else "error" in result["stderr"]
    family = target.split(".")[1]
    if argv == ["--help"] and family in FAMILIES:  # the top-level help names the predict subcommand
        assert f"subcommand: python -m tasks.{family} predict ..." in result["stdout"]

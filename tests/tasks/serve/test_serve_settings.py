"""One source for every serving setting: each flag of ``python -m tasks.serve`` is a field of ``ServeSettings`` or
``ServeCommand`` (derived by tasks/common/flags.py), the flags' defaults are the fields', and neither ``Engine``
nor the server has a default of its own."""
from __future__ import annotations

import argparse
import dataclasses
import inspect

import pytest

from models.options import dest_of
from tasks.common.flags import from_namespace
from tasks.serve.__main__ import parser
from tasks.serve.engine import Engine
from tasks.serve.server import Batcher, Service, create_app
from tasks.serve.settings import ServeCommand, ServeSettings


def flag_actions() -> list[argparse.Action]:
    return [a for a in parser()._actions if a.option_strings and a.dest != "help"]


def test_every_serve_flag_has_a_dataclass_field():
    fields = {dest_of(f): f for cls in (ServeSettings, ServeCommand) for f in dataclasses.fields(cls)}
    actions = flag_actions()
    assert len(actions) >= 19  # the 18 flags of issue 40, and --access-log
    for action in actions:
        assert action.dest in fields, f"{action.option_strings} has no field"
        field = fields[action.dest]
        assert action.help == field.metadata["help"], action.option_strings
    assert {a.option_strings[0] for a in actions} >= {
        "--artifact", "--model", "--host", "--port", "--max-batch", "--max-batch-tokens", "--batch-wait-ms",
        "--max-rows", "--max-request-rows", "--max-request-tokens", "--max-body-bytes", "--max-queue",
        "--request-timeout", "--drain-seconds", "--precision", "--device", "--input", "--output", "--access-log"}


def test_the_flags_defaults_are_the_fields_defaults():
    args = parser().parse_args(["--artifact", "a", "--artifact", "b", "c"])
    assert from_namespace(ServeSettings, args) == ServeSettings()
    assert from_namespace(ServeCommand, args).artifacts == ["a", "b", "c"]
    given = parser().parse_args(["--artifact", "a", "--max-queue", "3", "--model", "enc", "--access-log"])
    assert from_namespace(ServeSettings, given) == ServeSettings(max_queue=3, backbone="enc", access_log=True)


@pytest.mark.parametrize("flag, value", [("--request-timeout", "0"), ("--drain-seconds", "inf"),
                                         ("--max-queue", "0"), ("--batch-wait-ms", "-1"), ("--precision", "fp8")])
def test_bad_values_are_usage_errors(flag, value, capsys):
    with pytest.raises(SystemExit) as exit_:
        parser().parse_args(["--artifact", "a", flag, value])
    assert exit_.value.code == 2 and flag in capsys.readouterr().err


def test_the_engine_and_the_server_have_no_defaults_of_their_own():
    for function in (Engine.__init__, Batcher.__init__, Service.__init__):
        literal = {name: p.default for name, p in inspect.signature(function).parameters.items()
                   if p.default is not inspect.Parameter.empty and p.default is not None}
        assert not literal, (function.__qualname__, literal)
    assert "max_queue" not in inspect.signature(create_app).parameters  # settings, or changes by field name


def test_unknown_setting_names_are_refused():
    with pytest.raises(TypeError):
        ServeSettings().changed(max_queues=3)

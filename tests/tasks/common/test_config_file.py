"""``--config FILE``: a JSON or YAML file's settings become flags placed before the command line's own, so the
command line wins; every value goes through the flag's own parser; a bad file is one line naming it."""
from __future__ import annotations

import json

import pytest

from tasks.common.cli import train_parser
from tasks.common.config_file import expand_config
from tasks.common.errors import DataError, UsageError
from tasks.ner.family import FAMILY


def test_file_settings_come_first_and_the_command_line_wins(tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text("prefix_len: 7\n--epochs: 2\nselect-best: true\nlayers: last\nbf16: false\nseed: null\n")
    argv = expand_config(["--epochs", "5", "--config", str(config)])
    assert argv == ["--prefix-len", "7", "--epochs", "2", "--select-best", "--layers", "last", "--no-bf16",
                    "--epochs", "5"]
    args = train_parser(FAMILY).parse_args(argv)
    assert (args.prefix_len, args.epochs, args.select_best, args.layers, args.bf16) == (7, 5.0, True, "last", False)


def test_positional_words_stay_first_and_lists_and_json_work(tmp_path):
    config = tmp_path / "mt.json"
    config.write_text(json.dumps({"tasks": ["conll2003", "conll2004"], "temperature": 2}))
    assert expand_config(["ner", f"--config={config}", "--temperature", "3"]) == [
        "ner", "--tasks", "conll2003", "conll2004", "--temperature", "2", "--temperature", "3"]
    assert expand_config(["--epochs", "1"]) == ["--epochs", "1"]  # no --config: untouched


@pytest.mark.parametrize("text, where", [("prefix_len: [\n", 2), ("- a list\n", None), ('{"a": 1,}', 1)])
def test_a_bad_file_names_itself(tmp_path, text, where):
    config = tmp_path / ("bad.json" if text.startswith("{") else "bad.yaml")
    config.write_text(text)
    with pytest.raises(DataError) as caught:
        expand_config(["--config", str(config)])
    assert caught.value.path == config and caught.value.where == where
    with pytest.raises(UsageError):
        expand_config(["--config"])

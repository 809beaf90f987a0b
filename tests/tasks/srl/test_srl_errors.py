"""Bad SRL input: each case a DataError naming the file and the line (words/props that do not line up, a props
line with the wrong number of columns, unbalanced brackets, a predicate column with no V, a short gold_conll
line), and through the command line one ``error:`` line with exit code 2 and no traceback."""
from __future__ import annotations

from pathlib import Path

import pytest

from srl_fixtures import (SENTENCES, gold_conll_text, onto_line, props_text, words_text, write,
                          write_conll05)
from tasks.common.errors import DataError
from tasks.srl.data import read_file


def replaced(sentence: int, row: int, new: tuple[str, ...]):
    """The fixture's sentences with one props row of one sentence replaced (``new`` empty: the row dropped)."""
    sentences = [(words, list(rows)) for words, rows in SENTENCES]
    rows = sentences[sentence][1]
    rows[row:row + 1] = [new] if new else []
    return sentences


def assert_data_error(info, path: Path, line: int | None) -> str:
    message = str(info.value)
    assert message.startswith(str(path)), message
    assert info.value.where == line
    if line is not None:
        assert f"{path}: line {line}:" in message, message
    assert "\n" not in message
    return message


def read_error(words: Path, path: Path, line: int | None) -> str:
    with pytest.raises(DataError) as info:
        read_file(words)
    return assert_data_error(info, path, line)


def test_words_file_with_more_sentences_than_props_names_the_words_file(tmp_path):
    words = write_conll05(tmp_path, props=props_text(SENTENCES[:3]))
    message = read_error(words, words, 20)  # sentence 4 starts on line 20
    assert "4 sentences in train.words but 3 in train.props" in message


def test_props_file_with_more_sentences_names_the_props_file(tmp_path):
    words = write_conll05(tmp_path, words=words_text(SENTENCES[:2]))
    read_error(words, tmp_path / "train.props", 12)


def test_sentence_with_a_different_number_of_lines(tmp_path):
    words = write_conll05(tmp_path, props=props_text(replaced(2, 5, ())))  # sentence 3 (line 12): 6 props lines
    assert "sentence 3 does not line up" in read_error(words, tmp_path / "train.props", 12)


def test_props_line_with_the_wrong_number_of_columns(tmp_path):
    words = write_conll05(tmp_path, props=props_text(replaced(0, 2, ("-", "(R-A0*)"))))
    assert "2 columns" in read_error(words, tmp_path / "train.props", 3)


def test_closing_bracket_with_nothing_open(tmp_path):
    words = write_conll05(tmp_path, props=props_text(replaced(2, 2, ("-", "*)"))))  # line 14: A1 closed on 13
    assert "never opened" in read_error(words, tmp_path / "train.props", 14)


def test_span_never_closed(tmp_path):
    words = write_conll05(tmp_path, props=props_text(replaced(3, 3, ("-", "(A1*"))))  # line 23, the last
    assert "'(A1*' is never closed" in read_error(words, tmp_path / "train.props", 23)


def test_malformed_tag(tmp_path):
    words = write_conll05(tmp_path, props=props_text(replaced(3, 0, ("-", "A0"))))
    assert "'A0' is not a start-end tag" in read_error(words, tmp_path / "train.props", 20)


def test_predicate_column_with_no_v(tmp_path):
    sentences = replaced(3, 1, ("give_up", "*"))
    sentences[3][1][2] = ("-", "*")
    words = write_conll05(tmp_path, props=props_text(sentences))
    assert "'give_up' has no V" in read_error(words, tmp_path / "train.props", 21)  # the predicate's line


def test_gold_conll_line_with_too_few_columns(tmp_path):
    short = [[onto_line(0, "Hi", "-", "*")[:-3]]]  # coreference column dropped: 11 columns
    path = write(tmp_path / "a.gold_conll", gold_conll_text([*short]))
    with pytest.raises(DataError) as info:
        read_file(path)
    assert "11 columns" in assert_data_error(info, path, 2)


def test_gold_conll_line_with_fewer_columns_than_its_sentence(tmp_path):
    lines = [onto_line(0, "She", "-", "*", "(ARG0*)"), onto_line(1, "ran", "run", "*", "(V*)")[:-3]]
    path = write(tmp_path / "a.gold_conll", gold_conll_text([lines]))
    with pytest.raises(DataError) as info:
        read_file(path)
    assert "12 columns, but the sentence's first line has 13" in assert_data_error(info, path, 3)


def test_gold_conll_predicate_column_with_no_v(tmp_path):
    lines = [onto_line(0, "She", "-", "*", "(ARG0*)"), onto_line(1, "ran", "run", "*", "*")]
    path = write(tmp_path / "a.gold_conll", gold_conll_text([lines]))
    with pytest.raises(DataError) as info:
        read_file(path)
    assert "no V span" in assert_data_error(info, path, 2)


def test_bad_training_file_through_the_cli_is_one_error_line(tmp_path, capsys):
    from tasks.srl.__main__ import main

    words = write_conll05(tmp_path, props=props_text(replaced(0, 2, ("-", "(R-A0*)"))))
    never = tmp_path / "never"
    with pytest.raises(SystemExit) as info:
        main(["--train-file", str(words), "--output-dir", str(never)])
    stderr = capsys.readouterr().err
    assert info.value.code == 2 and "Traceback" not in stderr
    lines = [text for text in stderr.splitlines() if text.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"error: {tmp_path / 'train.props'}: line 3: "), stderr
    assert not never.exists()

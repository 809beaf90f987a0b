"""SRL readers on hand-written fixtures: CoNLL-2005 words + props (plain, .gz, whitespace-only separators),
CoNLL-2012 gold_conll files and folders (named entities, language folders), the one-line format, JSONL, plain
text, and the props writer reproducing the spans it read."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from srl_fixtures import (FIRST_LINES, FRAMES, ONTO_ENTITIES, ONTO_FRAMES, ONTO_SENTENCES, SENTENCES,
                          gold_conll_text, onto_line, write, write_conll05)
from tasks.common.brackets import Span, bio_spans, parse_column, to_bio, to_brackets
from tasks.common.conll2012 import gold_conll_files, read_gold_conll
from tasks.common.errors import DataError
from tasks.srl.data import format_of, load_splits, read_file, splits_in_order
from tasks.srl.formats import read_conll05, read_frames_jsonl, read_oneline, read_text, write_frames


def frame_triples(read) -> list[tuple[int, int, list[str]]]:
    """(sentence index, predicate, tags) of every frame: what FRAMES / ONTO_FRAMES list."""
    index = {id(s): i for i, s in enumerate(read.sentences)}
    return [(index[id(f.sentence)], f.predicate, f.tags) for f in read.frames]


# --------------------------------------------------------------------------- CoNLL-2005
@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_conll05_words_and_props(tmp_path, suffix):
    words = write_conll05(tmp_path, suffix=suffix)
    read = read_file(words)
    assert [s.words for s in read.sentences] == [w for w, _ in SENTENCES]
    assert [s.line for s in read.sentences] == FIRST_LINES
    assert frame_triples(read) == FRAMES
    assert all(f.gold for f in read.frames) and read.nested == 0
    assert read.sentences[0].targets == ["-", "-", "-", "leave", "say", "-", "-"]
    assert read.sentences[3].targets == ["-", "give_up", "-", "-"]


def test_whitespace_only_separator_lines_end_sentences(tmp_path):
    """The release's test.wsj.words.gz separates sentences with lines holding only spaces."""
    words = write_conll05(tmp_path, "test.wsj", ".gz", separator="   \t")
    read = read_file(words)
    assert [len(s.words) for s in read.sentences] == [7, 2, 7, 4]
    assert frame_triples(read) == FRAMES


def test_sentence_without_predicate_is_kept_with_no_frame(tmp_path):
    read = read_file(write_conll05(tmp_path))
    assert read.sentences[1].words == ["Nice", "day"] and read.sentences[1].targets == ["-", "-"]
    assert all(f.sentence is not read.sentences[1] for f in read.frames)


def test_discontinuous_r_role_and_multiword_v_spans(tmp_path):
    read = read_file(write_conll05(tmp_path))
    spans = [bio_spans(f.tags) for f in read.frames]
    assert spans[0] == [Span("A0", 0, 1), Span("R-A0", 2, 2), Span("V", 3, 3)]
    assert spans[2] == [Span("A1", 0, 1), Span("A0", 3, 3), Span("V", 4, 4), Span("C-A1", 6, 6)]
    assert spans[3] == [Span("A0", 0, 0), Span("V", 1, 2), Span("A1", 3, 3)]


def test_words_alone_or_with_a_target_column_give_unlabelled_frames(tmp_path):
    bare = write(tmp_path / "bare.words", "He\ngave\nup\n\nNice\nday\n")
    read = read_file(bare, gold=False)
    assert [s.words for s in read.sentences] == [["He", "gave", "up"], ["Nice", "day"]] and read.frames == []
    marked = write(tmp_path / "marked.words", "He -\ngave give\nup -\n")
    read = read_file(marked, gold=False)
    assert [(f.predicate, f.tags, f.gold) for f in read.frames] == [(1, ["O", "B-V", "O"], False)]


def test_props_writer_reproduces_the_spans_it_read(tmp_path):
    words = write_conll05(tmp_path)
    read = read_file(words)
    out = tmp_path / "out.props"
    write_frames(out, read.sentences, read.frames, [f.tags for f in read.frames])
    assert props_spans(tmp_path / "train.props") == props_spans(out)
    again = read_conll05(words, out)
    assert frame_triples(again) == FRAMES and [s.targets for s in again.sentences] == [
        s.targets for s in read.sentences]


def props_spans(path: Path) -> list[tuple[list[str], list[list[Span]]]]:
    """Per sentence of a props file: its target column and the spans of each argument column."""
    blocks = [[line.split() for line in block.splitlines()] for block in path.read_text().split("\n\n")
              if block.strip()]
    return [([row[0] for row in rows], [parse_column([row[k] for row in rows])[0] for k in range(1, len(rows[0]))])
            for rows in blocks]


def test_brackets_round_trip_one_column():
    column = ["(A1*", "*)", "*", "(A0*)", "(V*)", "*", "(C-A1*)"]
    outer, nested = parse_column(column)
    assert to_bio(outer, 7) == ["B-A1", "I-A1", "O", "B-A0", "B-V", "O", "B-C-A1"] and nested == []
    assert to_brackets(outer, 7) == column
    outer, nested = parse_column(["(A1*", "(A0*)", "*)"])  # nested spans come back apart
    assert outer == [Span("A1", 0, 2)] and nested == [Span("A0", 1, 1)]


# --------------------------------------------------------------------------- CoNLL-2012
def test_gold_conll_file_frames_entities_and_lemmas(tmp_path):
    path = write(tmp_path / "wsj_0001.gold_conll", gold_conll_text())
    sentences = read_gold_conll(path)
    assert [s.words for s in sentences] == [["John", "Smith", "visited", "Paris", "."], ["Hello", "there"],
                                            ["She", "said", "who", "left"]]
    assert [s.line for s in sentences] == [2, 8, 11]
    assert [s.entities for s in sentences] == ONTO_ENTITIES
    assert [s.frames for s in sentences] == [[ONTO_FRAMES[0][1:]], [], [ONTO_FRAMES[1][1:], ONTO_FRAMES[2][1:]]]
    read = read_file(path)
    assert frame_triples(read) == ONTO_FRAMES
    assert read.sentences[2].targets == ["-", "say", "-", "leave"]


def test_gold_conll_folder_is_read_recursively_english_only(tmp_path):
    data = tmp_path / "train" / "data"
    first, second = ONTO_SENTENCES[:1], ONTO_SENTENCES[2:]
    write(data / "english" / "annotations" / "nw" / "b" / "b.gold_conll", gold_conll_text(second))
    write(data / "english" / "annotations" / "bc" / "a" / "a.gold_conll", gold_conll_text(first))
    chinese = [[onto_line(0, "ni", "-", "*", "(V*)")]]
    write(data / "chinese" / "annotations" / "nw" / "c.gold_conll", gold_conll_text(chinese))
    write(data / "english" / "annotations" / "nw" / "b" / "b.parse", "not read")
    files = gold_conll_files(tmp_path)
    assert [f.name for f in files] == ["a.gold_conll", "b.gold_conll"]  # sorted paths: bc/ before nw/
    read = read_file(tmp_path)
    assert [s.words[0] for s in read.sentences] == ["John", "She"]
    assert [len(s.frames) for s in read_gold_conll(tmp_path)] == [1, 2]
    assert [s.words for s in read_gold_conll(tmp_path, "chinese")] == [["ni"]]


def test_gold_conll_layout_is_found_by_split_folders(tmp_path):
    for split in ("train", "development", "test"):
        write(tmp_path / split / "data" / "english" / f"{split}.gold_conll", gold_conll_text())
    splits = load_splits("conll2012", str(tmp_path), {})
    assert set(splits) == {"train", "dev", "test"}
    assert all(frame_triples(read) == ONTO_FRAMES for read in splits.values())
    assert splits_in_order(splits) == (["dev", "test"], "test")


# --------------------------------------------------------------------------- one-line, JSONL, text
ONELINE = ("3 The man who left said ||| B-A0 I-A0 B-R-A0 B-V O\n"
           "4 The man who left said ||| B-A0 I-A0 I-A0 I-A0 B-V\n"
           "\n"
           "1 He gave up ||| B-A0 B-V I-V\n")


def test_oneline_groups_consecutive_lines_of_one_sentence(tmp_path):
    path = write(tmp_path / "train.txt", ONELINE)
    assert format_of(path) == "oneline"
    read = read_oneline(path)
    assert [s.words for s in read.sentences] == ["The man who left said".split(), ["He", "gave", "up"]]
    assert [s.line for s in read.sentences] == [1, 4]
    assert frame_triples(read) == [(0, 3, ["B-A0", "I-A0", "B-R-A0", "B-V", "O"]),
                                   (0, 4, ["B-A0", "I-A0", "I-A0", "I-A0", "B-V"]), (1, 1, ["B-A0", "B-V", "I-V"])]
    assert read.sentences[0].targets == ["-", "-", "-", "left", "said"]
    unlabelled = read_oneline(path, gold=False)
    assert [(f.predicate, f.gold) for f in unlabelled.frames] == [(3, False), (4, False), (1, False)]
    assert unlabelled.frames[0].tags == ["O", "O", "O", "B-V", "O"]


def jsonl(path: Path, rows: list[dict]) -> Path:
    return write(path, "".join(json.dumps(r) + "\n" for r in rows))


def test_jsonl_rows_with_tags_and_prediction_rows(tmp_path):
    rows = [{"tokens": ["She", "said", "it"], "predicate_index": 1, "tags": ["B-A0", "B-V", "B-A1"]},
            {"tokens": ["He", "ran"], "predicate_index": 1, "tags": ["B-A0", "B-V"]}]
    path = jsonl(tmp_path / "train.jsonl", rows)
    read = read_file(path)
    assert frame_triples(read) == [(0, 1, ["B-A0", "B-V", "B-A1"]), (1, 1, ["B-A0", "B-V"])]
    predict = jsonl(tmp_path / "in.jsonl", [{"tokens": ["She", "said", "it"], "predicate_index": 1},
                                            {"tokens": ["She", "said", "it"], "predicate_index": 0},
                                            {"tokens": ["Nice", "day"]}])
    read = read_frames_jsonl(predict, gold=False)
    assert [s.words for s in read.sentences] == [["She", "said", "it"], ["Nice", "day"]]
    assert [(f.predicate, f.tags, f.gold) for f in read.frames] == [(1, ["O", "B-V", "O"], False),
                                                                    (0, ["B-V", "O", "O"], False)]
    assert read.sentences[0].targets == ["She", "said", "-"] and read.sentences[1].targets == ["-", "-"]


def test_plain_text_is_read_for_prediction_only(tmp_path):
    path = write(tmp_path / "plain.txt", "She said it\n\n  He   ran \n")
    assert format_of(path) == "text"
    read = read_text(path)
    assert [s.words for s in read.sentences] == [["She", "said", "it"], ["He", "ran"]] and read.frames == []
    assert [s.line for s in read.sentences] == [1, 3]
    assert [s.words for s in read_file(path, gold=False).sentences] == [["She", "said", "it"], ["He", "ran"]]
    with pytest.raises(DataError, match="no gold frames"):
        read_file(path)


def test_several_test_files_are_named_by_their_file_and_the_wsj_one_is_the_headline(tmp_path):
    train = write_conll05(tmp_path, "train")
    tests = [write_conll05(tmp_path, "test.brown", ".gz"), write_conll05(tmp_path, "test.wsj")]
    extra = write(tmp_path / "extra.jsonl", json.dumps({"tokens": ["He", "ran"], "predicate_index": 1,
                                                        "tags": ["B-A0", "B-V"]}) + "\n")
    splits = load_splits("conll2005", None, {"train": [str(train)], "dev": [],
                                             "test": [str(p) for p in (*tests, extra)]})
    assert list(splits) == ["train", "test.brown", "test.wsj", "test.extra"]
    assert splits_in_order(splits) == (["test.brown", "test.wsj", "test.extra"], "test.wsj")
    assert frame_triples(splits["test.brown"]) == FRAMES

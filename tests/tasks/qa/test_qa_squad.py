"""SQuAD JSON reading, validation, the article split and where data comes from (tasks/qa/squad.py, datasets.py)."""
from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from conftest import data_root
from tasks.common.errors import DataError, UsageError
from tasks.qa.data import load_train_eval
from tasks.qa.formats import from_hub_rows, read_squad, split_by_article

SHARED = data_root()  # $PTV2_DATA_DIR, else ../shared/data beside the checkout
DEV_V1 = SHARED / "qa" / "squad_v1" / "dev-v1.1.json.gz"
CONTEXT = "Super Bowl 50 was played in Santa Clara. The Denver Broncos won."


def qa(qid: str, text: str | None = "Denver Broncos", start: int | None = None, **extra) -> dict:
    answers = [] if text is None else [{"text": text, "answer_start": CONTEXT.find(text) if start is None else start}]
    return {"id": qid, "question": f"Question {qid}?", "answers": answers, **extra}


def squad(*articles: list[dict]) -> dict:
    return {"version": "1.1", "data": [{"title": f"T{i}", "paragraphs": [{"context": CONTEXT, "qas": qas}]}
                                       for i, qas in enumerate(articles)]}


def write(tmp_path: Path, content: dict | str, name: str = "data.json") -> Path:
    path = tmp_path / name
    text = content if isinstance(content, str) else json.dumps(content)
    if name.endswith(".gz"):
        with gzip.open(path, "wt", encoding="utf-8") as handle:
            handle.write(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def test_plain_and_gzip_read_the_same(tmp_path):
    content = squad([qa("a"), qa("b", "Santa Clara")], [qa("c", "50")])
    plain = read_squad(write(tmp_path, content), False, "train")
    packed = read_squad(write(tmp_path, content, "data.json.gz"), False, "train")
    assert [x.qid for x in plain.questions] == [x.qid for x in packed.questions] == ["a", "b", "c"]
    assert packed.questions[1].answers[0].start == CONTEXT.find("Santa Clara")
    assert [a.title for a in packed.articles] == ["T0", "T1"]


@pytest.mark.parametrize("content, where, message", [
    (squad([qa("x1", "Denver Broncos", start=3)]), "example x1", "is not at answer_start 3"),
    (squad([qa("x2", None)]), "example x2", "empty 'answers' list"),
    (squad([qa("x3"), qa("x3")]), "example x3", "duplicate question id"),
    (squad([qa("x4", is_impossible=True, answers=[])]), "example x4", "use --dataset squad_v2"),
    (squad([{"question": "no id?", "answers": []}]), "article 1 ('T0'), paragraph 1, question 1", "missing 'id'"),
    ({"data": [{"title": "T", "paragraphs": [{"qas": []}]}]}, "article 1 ('T'), paragraph 1", "missing 'context'"),
    ({"data": [{"title": "T", "paragraphs": [{"context": "c"}]}]}, "paragraph 1", "missing 'qas'"),
    ({"data": [{"title": "T"}]}, "article 1 ('T')", "missing 'paragraphs'"),
    ({"version": "1.1"}, "data.json", "expected an object with a 'data' list"),
    ('{"data": [', "data.json: line 1", "invalid JSON"),
])
def test_bad_input_names_file_and_question(tmp_path, content, where, message):
    path = write(tmp_path, content)
    with pytest.raises(DataError) as caught:
        read_squad(path, False, "train")
    text = str(caught.value)
    assert text.startswith(str(path)) and where in text and message in text and "\n" not in text


def test_bad_answers_can_be_skipped_and_are_counted(tmp_path):
    path = write(tmp_path, squad([qa("ok"), qa("bad", "Denver Broncos", start=0), qa("empty", None)]))
    data = read_squad(path, False, "train", skip_bad_answers=True)
    assert [x.qid for x in data.questions] == ["ok"] and data.skipped == ["bad", "empty"]


def test_v2_unanswerable_and_predict_inputs_without_answers(tmp_path):
    content = squad([qa("has"), qa("none", None, is_impossible=True), qa("legacy", None)])
    data = read_squad(write(tmp_path, content), True, "train")
    assert [x.impossible for x in data.questions] == [False, True, True]
    bare = squad([{"id": "p", "question": "Who won?"}])
    (question,) = read_squad(write(tmp_path, bare, "bare.json"), False, "predict").questions
    assert not question.has_gold and question.answers == []
    with pytest.raises(DataError, match="is_impossible is true but 'answers' is not empty"):
        read_squad(write(tmp_path, squad([qa("both", is_impossible=True)]), "both.json"), True, "train")


def test_article_split_is_disjoint_deterministic_and_keeps_titles_together(tmp_path):
    articles = [[qa(f"{i}-{k}") for k in range(i + 1)] for i in range(5)]
    content = squad(*articles)
    content["data"].append({"title": "T1", "paragraphs": [{"context": CONTEXT, "qas": [qa("again")]}]})
    data = read_squad(write(tmp_path, content), False, "train")
    first, rest = split_by_article(data, 0.5)
    again = split_by_article(read_squad(write(tmp_path, content), False, "train"), 0.5)
    assert [a.title for a in first.articles] == ["T0", "T1", "T1"]  # round(5 titles * 0.5) = 2 titles
    assert [a.title for a in rest.articles] == ["T2", "T3", "T4"]
    assert {x.qid for x in first.questions}.isdisjoint({x.qid for x in rest.questions})
    assert len(first.questions) + len(rest.questions) == len(data.questions)
    assert [x.qid for x in again[0].questions] == [x.qid for x in first.questions]
    with pytest.raises(UsageError, match="between 0 and 1"):
        split_by_article(data, 1.0)


@pytest.mark.skipif(not DEV_V1.is_file(), reason="shared SQuAD 1.1 dev file not present")
def test_article_split_of_the_real_dev_file():
    first, rest = split_by_article(read_squad(DEV_V1, False, "train"), 0.5)
    assert (len(first.articles), len(rest.articles)) == (24, 24)
    assert len(first.questions) + len(rest.questions) == 10570
    assert not {a.title for a in first.articles} & {a.title for a in rest.articles}
    assert first.articles[0].title == "Super_Bowl_50"


def test_only_a_dev_file_without_split_is_refused_clearly(tmp_path):
    dev = write(tmp_path, squad([qa("a")], [qa("b")]))
    with pytest.raises(UsageError, match="only an evaluation .dev. file .*--split-by-article 0.5"):
        load_train_eval("squad", None, None, str(dev), None)
    train, evaluation, _ = load_train_eval("squad", None, None, str(dev), 0.5)
    assert [x.qid for x in train.questions] == ["a"] and [x.qid for x in evaluation.questions] == ["b"]


def test_data_root_files_are_found(tmp_path, monkeypatch):
    folder = tmp_path / "qa" / "squad_v1"
    folder.mkdir(parents=True)
    write(folder, squad([qa("a")], [qa("b")]), "dev-v1.1.json.gz")
    write(folder, squad([qa("t")]), "train-v1.1.json")
    monkeypatch.setenv("PTV2_DATA_DIR", str(tmp_path))
    train, evaluation, _ = load_train_eval("squad", None, None, None, None)
    assert [x.qid for x in train.questions] == ["t"] and [x.qid for x in evaluation.questions] == ["a", "b"]
    train, evaluation, notes = load_train_eval("squad", None, None, None, 0.5)
    assert [x.qid for x in train.questions] == ["a"] and "train file is not used" in notes[0]


def test_hub_is_the_fallback_and_its_failure_names_every_source(tmp_path, monkeypatch):
    import datasets

    monkeypatch.delenv("PTV2_DATA_DIR", raising=False)
    monkeypatch.chdir(tmp_path)

    def offline(name, *args, **kwargs):
        raise ConnectionError(f"Couldn't reach '{name}' on the Hub")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    with pytest.raises(DataError) as caught:
        load_train_eval("squad_v2", None, None, None, 0.5)
    text = str(caught.value)
    for source in ("--train-file/--dev-file", "PTV2_DATA_DIR", "--data-dir", "'squad_v2'", "Couldn't reach"):
        assert source in text

    answer = {"text": ["Denver Broncos"], "answer_start": [CONTEXT.find("Denver")]}
    rows = [{"id": f"h{i}", "title": f"A{i // 2}", "context": CONTEXT, "question": "Who won?",
             "answers": answer if i % 3 else {"text": [], "answer_start": []}} for i in range(6)]
    monkeypatch.setattr(datasets, "load_dataset", lambda name: {"train": rows[:4], "validation": rows[4:]})
    train, evaluation, _ = load_train_eval("squad_v2", None, None, None, None)
    assert len(train.articles) == 2 and [x.impossible for x in train.questions] == [True, False, False, True]
    assert [x.qid for x in evaluation.questions] == ["h4", "h5"]
    assert from_hub_rows(rows, "hub", True, "train").source == "hub"


def test_skip_bad_answers_applies_to_hub_data_too(monkeypatch):
    import datasets

    monkeypatch.delenv("PTV2_DATA_DIR", raising=False)
    good = {"text": ["Denver Broncos"], "answer_start": [CONTEXT.find("Denver")]}
    bad = {"text": ["Denver Broncos"], "answer_start": [0]}  # not where the text is
    rows = [{"id": f"h{i}", "title": "A", "context": CONTEXT, "question": "Who won?",
             "answers": bad if i == 1 else good} for i in range(4)]
    monkeypatch.setattr(datasets, "load_dataset", lambda name: {"train": rows[:3], "validation": rows[3:]})
    with pytest.raises(DataError, match="h1"):
        load_train_eval("squad", None, None, None, None)
    train, evaluation, _ = load_train_eval("squad", None, None, None, None, skip_bad_answers=True)
    assert [q.qid for q in train.questions] == ["h0", "h2"] and train.skipped == ["h1"]

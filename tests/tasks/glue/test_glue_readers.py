"""Every task's reader on a slice of the shared files, and on synthetic files where the data is not here."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import data_root

from tasks.common.errors import DataError
from tasks.glue.data import find_folder, hub_records, load_splits, read_file, split_file
from tasks.glue.formats import build_examples
from tasks.glue.tasks import GLUE, SUPERGLUE

SHARED = data_root() / "glue"  # $PTV2_DATA_DIR/glue, as CI sets it


@pytest.fixture
def needs_shared_data():
    if not (SHARED / "rte" / "train.jsonl").is_file():
        pytest.fail(f"GLUE/SuperGLUE data not found under {SHARED}; set PTV2_DATA_DIR to the shared data root")


needs_shared = pytest.mark.usefixtures("needs_shared_data")


def _slice(source: Path, target: Path, lines: int) -> Path:
    """The first ``lines`` lines of a shared file (byte-exact, so BOMs and quotes survive)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(source, "rb") as handle:
        target.write_bytes(b"".join(handle.readline() for _ in range(lines)))
    return target


@needs_shared
@pytest.mark.parametrize("task,split,name,lines,expect", [
    ("cola", "train", "train.tsv", 12, 12),  # no header: every line is an example
    ("cola", "dev", "dev.tsv", 12, 12),
    ("sst2", "train", "train.tsv", 12, 11),
    ("sst2", "dev", "dev.tsv", 12, 11),
    ("stsb", "train", "train.tsv", 12, 11),
    ("stsb", "dev", "dev.tsv", 12, 11),
    ("qnli", "dev", "dev.tsv", 12, 11),
    ("rte", "dev", "val.jsonl", 12, 12),  # GLUE RTE from the SuperGLUE copy
])
def test_glue_readers_on_shared_slices(tmp_path, task, split, name, lines, expect):
    spec = GLUE[task]
    path = _slice(SHARED / task / name, tmp_path / name, lines)
    examples = read_file(spec, path, require_labels=True)
    assert len(examples) == expect
    for e in examples:
        assert e.text_a.strip()
        if spec.kind == "regression":
            assert 0.0 <= e.label <= 5.0
        else:
            assert 0 <= e.label < len(spec.labels)
    if task == "cola" and split == "train":
        assert examples[0].text_a == "Our friends won't buy this analysis, let alone the next one we propose."
    if task == "stsb":
        assert examples[0].text_b and isinstance(examples[0].label, float)


@needs_shared
def test_bare_quotes_are_kept():
    """Quoting disabled: a field starting with a quote character is text, not a quoted string."""
    examples = read_file(GLUE["stsb"], SHARED / "stsb" / "dev.tsv", require_labels=True)
    assert len(examples) == 1500
    assert examples[698].text_b == '"I had mainly been" is fine, in the context you\'re using it.'
    assert len(read_file(GLUE["sst2"], SHARED / "sst2" / "train.tsv", require_labels=True)) == 67349


@needs_shared
@pytest.mark.parametrize("task", ["boolq", "cb", "copa", "rte", "wic", "wsc", "multirc"])
def test_superglue_readers_on_shared_slices(tmp_path, task):
    spec = SUPERGLUE[task]
    path = _slice(SHARED / task / "val.jsonl", tmp_path / "val.jsonl", 8 if task != "multirc" else 2)
    examples = read_file(spec, path, require_labels=True)
    assert examples
    first = examples[0]
    if task == "copa":
        assert len(first.choices) == 2 and first.label in (0, 1) and first.text_a.endswith(("because", "so"))
    elif task == "wic":
        (s1, a1, b1), (s2, a2, b2) = first.spans
        assert (s1, s2) == (0, 1) and first.text_a[a1:b1] == "class" and first.text_b[a2:b2] == "class"
    elif task == "wsc":
        (_, a1, b1), (_, a2, b2) = first.spans
        assert first.text_a[a1:b1] == "anyone" and first.text_a[a2:b2] == "him"
    elif task == "multirc":
        assert first.choices[:2] == ["No", "Yes"] and first.label == [0, 1, 1, 0]
        assert first.idx == {"passage": 0, "question": 0} and first.option_ids == [0, 1, 2, 3]
    else:
        assert 0 <= first.label < len(spec.labels)


@needs_shared
def test_wsc_off_by_one_index_in_official_data_is_realigned():
    examples = read_file(SUPERGLUE["wsc"], SHARED / "wsc" / "val.jsonl", require_labels=True)
    e = examples[42]  # span2_index points at "use", the pronoun "it" is the next word
    assert e.realigned and e.text_a[e.spans[1][1]:e.spans[1][2]] == "it"
    assert sum(x.realigned for x in examples) == 1


@needs_shared
def test_boolq_train_is_unavailable_locally(monkeypatch):
    def offline(*_a, **_k):
        raise ConnectionError("Couldn't reach 'aps/super_glue' on the Hub")

    monkeypatch.setattr("tasks.glue.data.load_hub", offline)
    with pytest.raises(DataError, match=r"train split of superglue boolq is unavailable locally"):
        load_splits(SUPERGLUE["boolq"], str(SHARED.parent), ("train", "dev"))
    # the dev split alone is there
    assert len(load_splits(SUPERGLUE["boolq"], str(SHARED.parent), ("dev",))["dev"][0]) == 3270


# ---------------------------------------------------------------- synthetic files (data not here)
def _write(path: Path, text: str, bom: bool = False) -> Path:
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8"))
    return path


def test_mrpc_with_bom(tmp_path):
    path = _write(tmp_path / "train.tsv", "Quality\t#1 ID\t#2 ID\t#1 String\t#2 String\n"
                  "1\t702876\t702977\tAmrozi accused his brother .\tReferring to him as \"the witness\" .\n"
                  "0\t2108705\t2108831\tYucaipa owned Dominick 's .\tYucaipa bought Dominick 's in 1995 .\n", bom=True)
    examples = read_file(GLUE["mrpc"], path, require_labels=True)
    assert [e.label for e in examples] == [1, 0] and examples[0].text_b == 'Referring to him as "the witness" .'


def test_qqp_mnli_wnli_synthetic(tmp_path):
    qqp = _write(tmp_path / "qqp.tsv", "id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate\n"
                 "7\t15\t16\tHow do I read?\tHow can I read?\t1\n")
    e = read_file(GLUE["qqp"], qqp, True)[0]
    assert (e.idx, e.text_a, e.text_b, e.label) == ("7", "How do I read?", "How can I read?", 1)
    header = ["index", "promptID", "pairID", "genre", "sentence1_binary_parse", "sentence2_binary_parse",
              "sentence1_parse", "sentence2_parse", "sentence1", "sentence2", "label1", "label2", "label3",
              "label4", "label5", "gold_label"]
    row = ["0", "63735", "63735n", "slate", "( x )", "( y )", "(ROOT x)", "(ROOT y)", "The new rights are nice.",
           "Everyone loves them.", "neutral", "entailment", "neutral", "neutral", "neutral", "neutral"]
    mnli = _write(tmp_path / "dev_matched.tsv", "\t".join(header) + "\n" + "\t".join(row) + "\n")
    e = read_file(GLUE["mnli"], mnli, True)[0]
    assert GLUE["mnli"].labels[e.label] == "neutral" and e.text_b == "Everyone loves them."
    assert GLUE["mnli"].eval_splits == ("dev_matched", "dev_mismatched")
    wnli = _write(tmp_path / "wnli.tsv", "index\tsentence1\tsentence2\tlabel\n0\tI stuck a pin.\tThe pin leaked.\t0\n")
    assert read_file(GLUE["wnli"], wnli, True)[0].label == 0


def test_glue_test_files_without_labels(tmp_path):
    cola = _write(tmp_path / "test.tsv", "index\tsentence\n0\tBill whistled past the house.\n1\tThe car honked.\n")
    examples = read_file(GLUE["cola"], cola, require_labels=False)
    assert [(e.idx, e.label) for e in examples] == [("0", None), ("1", None)]
    rte = _write(tmp_path / "rte_test.tsv", "index\tsentence1\tsentence2\n0\tA dog ran.\tAn animal ran.\n")
    assert read_file(GLUE["rte"], rte, require_labels=False)[0].text_b == "An animal ran."


RECORD_LINE = {
    "idx": 3, "source": "Daily mail",
    "passage": {"text": "Tracy Morgan sued Walmart.\n@highlight\nMorgan was hurt in New Jersey",
                "entities": [{"start": 0, "end": 11}, {"start": 18, "end": 24}, {"start": 38, "end": 43},
                             {"start": 57, "end": 66}]},
    "qas": [{"query": "@placeholder was driving the truck", "idx": 9,
             "answers": [{"start": 18, "end": 24, "text": "Walmart"}]}],
}


def test_record_synthetic(tmp_path):
    path = _write(tmp_path / "val.jsonl", json.dumps(RECORD_LINE) + "\n")
    [e] = read_file(SUPERGLUE["record"], path, require_labels=True)
    assert e.choices == ["Tracy Morgan", "Walmart", "Morgan", "New Jersey"]
    assert e.answers == ["Walmart"] and e.idx == 9 and "@highlight" not in e.text_a


def test_local_folder_lookup(tmp_path):
    folder = tmp_path / "glue" / "wnli"
    folder.mkdir(parents=True)
    _write(folder / "train.tsv", "index\tsentence1\tsentence2\tlabel\n0\ta\tb\t1\n")
    assert find_folder(GLUE["wnli"], str(tmp_path)) == folder  # a data root
    assert find_folder(GLUE["wnli"], str(folder)) == folder  # the dataset folder itself
    assert split_file(GLUE["wnli"], folder, "dev") is None


def test_hub_rows_become_local_records():
    """Hub rows (ClassLabel ids, flattened MultiRC/WSC/ReCoRD) go through the same readers."""
    glue = hub_records(GLUE["mnli"], [{"premise": "p", "hypothesis": "h", "label": 2, "idx": 5},
                                      {"premise": "p", "hypothesis": "h", "label": -1, "idx": 6}])
    examples = build_examples(GLUE["mnli"], glue, "hub", require_labels=False)
    assert [(e.idx, e.label) for e in examples] == [(5, 2), (6, None)]
    stsb = build_examples(GLUE["stsb"], hub_records(GLUE["stsb"], [
        {"sentence1": "a", "sentence2": "b", "label": 3.2, "idx": 0}]), "hub", True)
    assert stsb[0].label == pytest.approx(3.2)
    boolq = build_examples(SUPERGLUE["boolq"], hub_records(SUPERGLUE["boolq"], [
        {"question": "q", "passage": "p", "idx": 0, "label": 1}]), "hub", True)
    assert boolq[0].label == 1
    wsc = build_examples(SUPERGLUE["wsc"], hub_records(SUPERGLUE["wsc"], [
        {"text": "Mark told Pete lies . He lied .", "span1_index": 0, "span2_index": 5, "span1_text": "Mark",
         "span2_text": "He", "idx": 0, "label": 0}]), "hub", True)
    assert wsc[0].spans == ((0, 0, 4), (0, 22, 24)) and wsc[0].label == 0
    multirc = build_examples(SUPERGLUE["multirc"], hub_records(SUPERGLUE["multirc"], [
        {"paragraph": "P", "question": "Q", "answer": a, "idx": {"paragraph": 0, "question": 0, "answer": i},
         "label": lab} for i, (a, lab) in enumerate([("x", 1), ("y", 0)])]), "hub", True)
    assert multirc[0].choices == ["x", "y"] and multirc[0].label == [1, 0]
    record = build_examples(SUPERGLUE["record"], hub_records(SUPERGLUE["record"], [
        {"passage": "A met B.", "query": "@placeholder met B", "entities": ["A", "B"], "entity_spans": {},
         "answers": ["A"], "idx": {"passage": 0, "query": 4}}]), "hub", True)
    assert record[0].choices == ["A", "B"] and record[0].answers == ["A"] and record[0].idx == 4


# ---------------------------------------------------------------- bad input -> DataError naming file and line
@pytest.mark.parametrize("task,name,text,message", [
    ("sst2", "train.tsv", "sentence\tlabel\ngood film\t1\nbad\tfilm\t0\n",
     r"line 3: 3 tab-separated columns, expected 2"),
    ("sst2", "train.tsv", "sentence\tlabel\ngood film\t2\n", r"line 2: label \"2\" is not one of the sst2 labels"),
    ("qnli", "dev.tsv", "index\tquestion\tlabel\n0\tWhy?\tentailment\n", r"line 2: missing field 'sentence'"),
    ("stsb", "dev.tsv", "index\tsentence1\tsentence2\tscore\n0\ta\tb\tfive\n", r"line 2: score 'five' is not a number"),
    ("stsb", "dev.tsv", "index\tsentence1\tsentence2\tscore\n0\ta\tb\t7.5\n",
     r"line 2: score '7.5' is not a number in \[0, 5\]"),
    ("cola", "train.tsv", "gj04\t1\t\tFine.\ngj04\t1\tFine.\n", r"line 2: 3 tab-separated columns, expected 4"),
])
def test_bad_tsv(tmp_path, task, name, text, message):
    path = _write(tmp_path / name, text)
    with pytest.raises(DataError, match=message) as err:
        read_file(GLUE[task], path, require_labels=True)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("task,line,message", [
    ("boolq", {"question": "q", "passage": "p", "idx": 0, "label": "true"},
     r"line 2: label \"true\" is not a JSON boolean"),
    ("cb", {"premise": "p", "hypothesis": "h", "idx": 0, "label": "maybe"}, r"line 2: label \"maybe\" is not one of"),
    ("rte", {"premise": "p", "idx": 0, "label": "entailment"}, r"line 2: missing field 'hypothesis'"),
    ("copa", {"premise": "p", "choice1": "a", "choice2": "b", "question": "cause", "label": 2},
     r"label 2 is not 0 or 1"),
    ("copa", {"premise": "p", "choice1": "a", "choice2": "b", "question": "why", "label": 0}, r"question \"why\""),
    ("wic", {"word": "w", "sentence1": "a w", "sentence2": "w b", "start1": 2, "end1": 9, "start2": 0, "end2": 1,
             "label": True}, r"lies outside sentence1"),
    ("wsc", {"text": "Mark told Pete . He lied .", "target": {"span1_index": 0, "span1_text": "Bob",
             "span2_index": 4, "span2_text": "He"}, "label": False}, r"span1_text \"Bob\" not found"),
    ("multirc", {"idx": 0, "passage": {"text": "t", "questions": [{"question": "q", "idx": 0,
                 "answers": [{"text": "a", "idx": 0, "label": 3}]}]}}, r"answer label 3 is not 0 or 1"),
])
def test_bad_jsonl(tmp_path, task, line, message):
    path = _write(tmp_path / "val.jsonl", "\n" + json.dumps(line) + "\n")  # blank line 1: the error names line 2
    with pytest.raises(DataError, match=message) as err:
        read_file(SUPERGLUE[task], path, require_labels=True)
    assert str(path) in str(err.value)


def test_invalid_json_names_the_line(tmp_path):
    path = _write(tmp_path / "val.jsonl", '{"premise": "p", "hypothesis": "h", "label": "entailment"}\n{"premise": \n')
    with pytest.raises(DataError, match=r"val.jsonl: line 2: invalid JSON"):
        read_file(SUPERGLUE["rte"], path, require_labels=True)


def test_a_request_takes_the_names_of_each_file_the_task_reads(tiny_model_dir):
    """GLUE RTE reads its TSV (sentence1/sentence2) or the JSONL copy (premise/hypothesis): a served request may use
    either, as ``predict`` takes either file."""
    from models.backbone import load_tokenizer
    from tasks.glue.family import GlueTask

    spec = GLUE["rte"]
    task = GlueTask({"name": "rte", "labels": list(spec.labels)}, load_tokenizer(str(tiny_model_dir)), spec, "GLUE")
    for payload in ({"sentence1": "a dog runs", "sentence2": "an animal runs"},
                    {"premise": "a dog runs", "hypothesis": "an animal runs"}):
        [example] = task.parse_request(payload)
        assert (example.text_a, example.text_b) == ("a dog runs", "an animal runs")

"""NER data: CoNLL reading and its errors, sub-token alignment, word-level predictions, the metric."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from seqeval.metrics import classification_report, f1_score, precision_score, recall_score

from heads import IGNORE_INDEX
from tasks.common.errors import DataError
from tasks.ner.data import label_list, load_splits
from tasks.ner.decode import to_word_tags
from tasks.ner.features import encode
from tasks.ner.formats import Sentence, check_known_tags, read_conll, read_raw_text, to_iob2, write_conll
from tasks.ner.metric import entity_scores, format_scores, percent


def write(tmp_path: Path, text: str | bytes, name: str = "data.conll") -> Path:
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    return path


# --------------------------------------------------------------------------- reader
def test_reader_keeps_tokens_middle_columns_and_sentence_lines(tmp_path):
    path = write(tmp_path, "-DOCSTART- -X- -X- O\n\nEU NNP B-NP B-ORG\nrejects VBZ B-VP O\n\n\n"
                           "Peter NNP B-NP B-PER\nBlackburn NNP I-NP I-PER\n")
    sentences = read_conll(path)
    assert [s.tokens for s in sentences] == [["EU", "rejects"], ["Peter", "Blackburn"]]
    assert [s.tags for s in sentences] == [["B-ORG", "O"], ["B-PER", "I-PER"]]
    assert sentences[0].extra == [["NNP", "B-NP"], ["VBZ", "B-VP"]]
    assert [s.line for s in sentences] == [3, 7]


def test_docstart_lines_are_skipped_even_without_blank_lines(tmp_path):
    path = write(tmp_path, "-DOCSTART- O\nEU B-ORG\n-DOCSTART- O\nPeter B-PER\n\n-DOCSTART- O\n")
    sentences = read_conll(path)
    assert [s.tokens for s in sentences] == [["EU"], ["Peter"]]
    assert all("-DOCSTART-" not in s.tokens for s in sentences)


def test_iob1_is_converted_to_iob2(tmp_path):
    # IOB1: I- opens an entity; B- only separates two adjacent entities of one type
    path = write(tmp_path, "Peter I-PER\nBlackburn I-PER\nmet O\nJohn I-PER\nPaul B-PER\nin O\nBonn I-LOC\n"
                           "Kohl I-PER\n")
    assert read_conll(path)[0].tags == ["B-PER", "I-PER", "O", "B-PER", "B-PER", "O", "B-LOC", "B-PER"]


def test_iobes_is_converted_to_iob2(tmp_path):
    path = write(tmp_path, "Bonn S-LOC\nand O\nNew B-LOC\nYork I-LOC\nCity E-LOC\nJohn B-PER\nSmith E-PER\n"
                           "Paris S-LOC\nLyon S-LOC\n")
    assert read_conll(path)[0].tags == ["B-LOC", "O", "B-LOC", "I-LOC", "I-LOC", "B-PER", "I-PER", "B-LOC",
                                        "B-LOC"]


def test_iob2_is_unchanged():
    tags = ["B-PER", "I-PER", "B-PER", "O", "B-LOC", "B-ORG", "I-ORG"]
    assert to_iob2(tags) == tags


def test_the_shared_conll2003_copy_reads_completely(shared_data_root):
    """Sentence counts as in ner/MANIFEST.md: nothing skipped, nothing merged."""
    folder = shared_data_root / "ner" / "conll2003"
    counts = {split: len(read_conll(folder / f"{split}.txt")) for split in ("train", "dev", "test")}
    assert counts == {"train": 14041, "dev": 3250, "test": 3453}
    labels = label_list(read_conll(folder / "dev.txt"))
    assert labels == ["O", "B-LOC", "I-LOC", "B-MISC", "I-MISC", "B-ORG", "I-ORG", "B-PER", "I-PER"]


def test_label_list_puts_o_first_then_types_alphabetically():
    train = [Sentence(["a", "b", "c"], ["B-Peop", "I-Peop", "O"], 1), Sentence(["d", "e"], ["B-Loc", "B-Other"], 5)]
    assert label_list(train) == ["O", "B-Loc", "B-Other", "B-Peop", "I-Peop"]


# --------------------------------------------------------------------------- reader errors
def assert_data_error(info, path: Path, line: int | None) -> str:
    message = str(info.value)
    assert message.startswith(str(path)), message
    if line is not None:
        assert f"line {line}:" in message, message
        assert info.value.where == line
    assert "\n" not in message
    return message


def test_wrong_column_count_names_file_and_line(tmp_path):
    path = write(tmp_path, "EU NNP B-NP B-ORG\nrejects VBZ B-VP O\n\nPeter NNP B-PER\n")
    with pytest.raises(DataError) as info:
        read_conll(path)
    assert "3 columns" in assert_data_error(info, path, 4)


def test_single_column_training_file_is_an_error(tmp_path):
    path = write(tmp_path, "\nEU\nrejects\n")
    with pytest.raises(DataError) as info:
        read_conll(path)
    assert_data_error(info, path, 2)


@pytest.mark.parametrize("text", ["", "\n\n  \n", "-DOCSTART- -X- -X- O\n\n"])
def test_empty_file_is_an_error(tmp_path, text):
    path = write(tmp_path, text)
    with pytest.raises(DataError) as info:
        read_conll(path)
    assert "empty" in assert_data_error(info, path, None)


def test_missing_path_is_an_error(tmp_path):
    with pytest.raises(DataError) as info:
        read_conll(tmp_path / "nope.conll")
    assert "not found" in assert_data_error(info, tmp_path / "nope.conll", None)
    with pytest.raises(DataError, match="not found"):
        read_raw_text(tmp_path / "nope.txt")


def test_non_utf8_bytes_name_the_line(tmp_path):
    path = write(tmp_path, b"EU B-ORG\nrejects O\n\nM\xfcller B-PER\n")  # latin-1, not UTF-8
    with pytest.raises(DataError) as info:
        read_conll(path)
    assert "UTF-8" in assert_data_error(info, path, 4)


@pytest.mark.parametrize("tag", ["B_PER", "X-PER", "B-", "PER"])
def test_malformed_tag_names_the_line(tmp_path, tag):
    path = write(tmp_path, f"EU B-ORG\nrejects O\n\nPeter O\nBlackburn {tag}\n")
    with pytest.raises(DataError) as info:
        read_conll(path)
    assert tag in assert_data_error(info, path, 5)


def test_tag_unknown_to_training_names_the_line(tmp_path):
    path = write(tmp_path, "EU B-ORG\n\nBonn B-LOC\nis O\nnice B-MISC\n")
    with pytest.raises(DataError) as info:
        check_known_tags(read_conll(path), ["O", "B-LOC", "I-LOC", "B-ORG", "I-ORG"], path)
    assert "B-MISC" in assert_data_error(info, path, 5)


def test_crlf_and_bom_are_accepted(tmp_path):
    path = write(tmp_path, b"\xef\xbb\xbfEU B-ORG\r\nrejects O\r\n\r\nPeter B-PER\r\n")
    sentences = read_conll(path)
    assert [s.tokens for s in sentences] == [["EU", "rejects"], ["Peter"]]


def test_unicode_line_and_space_separators_stay_inside_tokens(tmp_path):
    # U+2028, U+0085 and NBSP are str.splitlines()/str.split() separators, not CoNLL ones.
    path = write(tmp_path, "a\u2028b B-PER\nc\u00a0d O\ne\u0085 O\n\nx Y-BAD\n")
    with pytest.raises(DataError) as info:
        read_conll(path)
    assert_data_error(info, path, 5)  # the line count is not shifted by the odd separators
    path = write(tmp_path, "a\u2028b B-PER\nc\u00a0d O\n")
    assert read_conll(path)[0].tokens == ["a\u2028b", "c\u00a0d"]
    raw = write(tmp_path, "a\u2028b c\u00a0d\n", "raw.txt")
    assert read_raw_text(raw)[0].tokens == ["a\u2028b", "c\u00a0d"]


# --------------------------------------------------------------------------- prediction input and output
def test_prediction_input_keeps_every_column_and_output_appends_the_tag(tmp_path):
    source = write(tmp_path, "EU NNP B-ORG\nrejects VBZ O\n\nPeter NNP B-PER\n")
    sentences = read_conll(source, with_tags=False)
    out = tmp_path / "out.conll"
    write_conll(out, sentences, [["B-ORG", "O"], ["B-PER"]])
    assert out.read_text() == "EU NNP B-ORG B-ORG\nrejects VBZ O O\n\nPeter NNP B-PER B-PER\n\n"


def test_raw_text_is_one_sentence_per_line(tmp_path):
    path = write(tmp_path, "EU rejects German call\n\n  Peter   Blackburn \n", "raw.txt")
    sentences = read_raw_text(path)
    assert [s.tokens for s in sentences] == [["EU", "rejects", "German", "call"], ["Peter", "Blackburn"]]
    assert [s.line for s in sentences] == [1, 3]
    with pytest.raises(DataError, match="empty"):
        read_raw_text(write(tmp_path, "\n \n", "blank.txt"))
    latin = write(tmp_path, b"EU rejects\n\nM\xfcller said\n", "latin.txt")
    with pytest.raises(DataError) as info:
        read_raw_text(latin)
    assert "UTF-8" in assert_data_error(info, latin, 3)


# --------------------------------------------------------------------------- where the data comes from
def test_data_dir_may_be_a_root_or_the_dataset_folder_and_wins_over_the_environment(
        tmp_path, monkeypatch, shared_data_root):
    root = tmp_path / "root"
    folder = root / "ner" / "conll2004"
    folder.mkdir(parents=True)
    for split, tag in (("train", "B-Peop"), ("dev", "B-Loc"), ("test", "B-Org")):
        (folder / f"{split}.txt").write_text(f"John {tag}\n")
    monkeypatch.setenv("PTV2_DATA_DIR", str(shared_data_root))
    from_root = load_splits("conll2004", str(root), {})
    from_folder = load_splits("conll2004", str(folder), {})
    for splits in (from_root, from_folder):
        assert splits["train"][0][0].tags == ["B-Peop"] and splits["train"][1] == str(folder / "train.txt")
    monkeypatch.setenv("PTV2_DATA_DIR", str(root))
    assert load_splits("conll2004", None, {})["test"][0][0].tags == ["B-Org"]


# --------------------------------------------------------------------------- alignment
LABELS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
LABEL_IDS = {label: i for i, label in enumerate(LABELS)}


def word_logits(word_ids: list[int | None], first_tags: dict[int, str], length: int) -> np.ndarray:
    """Logits whose argmax is ``first_tags[w]`` on the first sub-token of word w and B-LOC everywhere else."""
    logits = np.zeros((length, len(LABELS)), dtype=np.float32)
    logits[:, LABEL_IDS["B-LOC"]] = 5.0
    previous = None
    for position, word in enumerate(word_ids):
        if word is not None and word != previous:
            logits[position] = 0.0
            logits[position, LABEL_IDS[first_tags[word]]] = 5.0
        previous = word
    return logits


def test_labels_go_on_the_first_sub_token_only(tiny_tokenizer):
    sentence = Sentence(["John", "xyzzy", "lives"], ["B-PER", "O", "B-LOC"], 1)
    features, word_ids, stats = encode([sentence], tiny_tokenizer, LABEL_IDS, max_length=32)
    tokens = tiny_tokenizer.convert_ids_to_tokens(features[0]["input_ids"])
    assert tokens == ["[CLS]", "john", "x", "##y", "##z", "##z", "##y", "lives", "[SEP]"]
    assert word_ids[0] == [None, 0, 1, 1, 1, 1, 1, 2, None]
    ignore = IGNORE_INDEX
    assert features[0]["labels"] == [ignore, LABEL_IDS["B-PER"], LABEL_IDS["O"], ignore, ignore, ignore, ignore,
                                     LABEL_IDS["B-LOC"], ignore]
    assert stats.sentences == 1 and stats.truncated_sentences == 0 and stats.words_without_subtokens == 0


def test_words_with_no_sub_token_get_o_and_do_not_shift_later_words(tiny_tokenizer):
    tokens = ["John", "\ufe0f", "Smith", "\u200b", "lives", "in", "Paris", "\u200b"]
    gold = ["B-PER", "O", "B-PER", "B-LOC", "O", "O", "B-LOC", "O"]
    sentence = Sentence(tokens, gold, 1)
    features, word_ids, stats = encode([sentence], tiny_tokenizer, LABEL_IDS, max_length=32)
    assert word_ids[0] == [None, 0, 2, 4, 5, 6, None]  # words 1, 3 and 7 have no sub-token
    assert stats.words_without_subtokens == 3 and stats.truncated_sentences == 0
    assert features[0]["labels"][1:-1] == [LABEL_IDS[t] for t in ("B-PER", "B-PER", "O", "O", "B-LOC")]

    # the model "predicts" each word's gold tag on its first sub-token
    logits = word_logits(word_ids[0], dict(enumerate(gold)), len(word_ids[0]))[None]
    predicted = to_word_tags(logits, word_ids, [len(tokens)], LABELS)
    assert predicted == [["B-PER", "O", "B-PER", "O", "O", "O", "B-LOC", "O"]]
    # the unscorable LOC counts as a miss, the rest is right
    scores = entity_scores([gold], predicted)
    assert scores["precision"] == 1.0 and scores["recall"] == pytest.approx(3 / 4)


def test_sentences_beyond_max_length_are_counted_and_their_overflow_predicted_o(tiny_tokenizer):
    short = Sentence(["John", "lives"], ["B-PER", "O"], 1)
    words = ["john", "smith", "lives", "in", "paris", "and", "new", "york", "city", "london"]
    tags = ["B-PER", "I-PER", "O", "O", "B-LOC", "O", "B-LOC", "I-LOC", "I-LOC", "B-LOC"]
    long = Sentence(words, tags, 4)
    features, word_ids, stats = encode([short, long], tiny_tokenizer, LABEL_IDS, max_length=7)
    assert len(features[1]["input_ids"]) == 7  # [CLS] + 5 words + [SEP]
    assert word_ids[1] == [None, 0, 1, 2, 3, 4, None]
    assert stats.sentences == 2 and stats.truncated_sentences == 1 and stats.words_beyond_max_length == 5
    assert "1 longer than --max-length (5 words predicted 'O')" in stats.report()

    length = max(len(w) for w in word_ids)
    logits = np.full((2, length, len(LABELS)), -100.0, dtype=np.float32)  # padded like predict()'s output
    for row, (ids, gold) in enumerate(zip(word_ids, (short.tags, long.tags))):
        logits[row, :len(ids)] = word_logits(ids, dict(enumerate(gold)), len(ids))
    predicted = to_word_tags(logits, word_ids, [2, len(words)], LABELS)
    assert predicted[0] == ["B-PER", "O"]
    assert len(predicted[1]) == len(words), "overflow words must stay in the evaluation"
    assert predicted[1] == tags[:5] + ["O"] * 5
    scores = entity_scores([short.tags, long.tags], predicted)
    assert scores["precision"] == 1.0 and scores["recall"] == pytest.approx(3 / 5)  # 2 overflow LOCs missed


def test_a_word_cut_by_max_length_keeps_its_first_sub_token(tiny_tokenizer):
    sentence = Sentence(["john", "xyzzy", "lives"], ["B-PER", "B-LOC", "O"], 1)
    _, word_ids, stats = encode([sentence], tiny_tokenizer, LABEL_IDS, max_length=5)
    assert word_ids[0] == [None, 0, 1, 1, None]
    assert stats.truncated_sentences == 1 and stats.words_beyond_max_length == 1
    predicted = to_word_tags(word_logits(word_ids[0], {0: "B-PER", 1: "B-LOC"}, 5)[None], word_ids, [3], LABELS)
    assert predicted == [["B-PER", "B-LOC", "O"]]


# --------------------------------------------------------------------------- metric
GOLD = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "O", "B-MISC", "I-MISC"]]
PRED = [["B-PER", "I-PER", "O", "B-ORG"], ["B-ORG", "O", "B-MISC", "O"]]


def test_entity_micro_scores_by_hand_and_equal_to_seqeval():
    scores = entity_scores(GOLD, PRED)
    # gold: PER, LOC, ORG, MISC; predicted: PER, ORG, ORG, MISC(short); correct: PER and the second ORG
    assert scores["precision"] == pytest.approx(0.5)
    assert scores["recall"] == pytest.approx(0.5)
    assert scores["f1"] == pytest.approx(0.5)
    assert scores["f1"] == pytest.approx(f1_score(GOLD, PRED))
    assert scores["precision"] == pytest.approx(precision_score(GOLD, PRED))
    assert scores["recall"] == pytest.approx(recall_score(GOLD, PRED))


def test_per_type_table():
    per_type = entity_scores(GOLD, PRED)["per_type"]
    assert set(per_type) == {"PER", "LOC", "ORG", "MISC"}
    assert per_type["PER"] == {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 1}
    assert per_type["LOC"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
    assert per_type["ORG"]["precision"] == pytest.approx(0.5) and per_type["ORG"]["recall"] == 1.0
    assert per_type["ORG"]["f1"] == pytest.approx(2 / 3) and per_type["ORG"]["support"] == 1
    assert per_type["MISC"]["f1"] == 0.0
    reference = classification_report(GOLD, PRED, output_dict=True)
    for name, row in per_type.items():
        assert row["f1"] == pytest.approx(reference[name]["f1-score"])

    table = format_scores("dev", percent(entity_scores(GOLD, PRED))).splitlines()
    assert table[0] == "dev: precision 50.00  recall 50.00  F1 50.00"
    rows = {line.split()[0]: line.split()[1:] for line in table[2:]}
    assert rows["ORG"] == ["50.00", "100.00", "66.67", "1"]
    assert list(rows) == ["LOC", "MISC", "ORG", "PER"]


def test_conlleval_convention_for_an_entity_opened_by_i():
    # conlleval (and seqeval's default mode) read an I- after O as the start of an entity
    assert entity_scores([["O", "B-PER", "I-PER"]], [["O", "I-PER", "I-PER"]])["f1"] == 1.0


def test_per_type_table_fits_long_type_names():
    gold = [["B-creative-work", "I-creative-work", "O", "B-PER"]]
    table = format_scores("test", percent(entity_scores(gold, gold))).splitlines()
    header, rows = table[1], table[2:]
    assert [line.split()[0] for line in rows] == ["PER", "creative-work"]
    for line in rows:  # every number column ends where the header's column ends
        for column in ("P", "R", "F1", "support"):
            end = header.index(column) + len(column)
            assert line[end - 1] != " " and (end == len(line) or line[end] == " "), (column, line)


def _ontonotes_like():
    """A tiny in-memory dataset with the schema of the hub's conll2012_ontonotesv5 (one document per row)."""
    from datasets import ClassLabel, Dataset, DatasetDict, Features, Value

    names = ["O", "B-PERSON", "I-PERSON", "B-GPE", "I-GPE", "B-WORK_OF_ART", "I-WORK_OF_ART"]
    sentence = {"part_id": Value("int32"), "words": [Value("string")], "named_entities": [ClassLabel(names=names)]}
    features = Features({"document_id": Value("string"), "sentences": [sentence]})

    def split(n: int) -> Dataset:
        docs = [{"document_id": f"nw/{i}", "sentences": [
            {"part_id": 0, "words": ["John", "Smith", "visited", "New", "York"], "named_entities": [1, 2, 0, 3, 4]},
            {"part_id": 0, "words": ["He", "read", "Moby", "Dick"], "named_entities": [0, 0, 5, 6]}]} for i in range(n)]
        return Dataset.from_list(docs, features=features)

    return DatasetDict(train=split(3), validation=split(1), test=split(2))


def test_ontonotes_from_the_hub_reads_tag_names_from_the_features(monkeypatch, tmp_path):
    import datasets

    monkeypatch.delenv("PTV2_DATA_DIR", raising=False)
    asked = []
    monkeypatch.setattr(datasets, "load_dataset", lambda *a, **k: asked.append(a) or _ontonotes_like())
    splits = load_splits("ontonotes", str(tmp_path), {})
    assert asked == [("ontonotes/conll2012_ontonotesv5", "english_v12")]
    train, source = splits["train"]
    assert len(train) == 6 and source == "hub:ontonotes/conll2012_ontonotesv5/english_v12/train"
    assert train[0].tokens == ["John", "Smith", "visited", "New", "York"]
    assert train[0].tags == ["B-PERSON", "I-PERSON", "O", "B-GPE", "I-GPE"]
    assert train[1].tags == ["O", "O", "B-WORK_OF_ART", "I-WORK_OF_ART"]
    assert [len(splits[s][0]) for s in ("dev", "test")] == [2, 4]
    assert label_list(train) == ["O", "B-GPE", "I-GPE", "B-PERSON", "I-PERSON", "B-WORK_OF_ART", "I-WORK_OF_ART"]


def test_ontonotes_from_a_local_conll_folder(tmp_path):
    folder = tmp_path / "ner" / "ontonotes"
    folder.mkdir(parents=True)
    for split in ("train", "dev", "test"):
        (folder / f"{split}.txt").write_text("John B-PERSON\nSmith I-PERSON\nsaid O\n\nParis B-GPE\n")
    splits = load_splits("ontonotes", str(tmp_path), {})
    assert splits["train"][0][0].tags == ["B-PERSON", "I-PERSON", "O"] and len(splits["test"][0]) == 2


def test_ontonotes_offline_names_every_way(monkeypatch, tmp_path):
    import datasets

    monkeypatch.delenv("PTV2_DATA_DIR", raising=False)

    def offline(*args, **kwargs):
        raise ConnectionError("Couldn't reach the Hub")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    with pytest.raises(DataError) as caught:
        load_splits("ontonotes", str(tmp_path), {})
    text = str(caught.value)
    assert "ner/ontonotes" in text and "ontonotes/conll2012_ontonotesv5 english_v12" in text
    assert "Couldn't reach" in text


# --------------------------------------------------------------------------- OntoNotes NER from gold_conll files
GOLD_CONLL = """#begin document (nw/wsj/00/wsj_0001); part 000
nw/wsj/00/wsj_0001 0 0 Pierre NNP (TOP(S(NP* - - - - (PERSON* (ARG0* -
nw/wsj/00/wsj_0001 0 1 Vinken NNP *) - - - - *) *) -
nw/wsj/00/wsj_0001 0 2 joined VBD (VP* join 01 - - * (V*) -
nw/wsj/00/wsj_0001 0 3 Paris NNP (NP*)))) - - - - (GPE) (ARG1*) -

nw/wsj/00/wsj_0001 0 0 Hi UH (TOP*) - - - - * -

#end document
"""


def test_gold_conll_named_entity_column_as_iob2(tmp_path):
    """OntoNotes NER from the files users hold: the bracket column becomes IOB2 tags, a folder is read recursively,
    and a data dir laid out as the release (train/, development/, test/) is found for --dataset ontonotes."""
    from tasks.ner.data import load_splits, read_file

    for split in ("train", "development", "test"):
        folder = tmp_path / "conll-2012" / split / "data" / "english" / "annotations" / "nw"
        folder.mkdir(parents=True)
        (folder / "wsj_0001.v4_gold_conll").write_text(GOLD_CONLL, encoding="utf-8")
    sentences = read_file(tmp_path / "conll-2012" / "train")
    assert [s.tokens for s in sentences] == [["Pierre", "Vinken", "joined", "Paris"], ["Hi"]]
    assert [s.tags for s in sentences] == [["B-PERSON", "I-PERSON", "O", "B-GPE"], ["O"]]
    splits = load_splits("ontonotes", str(tmp_path / "conll-2012"), {"train": None, "dev": None, "test": None})
    assert set(splits) == {"train", "dev", "test"}
    assert splits["dev"][0][0].tags == ["B-PERSON", "I-PERSON", "O", "B-GPE"]


def test_plain_text_read_as_conll_is_refused_not_tagged(tmp_path):
    from tasks.ner.formats import iter_conll

    one_line = tmp_path / "one.txt"
    one_line.write_text("John Smith lives in Paris .\n")
    uniform = tmp_path / "uniform.txt"
    uniform.write_text("John lives in Paris\nMary works in Rome\n")
    for path in (one_line, uniform):
        with pytest.raises(DataError, match="--format text"):
            list(iter_conll(path))
    # a real one-sentence CoNLL file: a trailing blank line, or a single column, is read as it always was
    ended = tmp_path / "ended.conll"
    ended.write_text("John NNP\nlives VBZ\n\n")
    tokens = tmp_path / "tokens.conll"
    tokens.write_text("John\nlives\n")
    assert [s.tokens for s in iter_conll(ended)] == [["John", "lives"]]
    assert [s.tokens for s in iter_conll(tokens)] == [["John", "lives"]]

"""Frames -> sub-token features with the tiny WordPiece tokenizer: the predicate as a second segment or between
marker words, labels only on each word's first sub-token of the sentence, and words beyond --max-length counted
and decoded as O."""
from __future__ import annotations

import numpy as np

from heads import IGNORE_INDEX
from tasks.srl.decode import to_frame_tags
from tasks.srl.family import FAMILY, label_list
from tasks.srl.features import encode
from tasks.srl.formats import Frame, SrlSentence

LABELS = ["O", "B-A0", "I-A0", "B-A1", "I-A1", "B-V", "I-V"]
IDS = {label: i for i, label in enumerate(LABELS)}
X = IGNORE_INDEX


def frame(words: str, predicate: int, tags: str, gold: bool = True) -> Frame:
    split = words.split()
    return Frame(SrlSentence(split, ["-"] * len(split), "test", 1), predicate, tags.split(), gold)


# "xy" is two sub-tokens: x ##y
LIVES = frame("john xy lives in paris", 2, "B-A0 I-A0 B-V O B-A1")


def tokens(tokenizer, feature: dict) -> list[str]:
    return tokenizer.convert_ids_to_tokens(feature["input_ids"])


def test_segment_mode_puts_the_predicate_in_a_second_segment(tiny_tokenizer):
    features, positions, stats = encode([LIVES], tiny_tokenizer, IDS, 32, "segment")
    (feature,) = features
    assert tokens(tiny_tokenizer, feature) == ["[CLS]", "john", "x", "##y", "lives", "in", "paris", "[SEP]",
                                               "lives", "[SEP]"]
    assert feature["token_type_ids"] == [0] * 8 + [1] * 2
    # labels on first sub-tokens of the sentence only; "##y" and the second segment's "lives" have none
    assert feature["labels"] == [X, IDS["B-A0"], IDS["I-A0"], X, IDS["B-V"], IDS["O"], IDS["B-A1"], X, X, X]
    assert positions == [[1, 2, 4, 5, 6]]
    assert (stats.frames, stats.truncated_frames, stats.words_beyond_max_length) == (1, 0, 0)


def test_markers_mode_marks_the_predicate_and_leaves_the_markers_unlabelled(tiny_tokenizer):
    features, positions, _ = encode([LIVES], tiny_tokenizer, IDS, 32, "markers")
    (feature,) = features
    marker_ids = tiny_tokenizer.convert_tokens_to_ids(["[", "]"])  # the tiny vocabulary has neither: [UNK]
    ids = feature["input_ids"]
    assert [ids[4], ids[6]] == marker_ids and tokens(tiny_tokenizer, feature)[5] == "lives"
    assert set(feature["token_type_ids"]) == {0}
    assert feature["labels"] == [X, IDS["B-A0"], IDS["I-A0"], X, X, IDS["B-V"], X, IDS["O"], IDS["B-A1"], X]
    assert positions == [[1, 2, 5, 7, 8]]


def test_unlabelled_frames_get_no_labels(tiny_tokenizer):
    unlabelled = Frame(LIVES.sentence, 2, ["O", "O", "B-V", "O", "O"], gold=False)
    features, positions, _ = encode([unlabelled], tiny_tokenizer, IDS, 32, "segment")
    assert "labels" not in features[0] and positions == [[1, 2, 4, 5, 6]]


def test_words_beyond_max_length_are_counted_and_decoded_as_o(tiny_tokenizer):
    long = frame("john xy lives in paris london", 2, "B-A0 I-A0 B-V O B-A1 I-A1")
    features, positions, stats = encode([long], tiny_tokenizer, IDS, 8, "segment")
    # 8 = [CLS] + 4 sentence sub-tokens + [SEP] lives [SEP]: the predicate segment is never cut
    assert tokens(tiny_tokenizer, features[0]) == ["[CLS]", "john", "x", "##y", "lives", "[SEP]", "lives", "[SEP]"]
    assert positions == [[1, 2, 4, None, None, None]]
    assert (stats.truncated_frames, stats.words_beyond_max_length, stats.predicates_beyond_max_length) == (1, 3, 0)
    assert "3 words predicted 'O'" in stats.report()
    scores = np.zeros((1, 8, len(LABELS)))
    scores[..., IDS["B-A1"]] = 5.0  # every position says B-A1
    assert to_frame_tags(scores, positions, [2], LABELS, "argmax") == [["B-A1", "B-A1", "B-V", "O", "O", "O"]]


def test_a_predicate_cut_off_in_markers_mode_is_counted(tiny_tokenizer):
    late = frame("john xy in paris london lives", 5, "B-A0 I-A0 O O O B-V")
    _, positions, stats = encode([late], tiny_tokenizer, IDS, 8, "markers")
    # [CLS] john x ##y in paris london [SEP]: the marker and the predicate after it are cut off
    assert positions == [[1, 2, 4, 5, 6, None]]
    assert (stats.words_beyond_max_length, stats.predicates_beyond_max_length) == (1, 1)


def test_a_word_with_no_sub_token_is_counted_apart(tiny_tokenizer):
    odd = frame("john \u200b lives", 2, "B-A0 O B-V")
    _, positions, stats = encode([odd], tiny_tokenizer, IDS, 32, "segment")
    assert positions == [[1, None, 2]]
    assert (stats.words_without_subtokens, stats.words_beyond_max_length, stats.truncated_frames) == (1, 0, 0)


def test_the_task_ignores_roles_unseen_in_training(tiny_tokenizer):
    labels = label_list([LIVES])
    assert labels == ["O", "B-A0", "I-A0", "B-A1", "B-V"]
    task = FAMILY.bind({"labels": labels, "max_length": 32, "predicate_mark": "segment", "decoding": "argmax",
                        "target": "frames"}, tiny_tokenizer)
    unseen = frame("john lives", 1, "B-A2 B-V")
    encoded = task.encode([unseen], train=False)
    assert encoded.features[0]["labels"] == [X, X, labels.index("B-V"), X, X, X]
    assert encoded.state == [[1, 2]]


def test_the_task_scores_nothing_when_there_is_no_frame(tiny_tokenizer):
    """Input where the predicate tagger found no predicate: no scores (seqeval refuses empty lists)."""
    task = FAMILY.bind({"labels": ["O", "B-V"], "max_length": 32, "predicate_mark": "segment", "decoding": "argmax",
                        "target": "frames"}, tiny_tokenizer)
    assert task.score([], []) is None
    assert task.score([LIVES], [LIVES.tags])["f1"] == 100.0

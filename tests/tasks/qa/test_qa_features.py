"""Sliding windows and answer labels (tasks/qa/features.py) with the bundled encoder's fast tokenizer (offline)."""
from __future__ import annotations

from types import SimpleNamespace

import pytest

from models.backbone import load_tokenizer
from tasks.common.errors import UsageError
from tasks.qa.features import answer_tokens, check_tokenizer, encode, question_token_limit
from tasks.qa.formats import Answer, Question

WORDS = ("alpha beta, gamma-delta (epsilon) zeta's eta: theta iota kappa; lambda mu. nu xi omicron! pi rho "
         "sigma tau upsilon 1,234 phi chi psi omega").split()


@pytest.fixture(scope="module")
def tokenizer():
    """The bundled encoder's: every test taking it is marked ``bundled``."""
    return load_tokenizer(None)


def long_context(n_words: int = 160) -> str:
    return " ".join(WORDS[i % len(WORDS)] for i in range(n_words))


def word_spans(text: str) -> list[tuple[int, int]]:
    spans, position = [], 0
    for word in text.split(" "):
        spans.append((position, position + len(word)))
        position += len(word) + 1
    return spans


@pytest.mark.bundled
def test_windows_cover_every_context_character(tokenizer):
    context = long_context()
    question = Question("q", "Which word comes after sigma?", context, [])
    features, windows, stats = encode([question], tokenizer, max_length=40, doc_stride=8)
    assert stats.windows == len(windows) > 5 and stats.multi_window_questions == 1
    covered = set()
    for feature, window in zip(features, windows):
        assert len(feature["input_ids"]) <= 40
        spans = [o for o in window.offsets if o is not None]
        covered.update(c for start, end in spans for c in range(start, end))
        assert window.offsets[window.cls] is None  # CLS is never a context position
    assert {i for i, ch in enumerate(context) if not ch.isspace()} <= covered
    # consecutive windows share exactly doc_stride context tokens
    for left, right in zip(windows, windows[1:]):
        shared = set(o for o in left.offsets if o) & set(o for o in right.offsets if o)
        assert len(shared) == 8


@pytest.mark.bundled
@pytest.mark.parametrize("n_words", [1, 2, 3])
def test_labels_land_on_the_answer_tokens_everywhere_including_window_borders(tokenizer, n_words):
    context = long_context(120)
    spans = word_spans(context)
    questions = []
    for i in range(len(spans) - n_words + 1):  # an answer starting at every word: many sit on a border
        start, end = spans[i][0], spans[i + n_words - 1][1]
        questions.append(Question(f"q{i}", "What is here?", context, [Answer(context[start:end], start)]))
    # the stride (12) exceeds the longest answer (9 tokens), so each answer fits whole in some window
    features, windows, stats = encode(questions, tokenizer, max_length=32, doc_stride=12)
    labelled = set()
    at_border = 0
    for feature, window in zip(features, windows):
        question = questions[window.question]
        first, last = feature["labels"]
        if first == window.cls:
            assert last == window.cls
            continue
        labelled.add(window.question)
        text = question.context[window.offsets[first][0]: window.offsets[last][1]]
        assert text == question.answers[0].text  # the labels cover the answer, no more and no less
        context_tokens = [t for t, o in enumerate(window.offsets) if o is not None]
        at_border += first == context_tokens[0] or last == context_tokens[-1]
    assert labelled == set(range(len(questions)))  # every answer is learnable from some window
    assert stats.answers_in_no_window == 0
    assert at_border > 5  # the border cases really were exercised
    # with a stride shorter than an answer, an answer may straddle every window: counted, not hidden
    _, windows, stats = encode(questions, tokenizer, max_length=32, doc_stride=2)
    assert (stats.answers_in_no_window > 0) == (n_words > 1)  # one word is at most 3 = stride + 1 tokens
    assert f"{stats.answers_in_no_window} answers in no window" in stats.report()


@pytest.mark.bundled
def test_answer_split_by_the_window_edge_is_labelled_cls(tokenizer):
    context = long_context(80)
    spans = word_spans(context)
    questions = [Question(f"q{i}", "Q?", context, [Answer(context[spans[i][0]:spans[i + 4][1]], spans[i][0])])
                 for i in range(len(spans) - 4)]
    features, windows, stats = encode(questions, tokenizer, max_length=32, doc_stride=10)
    straddling = 0
    for feature, window in zip(features, windows):
        tokens = [o for o in window.offsets if o is not None]
        answer = questions[window.question].answers[0]
        inside = tokens[0][0] <= answer.start and answer.start + len(answer.text) <= tokens[-1][1]
        assert (feature["labels"][0] != window.cls) == inside
        straddling += not inside and tokens[0][0] < answer.start + len(answer.text) and answer.start < tokens[-1][1]
    assert straddling > 0 and stats.windows_without_answer > 0


@pytest.mark.bundled
def test_unanswerable_and_unlabelled_questions_point_at_cls(tokenizer):
    context = long_context(60)
    questions = [Question("impossible", "Q?", context, [], impossible=True),
                 Question("no-gold", "Q?", context, [], has_gold=False)]
    features, windows, _ = encode(questions, tokenizer, max_length=32, doc_stride=8)
    assert all(f["labels"] == [w.cls, w.cls] for f, w in zip(features, windows))
    assert answer_tokens(questions[0], windows[0].offsets) == (None, None)


@pytest.mark.bundled
def test_long_question_is_cut_and_counted_never_silently(tokenizer):
    context = long_context(30)
    long_question = " ".join(["why"] * 40) + "?"
    questions = [Question("long", long_question, context, [Answer("alpha", 0)]),
                 Question("short", "What?", context, [Answer("alpha", 0)])]
    limit = question_token_limit(tokenizer, 32, 8)
    features, windows, stats = encode(questions, tokenizer, max_length=32, doc_stride=8)
    assert stats.truncated_questions == 1 and stats.question_token_limit == limit == 32 - 3 - 8 - 1
    assert f"1 questions longer than {limit} tokens were cut" in stats.report()
    for feature, window in zip(features, windows):
        if window.question == 1:  # the short question is complete in every window
            assert feature["input_ids"][1:3] == tokenizer("What?", add_special_tokens=False)["input_ids"]
        assert len(feature["input_ids"]) <= 32


@pytest.mark.bundled
def test_stride_that_leaves_no_room_is_a_usage_error(tokenizer):
    with pytest.raises(UsageError, match="--doc-stride 40"):
        question_token_limit(tokenizer, 32, 40)


def test_slow_tokenizer_is_refused_with_a_clear_error():
    with pytest.raises(UsageError, match="fast tokenizer with offset mappings"):
        check_tokenizer(SimpleNamespace(is_fast=False))

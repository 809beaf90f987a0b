"""Span selection from logits (tasks/qa/postprocess.py): synthetic logits, v2 null handling, a tiny random BERT."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import BertConfig, BertModel, DataCollatorWithPadding

from heads import SpanHead
from models.adapted import AdaptedModel
from models.backbone import load_tokenizer
from models.prefix import PrefixConfig
from tasks.common.training import predict
from tasks.qa.features import Window, encode
from tasks.qa.decode import NO_SPAN_ODDS, best_answers
from tasks.qa.formats import Answer, Question

# tokens:        CLS   q     q     SEP   "red"   "green"  "blue"   "cyan"   SEP
CONTEXT = "red green blue cyan"
OFFSETS = [None, None, None, None, (0, 3), (4, 9), (10, 14), (15, 19), None]


def logits_for(starts: dict[int, float], ends: dict[int, float], n: int = len(OFFSETS)) -> np.ndarray:
    out = np.full((n, 2), -10.0, dtype=np.float32)  # every other position: unlikely
    for position, value in starts.items():
        out[position, 0] = value
    for position, value in ends.items():
        out[position, 1] = value
    return out


def answer(logits: list[np.ndarray], offsets: list = None, version2: bool = False, **kwargs):
    question = Question("q", "Which colour?", CONTEXT, [])
    windows = [Window(0, offsets or OFFSETS, 0) for _ in logits]
    predictions, odds = best_answers([question], windows, np.stack(logits), version2=version2, **kwargs)
    return predictions["q"], odds.get("q")


def test_best_valid_span_wins():
    assert answer([logits_for({5: 5.0}, {6: 5.0})])[0] == "green blue"


def test_spans_in_the_question_or_special_tokens_are_excluded():
    # the highest start/end logits sit on question tokens, SEP and CLS: never chosen
    logits = logits_for({1: 50.0, 3: 40.0, 0: 30.0, 6: 2.0}, {2: 50.0, 8: 40.0, 0: 30.0, 6: 1.0})
    assert answer([logits])[0] == "blue"


def test_reversed_and_too_long_spans_are_excluded():
    reversed_ = logits_for({7: 10.0, 4: 2.0}, {5: 10.0})  # best pair (7, 5) is reversed
    assert answer([reversed_])[0] == "red green"
    too_long = logits_for({4: 10.0, 6: 1.0}, {7: 10.0, 6: 2.0})  # (4, 7): 20 > (4, 6): 12 > (6, 7): 11 > (6, 6): 3
    assert answer([too_long], max_answer_length=4)[0] == "red green blue cyan"
    assert answer([too_long], max_answer_length=3)[0] == "red green blue"
    assert answer([too_long], max_answer_length=2)[0] == "blue cyan"
    assert answer([too_long], max_answer_length=1)[0] == "blue"


def test_n_best_limits_the_candidates():
    # with n_best=1 only the top start (cyan) and top end (red) are paired: reversed, so no answer
    logits = logits_for({7: 10.0, 4: 9.0}, {4: 10.0, 5: 9.0})
    assert answer([logits], n_best=1)[0] == ""
    assert answer([logits], n_best=2)[0] == "red"


def test_best_window_per_question():
    first = np.full((len(OFFSETS), 2), -5.0, dtype=np.float32)
    first[4] = [3.0, 3.0]  # "red": 6
    second = np.full((len(OFFSETS), 2), -5.0, dtype=np.float32)
    second[7] = [4.0, 4.0]  # "cyan": 8
    assert answer([first, second])[0] == "cyan"
    assert answer([second, first])[0] == "cyan"


def test_v2_null_score_against_the_best_span():
    no_answer = logits_for({0: 6.0, 5: 2.0}, {0: 6.0, 5: 2.0})  # null 12 vs span 4
    text, odds = answer([no_answer], version2=True)
    assert text == "" and odds == pytest.approx(8.0)
    answered = logits_for({0: 1.0, 5: 2.0}, {0: 1.0, 5: 2.0})  # null 2 vs span 4
    text, odds = answer([answered], version2=True)
    assert text == "green" and odds == pytest.approx(-2.0)
    assert answer([no_answer], version2=True, null_threshold=10.0)[0] == "green"  # threshold keeps the span
    assert answer([no_answer], version2=False)[0] == "green"  # v1.1 always answers


def test_v2_null_comes_from_the_window_most_sure_of_an_answer():
    far = logits_for({0: 9.0}, {0: 9.0})  # a window without the answer: null 18, best span 0
    near = logits_for({0: 1.0, 6: 5.0}, {0: 1.0, 6: 5.0})  # null 2, span "blue" 10
    text, odds = answer([far, near], version2=True)
    assert text == "blue" and odds == pytest.approx(2.0 - 10.0)


def test_no_context_tokens_means_no_answer():
    offsets = [None] * len(OFFSETS)
    assert answer([logits_for({}, {})], offsets=offsets) == ("", None)
    assert answer([logits_for({}, {})], offsets=offsets, version2=True) == ("", NO_SPAN_ODDS)


@pytest.mark.bundled
def test_labels_become_the_gold_text_again():
    """encode -> one-hot logits at the labels -> post-processing returns exactly the gold answers."""
    tokenizer = load_tokenizer(None)
    context = " ".join(f"word{i} (x{i}), y-{i}." for i in range(60))
    starts = [m for m in range(0, len(context) - 20, 37) if context[m] != " "]
    questions = [Question(f"q{i}", "Which?", context, [Answer(context[s:s + 12].strip(), s)])
                 for i, s in enumerate(starts)]
    features, windows, _ = encode(questions, tokenizer, max_length=48, doc_stride=16)
    logits = np.zeros((len(features), 48, 2), dtype=np.float32)
    for w, feature in enumerate(features):
        start, end = feature["labels"]
        if start != windows[w].cls:
            logits[w, start, 0] = logits[w, end, 1] = 10.0
    predictions, _ = best_answers(questions, windows, logits)
    for question in questions:
        assert question.context.find(predictions[question.qid]) <= question.answers[0].start
        assert question.answers[0].text in predictions[question.qid]  # whole tokens around the answer
        assert len(predictions[question.qid]) - len(question.answers[0].text) < 8


@pytest.mark.bundled
def test_tiny_random_bert_with_prefix_runs_windows_to_answers(tmp_path):
    """A randomly initialised 2-layer BERT: training loss on window labels, then predict() -> answers."""
    torch.manual_seed(0)
    tokenizer = load_tokenizer(None)
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=128)
    model = AdaptedModel(BertModel(config, add_pooling_layer=False), SpanHead(32), "prefix", PrefixConfig(prefix_len=4))
    context = " ".join(f"token{i}" for i in range(80))
    questions = [Question("a", "Where is token7?", context, [Answer("token7", context.index("token7"))]),
                 Question("b", "Nothing?", context, [], impossible=True)]
    features, windows, _ = encode(questions, tokenizer, max_length=40, doc_stride=10)
    collator = DataCollatorWithPadding(tokenizer)
    out = model(**collator(features))
    assert out["loss"].isfinite() and out["logits"].shape[:2] == collator(features)["input_ids"].shape
    logits = predict(model.eval(), features, collator, batch_size=2, work_dir=tmp_path)
    predictions, odds = best_answers(questions, windows, logits, version2=True)
    assert set(predictions) == set(odds) == {"a", "b"}
    for text in predictions.values():
        assert text == "" or text in context

"""The engine under hostile input: one request's fault is its own answer, every request has a cost bound (413
naming the flag), int8 answers do not depend on batch mates, and artifacts load as their method allows."""
from __future__ import annotations

import shutil
import time

import numpy as np
import pytest
import torch

from conftest import HIDDEN, save_tiny_model
from heads import SequenceClassificationHead, SpanHead, TokenClassificationHead
from models.adapted import build_model
from models.methods import PrefixConfig, PromptConfig
from tasks.common.artifacts import save_artifact
from tasks.serve.engine import Engine
from tasks.serve.errors import RequestError, TooLong

NER_LABELS = ["O", "B-LOC", "I-LOC"]


def artifact(encoder, out, head, method, config, record, seed=0):
    torch.manual_seed(seed)
    model = build_model(str(encoder), head, method, config)
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.add_(0.3 * torch.randn(p.shape))
    save_artifact(model, out, record)
    return out


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("faults")
    encoder = save_tiny_model(root / "encoder")
    ner = artifact(encoder, root / "ner", TokenClassificationHead(HIDDEN, 3), "prefix", PrefixConfig(prefix_len=2),
                   {"family": "ner", "dataset": "ner", "labels": NER_LABELS, "max_length": 32})
    qa = artifact(encoder, root / "qa", SpanHead(HIDDEN), "prefix", PrefixConfig(prefix_len=3),
                  {"family": "qa", "dataset": "squad", "version2": False, "max_length": 32, "doc_stride": 8,
                   "max_answer_length": 5, "n_best": 3, "null_threshold": 0.0})
    rte = artifact(encoder, root / "rte", SequenceClassificationHead(HIDDEN, 2), "prefix", PrefixConfig(prefix_len=4),
                   {"family": "superglue", "benchmark": "superglue", "name": "rte",
                    "labels": ["entailment", "not_entailment"], "max_length": 32})
    cb = artifact(encoder, root / "cb", SequenceClassificationHead(HIDDEN, 3), "prompt", PromptConfig(prompt_len=2),
                  {"family": "superglue", "benchmark": "superglue", "name": "cb",
                   "labels": ["entailment", "contradiction", "neutral"], "max_length": 32})
    return encoder, {"ner": ner, "qa": qa, "rte": rte, "cb": cb}


def test_a_lone_surrogate_fails_alone_among_fifteen_valid_requests(served):
    _, paths = served
    engine = Engine([str(p) for p in paths.values()])
    valid = [("ner", {"text": "john lives in paris"}), ("rte", {"premise": "john lives", "hypothesis": "paris"})]
    requests = valid * 7 + [("ner", {"text": "paris"})]
    requests.insert(5, ("ner", {"text": "john \ud800 paris"}))  # valid JSON, not valid Unicode
    results = engine.answer(requests)
    bad = results.pop(5)
    assert isinstance(bad, RequestError) and bad.status == 422 and "surrogate" in str(bad)
    assert len(results) == 15 and all(isinstance(r, dict) for r in results)


def test_an_exception_inside_the_model_fails_only_its_request(served, monkeypatch):
    _, paths = served
    engine = Engine([str(paths["ner"]), str(paths["rte"])])
    forward = engine._forward

    def failing(pending):  # a fault of the model on any batch holding the RTE request
        if any(p.served.name == "rte" for p in pending):
            raise RuntimeError("device fault")
        return forward(pending)

    monkeypatch.setattr(engine, "_forward", failing)
    ner, rte, ner2 = engine.answer([("ner", {"text": "john"}), ("rte", {"premise": "a", "hypothesis": "b"}),
                                    ("ner", {"text": "paris"})])
    assert ner["tags"] and ner2["tags"]
    assert isinstance(rte, RequestError) and rte.status == 500 and "device fault" in str(rte)


def test_an_800_kb_text_is_refused_before_it_is_tokenized(served):
    _, paths = served
    engine = Engine([str(paths["ner"])], max_request_tokens=1024)
    started = time.perf_counter()
    result, = engine.answer([("ner", {"text": "paris " * 140_000})])
    assert isinstance(result, TooLong) and result.status == 413 and "--max-request-tokens" in str(result)
    assert time.perf_counter() - started < 5  # a bound, not a timing claim: tokenizing it would take far longer


def test_a_long_context_is_refused_by_its_window_count(served):
    _, paths = served
    engine = Engine([str(paths["qa"])], max_request_rows=4)
    context = " ".join(["john lives in paris and london"] * 40)
    result, = engine.answer([("squad", {"question": "who lives", "context": context})])
    assert isinstance(result, TooLong) and "--max-request-rows" in str(result) and "encoder rows" in str(result)
    short, = engine.answer([("squad", {"question": "who lives", "context": "john lives in paris"})])
    assert "answer" in short


def test_an_empty_glue_text_is_refused_like_empty_ner_or_qa_input(served):
    _, paths = served
    engine = Engine([str(paths["rte"]), str(paths["ner"])])
    empty, blank, ner = engine.answer([("rte", {"premise": "", "hypothesis": "x"}),
                                       ("rte", {"premise": "john", "hypothesis": "   "}), ("ner", {"text": " "})])
    assert all(isinstance(r, RequestError) and r.status == 422 for r in (empty, blank, ner))


def test_one_forward_holds_at_most_the_batch_token_budget(served):
    _, paths = served
    engine = Engine([str(paths["ner"])], max_batch_tokens=40)
    pending = [engine.prepare("ner", {"text": "john lives in paris and london"}) for _ in range(6)]
    groups = engine._groups(list(enumerate(pending)))
    assert len(groups) > 1
    assert all(sum(p.rows for _, p in g) * max(p.width for _, p in g) <= 40 for g in groups if len(g) > 1)


def test_int8_answers_do_not_depend_on_batch_mates(served):
    _, paths = served
    engine = Engine([str(paths["ner"]), str(paths["rte"])], precision="int8")
    request = ("ner", {"text": "john lives in paris"})
    mates = [("ner", {"text": "peter blackburn said " * 5}), ("rte", {"premise": "a b c d e f", "hypothesis": "g"})]
    alone = engine.logits([engine.prepare(*request)])[0]
    together = engine.logits([engine.prepare(*r) for r in [mates[0], request, mates[1]]])[1]
    np.testing.assert_array_equal(alone, together)


def test_the_prefix_table_is_computed_once_and_a_prompt_shares_the_encoder(served, monkeypatch):
    from models.prefix.encoder import PrefixEncoder

    _, paths = served
    engine = Engine([str(paths["ner"]), str(paths["cb"])])
    assert engine.tasks["cb"].model.backbone is engine.shared.backbone  # the prompt keeps the encoder: no copy
    calls = []
    table = PrefixEncoder.table
    monkeypatch.setattr(PrefixEncoder, "table", lambda self: calls.append(1) or table(self))
    for _ in range(3):
        engine.answer([("ner", {"text": "john lives"})])
    assert len(calls) <= 1


def test_an_own_model_artifact_loads_onto_the_given_model(served, tmp_path):
    encoder, _ = served
    copy = tmp_path / "encoder-copy"
    shutil.copytree(encoder, copy)
    moved = artifact(copy, tmp_path / "ft", TokenClassificationHead(HIDDEN, 3), "finetune", None,
                     {"family": "ner", "dataset": "ft", "labels": NER_LABELS, "max_length": 32})
    shutil.rmtree(copy)  # the encoder the artifact names is gone; --model names the same weights elsewhere
    engine = Engine([str(moved)], backbone=str(encoder))
    assert engine.answer([("ft", {"text": "john"})])[0]["tags"]

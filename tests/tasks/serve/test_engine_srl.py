"""SRL served beside NER on one backbone: a request names its predicates and gets one frame each; the rows of both
tasks share a forward and each gets its own logits; bad predicate lists are that request's 422."""
from __future__ import annotations

import numpy as np
import torch

from conftest import HIDDEN, save_tiny_model
from heads import TokenClassificationHead
from models.adapted import build_model
from models.methods import PrefixConfig
from served_tasks import NER_LABELS, perturbed
from tasks.common.artifacts import load_artifact, save_artifact
from tasks.serve.engine import Engine, RequestError

SRL_LABELS = ["O", "B-A0", "I-A0", "B-A1", "I-A1", "B-V", "I-V"]
SRL_RECORD = {"family": "srl", "dataset": "tiny-srl", "target": "frames", "labels": SRL_LABELS, "max_length": 32,
              "predicate_mark": "segment", "decoding": "bio"}
NER_RECORD = {"family": "ner", "dataset": "tiny-ner", "labels": NER_LABELS, "max_length": 32}
REQUESTS = [("tiny-srl", {"tokens": ["john", "lives", "in", "paris"], "predicates": [1]}),
            ("tiny-ner", {"text": "john smith lives in paris"}),
            ("tiny-srl", {"text": "peter said john lives in london", "predicates": [1, 3]})]


def _artifacts(tmp_path):
    encoder = save_tiny_model(tmp_path / "encoder")
    torch.manual_seed(0)
    paths = {}
    for name, labels, prefix, record in (("srl", SRL_LABELS, 4, SRL_RECORD), ("ner", NER_LABELS, 3, NER_RECORD)):
        model = perturbed(build_model(str(encoder), TokenClassificationHead(HIDDEN, len(labels)), "prefix",
                                      PrefixConfig(prefix_len=prefix)))
        paths[name] = tmp_path / name
        save_artifact(model, paths[name], record)
    return paths


def test_srl_rows_share_a_forward_with_ner_and_keep_their_own_logits(tmp_path):
    paths = _artifacts(tmp_path)
    engine = Engine([str(paths["srl"]), str(paths["ner"])])
    pending = [engine.prepare(name, payload) for name, payload in REQUESTS]
    assert [len(p.examples) for p in pending] == [1, 1, 2]  # one SRL row per predicate
    for (name, _), p, logits in zip(REQUESTS, pending, engine.logits(pending)):
        with torch.no_grad():
            alone = load_artifact(paths[name.removeprefix("tiny-")]).model(**dict(p.batch)).logits.numpy()
        np.testing.assert_allclose(logits, alone, atol=1e-5, rtol=0, err_msg=name)


def test_an_srl_answer_has_one_frame_per_predicate_with_the_predicate_as_v(tmp_path):
    paths = _artifacts(tmp_path)
    engine = Engine([str(paths["srl"]), str(paths["ner"])])
    first, ner, second = engine.answer(REQUESTS)
    assert [f["predicate_index"] for f in first["frames"]] == [1] and len(ner["tags"]) == 5
    assert [(f["predicate_index"], f["predicate"]) for f in second["frames"]] == [(1, "said"), (3, "lives")]
    for frame in first["frames"] + second["frames"]:
        assert frame["tags"][frame["predicate_index"]] == "B-V"
        p = frame["predicate_index"]
        assert any(a["role"] == "V" and a["start"] <= p <= a["end"] for a in frame["arguments"])
        follows = list(zip(["O", *frame["tags"]], frame["tags"]))  # bio decoding: no I-X that continues nothing
        assert all(not tag.startswith("I-") or prev[2:] == tag[2:] for prev, tag in follows)


def test_bad_predicate_lists_are_refused_one_request_at_a_time(tmp_path):
    paths = _artifacts(tmp_path)
    engine = Engine([str(paths["srl"])])
    words = ["john", "lives", "in", "paris"]
    bad = [{"tokens": words}, {"tokens": words, "predicates": [4]}, {"tokens": words, "predicates": [1, 1]},
           {"tokens": words, "predicates": [True]}, {"tokens": words, "predicates": "1"}]
    results = engine.answer([("tiny-srl", payload) for payload in bad] + [REQUESTS[0]])
    for result in results[:-1]:
        assert isinstance(result, RequestError) and result.status == 422 and "predicates" in str(result)
    assert [f["predicate_index"] for f in results[-1]["frames"]] == [1]

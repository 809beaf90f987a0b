"""A decoder's artifacts served by ``tasks.serve.engine.Engine``: rows of several tasks in one forward on one tiny
Llama give each task what it gives alone; an artifact of another base (a bidirectional one) is refused."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from test_decoders import HIDDEN, save_tiny_decoder

from heads import SequenceClassificationHead
from models.adapted import build_model
from models.methods import PrefixConfig
from served_tasks import make_artifacts
from tasks.common.artifacts import load_artifact, save_artifact
from tasks.common.errors import DataError
from tasks.serve.engine import Engine


# short inputs: the tiny byte-level tokenizer knows few merges, so words take several tokens each
REQUESTS = [
    ("tiny-ner", {"tokens": ["the", "dog", "runs"]}),
    ("sst2", {"sentence": "the cat sleeps"}),
    ("squad", {"question": "who runs", "context": "a dog runs in the park"}),
    ("cb", {"premise": "a dog", "hypothesis": "the cat"}),
    ("sst2", {"sentence": "no dog"}),
]


def test_a_mixed_batch_of_decoder_tasks_gives_every_task_its_own_logits(tmp_path):
    decoder = save_tiny_decoder(tmp_path / "llama")
    paths = make_artifacts(decoder, tmp_path)
    engine = Engine([str(p) for p in paths.values()], device="cpu")
    pending = [engine.prepare(name, payload) for name, payload in REQUESTS]
    mixed = engine.logits(pending)
    alone_models = {"tiny-ner": "ner", "sst2": "sst2", "squad": "qa", "cb": "cb"}
    for (name, _), p, logits in zip(REQUESTS, pending, mixed):
        with torch.no_grad():
            alone = load_artifact(paths[alone_models[name]]).model(**dict(p.batch)).logits.numpy()
        finite = np.isfinite(alone) & (alone > -1e30)  # the span head masks padding with the dtype's minimum
        assert logits.shape == alone.shape, name
        np.testing.assert_allclose(logits[finite], alone[finite], atol=1e-5, rtol=0, err_msg=name)


def test_an_artifact_of_a_bidirectional_base_is_not_served_on_the_causal_one(tmp_path):
    decoder = save_tiny_decoder(tmp_path / "llama")
    paths = make_artifacts(decoder, tmp_path)
    model = build_model(str(decoder), SequenceClassificationHead(HIDDEN, 2, pooling="last"), "prefix",
                        PrefixConfig(prefix_len=2), attention="bidirectional")
    save_artifact(model, tmp_path / "bidirectional", {"family": "glue", "benchmark": "glue", "name": "rte",
                                                      "labels": ["entailment", "not_entailment"], "max_length": 32})
    with pytest.raises(DataError, match="not on the served encoder"):
        Engine([str(paths["ner"]), str(tmp_path / "bidirectional")], device="cpu")


def test_a_quantised_or_bidirectional_base_is_served_as_it_was_trained(tmp_path):
    """The served base is rebuilt from the first artifact's base record: an int8 (or bidirectional) artifact serves,
    and answers as its own ``load_artifact`` model does."""
    decoder = save_tiny_decoder(tmp_path / "llama")
    record = {"family": "glue", "benchmark": "glue", "name": "sst2", "labels": ["0", "1"], "max_length": 32}
    for name, options in {"int8": {"quantize_base": "int8"}, "bidi": {"attention": "bidirectional"}}.items():
        torch.manual_seed(0)
        model = build_model(str(decoder), SequenceClassificationHead(HIDDEN, 2, pooling="last"), "prefix",
                            PrefixConfig(prefix_len=2), **options)
        save_artifact(model, tmp_path / name, record)
        engine = Engine([str(tmp_path / name)], device="cpu")
        pending = [engine.prepare("sst2", {"sentence": "the cat sleeps"})]
        with torch.no_grad():
            alone = load_artifact(tmp_path / name).model(**dict(pending[0].batch)).logits.numpy()
        np.testing.assert_allclose(engine.logits(pending)[0], alone, atol=1e-5, rtol=0, err_msg=name)

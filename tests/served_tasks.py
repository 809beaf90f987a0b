"""Four tiny tasks' artifacts on one tiny encoder, and a request for each task: what the serving tests (and the
precision test of the served backbone) serve."""
from __future__ import annotations

from pathlib import Path

import torch

from conftest import HIDDEN
from heads import SequenceClassificationHead, SpanHead, TokenClassificationHead
from models.adapted import build_model
from models.methods import PrefixConfig, PromptConfig
from tasks.common.artifacts import save_artifact

NER_LABELS = ["O", "B-LOC", "I-LOC", "B-PER", "I-PER"]


def perturbed(model):
    generator = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.add_(0.5 * torch.randn(p.shape, generator=generator))
    return model


def make_artifacts(encoder: Path, out: Path) -> dict[str, Path]:
    """Four tasks on one encoder: NER (prefix 3), SST-2-style classification (prefix 5, mean pooling, layer mix),
    QA (prefix 2), and a prompt-tuned CB (its own forward)."""
    torch.manual_seed(0)
    specs = {
        "ner": (TokenClassificationHead(HIDDEN, len(NER_LABELS)), "prefix", PrefixConfig(prefix_len=3), "last",
                {"family": "ner", "dataset": "tiny-ner", "labels": NER_LABELS, "max_length": 32}),
        "sst2": (SequenceClassificationHead(HIDDEN, 2, pooling="mean"), "prefix", PrefixConfig(prefix_len=5), "mix",
                 {"family": "glue", "benchmark": "glue", "name": "sst2", "labels": ["0", "1"], "max_length": 32}),
        "qa": (SpanHead(HIDDEN), "prefix", PrefixConfig(prefix_len=2), "last",
               {"family": "qa", "dataset": "squad", "version2": False, "max_length": 48, "doc_stride": 16,
                "max_answer_length": 10, "n_best": 5, "null_threshold": 0.0}),
        "cb": (SequenceClassificationHead(HIDDEN, 3), "prompt", PromptConfig(prompt_len=2), "last",
               {"family": "superglue", "benchmark": "superglue", "name": "cb",
                "labels": ["entailment", "contradiction", "neutral"], "max_length": 32}),
    }
    paths = {}
    for name, (head, method, config, layers, record) in specs.items():
        model = perturbed(build_model(str(encoder), head, method, config, layers=layers))
        paths[name] = out / name
        save_artifact(model, paths[name], record)
    return paths


REQUESTS = [
    ("tiny-ner", {"tokens": ["john", "smith", "lives", "in", "paris"]}),
    ("sst2", {"sentence": "the city is new"}),
    ("squad", {"question": "who lives in paris", "context": "john smith lives in paris and london for acme corp"}),
    ("tiny-ner", {"text": "peter blackburn said"}),
    ("cb", {"premise": "john lives in paris", "hypothesis": "john lives in london"}),
    ("sst2", {"sentence": "british lamb"}),
]

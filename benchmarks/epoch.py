"""Epoch time on CoNLL-2003 train: dynamic padding + length grouping vs padding every sentence to 152 tokens.

152 is the original P-tuning v2 code's NER max_seq_length with pad_to_max_length.  Both
variants tokenize with truncation at 152 (so they see the same tokens) and time the same
step: collate + forward + backward + AdamW step of the prefix method on the bundled encoder.
A full epoch may be long on a small CPU, so a variant can time ``steps`` batches drawn at random
from its real epoch order and extrapolate (mean step time x batches per epoch); ``None`` times
the whole epoch.  Each result says which (``full_epoch``).
"""
from __future__ import annotations

import random
import statistics
import time

import torch
from transformers import DataCollatorForTokenClassification
from transformers.trainer_pt_utils import LengthGroupedSampler

from models.backbone import DEFAULT_MODEL, load_tokenizer

from .timing import build, make_backbone, optimizer_for

ORIGINAL_MAX_LENGTH = 152


def _features(model_name: str, data_dir: str | None, tokenizer):
    from tasks.ner.data import label_list, load_splits
    from tasks.ner.features import encode

    sentences = load_splits("conll2003", data_dir, {})["train"][0]
    labels = label_list(sentences)
    features, _, _ = encode(sentences, tokenizer, {l: i for i, l in enumerate(labels)}, ORIGINAL_MAX_LENGTH)
    return features, len(labels)


def _batches(order: list[int], batch_size: int) -> list[list[int]]:
    return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]


def measure_epoch(steps: dict[str, int | None], batch_size: int = 16, prefix_len: int = 32,
                  model_name: str = DEFAULT_MODEL,
                  data_dir: str | None = None, warmup: int = 3, seed: int = 0) -> dict:
    tokenizer = load_tokenizer(model_name)
    features, num_labels = _features(model_name, data_dir, tokenizer)
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    lengths = [len(f["input_ids"]) for f in features]
    grouped = list(LengthGroupedSampler(batch_size, lengths=lengths, generator=generator))
    shuffled = torch.randperm(len(features), generator=torch.Generator().manual_seed(seed)).tolist()
    variants = {
        "dynamic+grouped": (_batches(grouped, batch_size), DataCollatorForTokenClassification(tokenizer)),
        "pad-152": (_batches(shuffled, batch_size), DataCollatorForTokenClassification(
            tokenizer, padding="max_length", max_length=ORIGINAL_MAX_LENGTH)),
    }
    model = build("prefix", make_backbone("bundled", model_name), prefix_len)
    model.head.classifier = torch.nn.Linear(model.head.classifier.in_features, num_labels)
    model.train()
    optimizer = optimizer_for(model, "prefix")
    picker = random.Random(seed)
    results = {}
    for name, (batches, collator) in variants.items():
        count = steps.get(name)
        full = count is None or count + warmup >= len(batches)  # None: the whole epoch, in sampler order
        sample = list(range(len(batches))) if full else picker.sample(range(len(batches)), count + warmup)
        if full:
            sample = sample[:warmup] + sample  # warm up on the first batches, then time every batch
        times, tokens = [], []
        for k, index in enumerate(sample):
            start = time.perf_counter()
            batch = collator([features[i] for i in batches[index]])
            optimizer.zero_grad(set_to_none=True)
            model(**batch)["loss"].backward()
            optimizer.step()
            if k >= warmup:
                times.append(time.perf_counter() - start)
                tokens.append(batch["input_ids"].numel())
        per_step = statistics.mean(times)  # mean, not median: an epoch is a sum of steps
        results[name] = {"batches_per_epoch": len(batches), "timed_steps": len(times),
                         "mean_step_s": per_step, "median_step_s": statistics.median(times),
                         "mean_padded_tokens_per_batch": statistics.mean(tokens),
                         "epoch_s": per_step * len(batches), "full_epoch": full}
    results["speedup"] = results["pad-152"]["epoch_s"] / results["dynamic+grouped"]["epoch_s"]
    results["setup"] = {"sentences": len(features), "batch_size": batch_size, "method": "prefix",
                        "prefix_len": prefix_len, "truncation": ORIGINAL_MAX_LENGTH, "warmup_steps": warmup}
    return results

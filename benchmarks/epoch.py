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
from tasks.common.settings import DataSettings
from tasks.families import get_family

from .device import synchronize
from .timing import CPU, build, make_backbone, optimizer_for

ORIGINAL_MAX_LENGTH = 152


def conll2003_features(data_dir: str | None, tokenizer) -> tuple[list[dict], int]:
    """CoNLL-2003 train encoded at ``ORIGINAL_MAX_LENGTH`` through the NER family's contract (its load_data,
    record, and the bound task's encode, as a training run does); (features, number of tags)."""
    family = get_family("ner")
    settings = family.Settings(dataset="conll2003")
    data = family.load_data(settings, DataSettings(data_dir=data_dir))
    task = family.bind({"family": "ner", **family.record(settings, data, ORIGINAL_MAX_LENGTH)}, tokenizer)
    return task.encode(data.train, train=True).features, len(task.record["labels"])


def batches_of(order: list[int], batch_size: int) -> list[list[int]]:
    return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]


def timed_sample(batches: list[list[int]], count: int | None, warmup: int,
                 picker: random.Random) -> tuple[list[int], bool]:
    """Which batches to run (the first ``warmup`` untimed) and whether that is the whole epoch."""
    full = count is None or count + warmup >= len(batches)  # None: the whole epoch, in sampler order
    if full:
        order = list(range(len(batches)))
        return order[:warmup] + order, True  # warm up on the first batches, then time every batch
    return picker.sample(range(len(batches)), count + warmup), False


def time_steps(model, optimizer, features: list[dict], batches: list[list[int]], collator, sample: list[int],
               warmup: int, device: torch.device) -> tuple[list[float], list[int]]:
    """Seconds and padded tokens of each timed step (collate + forward + backward + AdamW step)."""
    times, tokens = [], []
    for k, index in enumerate(sample):
        synchronize(device)
        start = time.perf_counter()
        batch = {name: t.to(device) for name, t in collator([features[i] for i in batches[index]]).items()}
        optimizer.zero_grad(set_to_none=True)
        model(**batch)["loss"].backward()
        optimizer.step()
        synchronize(device)
        if k >= warmup:
            times.append(time.perf_counter() - start)
            tokens.append(batch["input_ids"].numel())
    return times, tokens


def measure_epoch(steps: dict[str, int | None], batch_size: int = 16, prefix_len: int = 32,
                  model_name: str = DEFAULT_MODEL, data_dir: str | None = None, warmup: int = 3, seed: int = 0,
                  device: torch.device = CPU) -> dict:
    """Each variant's epoch time (timed or extrapolated from a random sample of its batches) and the speed-up."""
    tokenizer = load_tokenizer(model_name)
    features, num_labels = conll2003_features(data_dir, tokenizer)
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    lengths = [len(f["input_ids"]) for f in features]
    grouped = list(LengthGroupedSampler(batch_size, lengths=lengths, generator=generator))
    shuffled = torch.randperm(len(features), generator=torch.Generator().manual_seed(seed)).tolist()
    variants = {
        "dynamic+grouped": (batches_of(grouped, batch_size), DataCollatorForTokenClassification(tokenizer)),
        "pad-152": (batches_of(shuffled, batch_size), DataCollatorForTokenClassification(
            tokenizer, padding="max_length", max_length=ORIGINAL_MAX_LENGTH)),
    }
    model = build("prefix", make_backbone("bundled", model_name), prefix_len)
    model.head.classifier = torch.nn.Linear(model.head.classifier.in_features, num_labels)
    model.to(device).train()
    optimizer = optimizer_for(model, "prefix")
    picker = random.Random(seed)
    results = {}
    for name, (batches, collator) in variants.items():
        sample, full = timed_sample(batches, steps.get(name), warmup, picker)
        times, tokens = time_steps(model, optimizer, features, batches, collator, sample, warmup, device)
        per_step = statistics.mean(times)  # mean, not median: an epoch is a sum of steps
        results[name] = {"batches_per_epoch": len(batches), "timed_steps": len(times),
                         "mean_step_s": per_step, "median_step_s": statistics.median(times),
                         "mean_padded_tokens_per_batch": statistics.mean(tokens),
                         "epoch_s": per_step * len(batches), "full_epoch": full}
    results["speedup"] = results["pad-152"]["epoch_s"] / results["dynamic+grouped"]["epoch_s"]
    results["setup"] = {"sentences": len(features), "batch_size": batch_size, "method": "prefix",
                        "prefix_len": prefix_len, "truncation": ORIGINAL_MAX_LENGTH, "warmup_steps": warmup}
    return results

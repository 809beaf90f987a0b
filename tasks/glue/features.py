"""Examples -> model inputs in the input shape of each kind, and the batch collator.

Input formats (no verbalizer anywhere; every head is randomly initialised):
* classification / regression: ``[CLS] a [SEP] (b [SEP])``;
* COPA: ``[CLS] premise-without-final-period because|so [SEP] alternative [SEP]`` per
  alternative, shape (C, n) per example; the multiple-choice head scores each and the
  softmax runs over the alternatives;
* WiC: ``[CLS] sentence1 [SEP] sentence2 [SEP]`` with ``span1_mask``/``span2_mask`` marking the
  sub-tokens of the target word in each sentence (from its character offsets);
  WSC: ``[CLS] text [SEP]`` with the masks on the candidate noun phrase and the pronoun;
  the span-pair head pools both spans plus [CLS].  The text itself is not altered;
* options (MultiRC, ReCoRD): ``[CLS] passage [SEP] second segment [SEP]`` per option, the second
  segment given by the task's ``option_text`` (MultiRC: question + answer; ReCoRD: the query with
  @placeholder filled by the candidate); a binary CLS head scores each option, and predictions
  are regrouped per example by the task's ``choose``.
Inputs longer than ``max_length`` are truncated longest-first (the passage, in practice).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from transformers import PreTrainedTokenizerBase

from tasks.common.errors import UsageError

from .spec import Example, TaskSpec


@dataclass
class Inputs:
    features: list[dict]
    owners: list[int]  # feature -> index of its example (options kinds have several features per example)
    at_max_length: int = 0  # inputs that reached --max-length (truncated, or exactly that long)
    spans_cut: int = 0  # WiC/WSC spans lost to truncation (pooled as zeros)
    notes: list[str] = field(default_factory=list)

    def report(self, max_length: int) -> str:
        text = (f"{len(self.owners)} inputs from {len(set(self.owners))} examples; "
                f"{self.at_max_length} at --max-length {max_length} (truncated)")
        if self.spans_cut:
            text += f"; {self.spans_cut} marked spans cut off by truncation"
        return "; ".join([text, *self.notes])


def pairs(spec: TaskSpec, examples: list[Example], tokenizer, kw: dict, max_length: int) -> Inputs:
    """classification / regression: one sequence or pair per example."""
    b = [e.text_b for e in examples] if examples[0].text_b is not None else None
    features = _rows(tokenizer([e.text_a for e in examples], b, **kw), len(examples))
    for feature, example in zip(features, examples):
        if example.label is not None:
            feature["labels"] = example.label
    return _finish(Inputs(features, list(range(len(examples)))), max_length)


def choices(spec: TaskSpec, examples: list[Example], tokenizer, kw: dict, max_length: int) -> Inputs:
    """choice: one (text_a, choice) pair per choice, shape (C, n) per example."""
    features = []
    for example in examples:
        batch = tokenizer([example.text_a] * len(example.choices), example.choices, **kw)
        feature = {key: list(batch[key]) for key in batch.keys()}
        if example.label is not None:
            feature["labels"] = example.label
        features.append(feature)
    return _finish(Inputs(features, list(range(len(examples)))), max_length)


def _rows(batch, count: int) -> list[dict]:
    return [{key: batch[key][i] for key in batch.keys() if key != "offset_mapping"} for i in range(count)]


def _finish(encoded: Inputs, max_length: int) -> Inputs:
    for feature in encoded.features:
        ids = feature["input_ids"]
        rows = ids if ids and isinstance(ids[0], list) else [ids]
        encoded.at_max_length += sum(len(row) >= max_length for row in rows)
    return encoded


def span_pairs(spec: TaskSpec, examples: list[Example], tokenizer, kw: dict, max_length: int) -> Inputs:
    """span-pair: a sequence (pair) plus 0/1 masks on the sub-tokens of two marked character spans."""
    if not tokenizer.is_fast:
        raise UsageError("WiC/WSC need a fast tokenizer (character offsets of the marked spans); this encoder has none")
    b = [e.text_b for e in examples] if examples[0].text_b is not None else None
    batch = tokenizer([e.text_a for e in examples], b, return_offsets_mapping=True, **kw)
    features = _rows(batch, len(examples))
    encoded = Inputs(features, list(range(len(examples))))
    for i, (feature, example) in enumerate(zip(features, examples)):
        segments, offsets = batch.sequence_ids(i), batch["offset_mapping"][i]
        for k, (segment, start, end) in enumerate(example.spans, start=1):
            mask = [int(s == segment and o_end > o_start and o_start < end and o_end > start)
                    for s, (o_start, o_end) in zip(segments, offsets)]
            encoded.spans_cut += not any(mask)
            feature[f"span{k}_mask"] = mask
        if example.label is not None:
            feature["labels"] = example.label
    realigned = sum(e.realigned for e in examples)
    if realigned:
        encoded.notes.append(f"{realigned} examples with a span index off by 1-2 words in the data (realigned)")
    return _finish(encoded, max_length)


def options(spec: TaskSpec, examples: list[Example], tokenizer, kw: dict, max_length: int) -> Inputs:
    """options: one (text_a, option text) pair per option, each its own input (regrouped by ``owners``)."""
    firsts, seconds, owners, labels = [], [], [], []
    for index, example in enumerate(examples):
        for j, option in enumerate(example.choices):
            firsts.append(example.text_a)
            seconds.append(spec.option_text(example, option) if spec.option_text else f"{example.text_b} {option}")
            owners.append(index)
            labels.append(spec.option_label(example, j, option) if spec.option_label else None)
    features = _rows(tokenizer(firsts, seconds, **kw), len(firsts))
    for feature, label in zip(features, labels):
        if label is not None:
            feature["labels"] = label
    return _finish(Inputs(features, owners), max_length)


class Collator:
    """Pads (B, n) or (B, C, n) inputs and the span masks to the longest sequence in the batch (right side)."""

    PAD_KEYS = ("input_ids", "attention_mask", "token_type_ids", "span1_mask", "span2_mask")

    def __init__(self, tokenizer: PreTrainedTokenizerBase, regression: bool = False) -> None:
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        self.regression = regression

    def __call__(self, features: list[dict]) -> dict[str, torch.Tensor]:
        nested = isinstance(features[0]["input_ids"][0], list)
        rows = [r for f in features for r in (f["input_ids"] if nested else [f["input_ids"]])]
        width = max(len(r) for r in rows)
        batch = {}
        for key in self.PAD_KEYS:
            if key not in features[0]:
                continue
            fill = self.pad_id if key == "input_ids" else 0
            pad = lambda r: list(r) + [fill] * (width - len(r))  # noqa: E731
            batch[key] = torch.tensor([[pad(r) for r in f[key]] if nested else pad(f[key]) for f in features])
        if "labels" in features[0]:
            dtype = torch.float32 if self.regression else torch.long
            batch["labels"] = torch.tensor([f["labels"] for f in features], dtype=dtype)
        return batch

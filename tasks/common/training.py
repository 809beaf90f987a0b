"""Training and inference on the transformers Trainer (checkpoints, resume, DDP, mixed precision come from it)."""
from __future__ import annotations

import dataclasses
import itertools
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from transformers import TrainingArguments

from models.adapted import AdaptedModel
from models.precision import no_attention_plans_per_shape

from .allocator import HeapTrimmer
from .errors import UsageError
from .settings import TrainSettings
from .trainer import CHECKPOINT_WEIGHTS, COMPLETE, AdapterTrainer, TrainingDiverged, last_complete_checkpoint

CHECKPOINTS = "checkpoints"
__all__ = ["CHECKPOINTS", "CHECKPOINT_WEIGHTS", "COMPLETE", "AdapterTrainer", "TrainingDiverged", "bf16_mode",
           "Predictor", "TOKEN_BUDGET", "predict", "train", "training_arguments"]


def bf16_mode(settings: TrainSettings, model: AdaptedModel) -> str | None:
    """How ``--bf16`` runs for ``model``: ``cast`` (a frozen encoder's weights cast to bf16 once, by the model; the
    Trainer does not autocast), ``autocast`` (the method trains encoder tensors: the Trainer's bf16 autocast, fp32
    master weights), or None without --bf16.  See ``models/precision.py`` for why."""
    if not settings.bf16:
        return None
    return "cast" if model.encoder_frozen() else "autocast"


def eval_strategy(settings: TrainSettings) -> dict:
    """TrainingArguments for dev evaluation during training (and keeping the best checkpoint)."""
    every = settings.eval_every
    if every is None:
        return {}
    if every == "epoch":
        return {"eval_strategy": "epoch", "save_strategy": "epoch"}
    # the best checkpoint must be one that was evaluated: save at every evaluation
    return {"eval_strategy": "steps", "eval_steps": int(every), "save_strategy": "steps", "save_steps": int(every)}


def training_arguments(settings: TrainSettings, learning_rate: float, output_dir: Path,
                       selection_metric: str | None = None, autocast: bool = True) -> TrainingArguments:
    """``autocast``: False when the model casts its frozen encoder to bf16 itself (``bf16_mode`` ``cast``), so the
    Trainer must not autocast on top of it."""
    save = ({"save_strategy": "steps", "save_steps": settings.save_steps} if settings.save_steps
            else {"save_strategy": "epoch"})
    evaluation = eval_strategy(settings)
    if settings.select_best:
        evaluation.update(load_best_model_at_end=True, metric_for_best_model=f"eval_{selection_metric}",
                          greater_is_better=True)  # every headline metric is better when higher
    schedule = {"linear": "linear", "exponential": "constant",  # exponential: AdapterTrainer.create_scheduler
                "constant": "constant_with_warmup" if settings.warmup else "constant"}[settings.schedule]
    return TrainingArguments(
        output_dir=str(output_dir / CHECKPOINTS),
        learning_rate=learning_rate,
        lr_scheduler_type=schedule,
        num_train_epochs=settings.epochs,
        max_steps=settings.max_steps or -1,
        per_device_train_batch_size=settings.batch_size,
        per_device_eval_batch_size=settings.eval_batch_size,
        gradient_accumulation_steps=settings.grad_accum,
        weight_decay=settings.weight_decay,
        warmup_steps=settings.warmup,
        seed=settings.seed,
        bf16=settings.bf16 and autocast,
        fp16=settings.fp16,
        logging_steps=settings.logging_steps,
        save_total_limit=2,  # with load_best_model_at_end the Trainer also keeps the best one
        report_to=settings.report_to,
        remove_unused_columns=False,  # datasets hold exactly the model inputs; heads may take extra ones
        label_names=["labels"],
        # similar lengths per batch: less padding.  transformers applies this strategy to
        # evaluation too (reordering predictions), so predict() uses its own arguments.
        train_sampling_strategy="group_by_length",
        ddp_find_unused_parameters=False,
        dataloader_num_workers=0,
        use_cpu=not torch.cuda.is_available(),  # else torchrun on CPU runs N unsynchronised copies
        **{**save, **evaluation},
    )


def train(model: AdaptedModel, settings: TrainSettings, learning_rate: float, output_dir: Path, train_dataset,
          collator, evaluator: Callable[[AdaptedModel], dict] | None = None,
          selection_metric: str | None = None, batch_sampler=None) -> AdapterTrainer:
    """Train (resuming from the last complete checkpoint when ``settings.resume``) and return the trainer.

    With ``settings.eval_every``, ``evaluator`` scores the dev split during training; with
    ``settings.select_best`` the checkpoint with the best ``selection_metric`` is loaded at the end.
    """
    if (settings.eval_every or settings.select_best) and evaluator is None:
        raise UsageError("--eval-every/--select-best need a dev split to evaluate on")
    cast = bf16_mode(settings, model) == "cast"
    arguments = training_arguments(settings, learning_rate, output_dir, selection_metric, autocast=not cast)
    if batch_sampler is not None:  # multi-task: each step leaves the other members' heads without gradients
        arguments.ddp_find_unused_parameters = True
    trainer = AdapterTrainer(model=model, args=arguments, train_dataset=train_dataset, data_collator=collator,
                             eval_dataset=train_dataset[:1] if evaluator is not None else None,  # unused: evaluator
                             evaluator=evaluator, head_lr=settings.head_lr, schedule=settings.schedule,
                             lr_decay=settings.lr_decay, batch_sampler=batch_sampler)
    checkpoint = None
    if settings.resume:
        folder = output_dir / CHECKPOINTS
        checkpoint, incomplete = last_complete_checkpoint(folder)
        for path in incomplete:
            print(f"--resume: skipping {path}: incomplete (no {COMPLETE} marker; the run was stopped while writing it)")
        print(f"resuming from {checkpoint}" if checkpoint else f"--resume: no checkpoint in {folder} to resume "
                                                              "from, starting fresh")
    if settings.bf16 or settings.fp16:  # the Trainer's autocast too: no cuDNN attention plan per batch shape
        no_attention_plans_per_shape()
    if settings.bf16:
        print("--bf16: " + ("the frozen encoder's weights cast to bf16 once; what trains stays fp32" if cast else
                            "bf16 autocast (the method trains encoder tensors: fp32 master weights)"))
    if cast:  # after the Trainer has put the model on its device: the kept fp32 weights stay on the CPU
        model.set_precision("bf16")
    try:
        trainer.train(resume_from_checkpoint=None if checkpoint is None else str(checkpoint))
    finally:
        if cast:  # the fp32 encoder back, exactly: evaluation and the artifact use it
            model.set_precision("fp32")
    return trainer


# Padded tokens per predict batch on the CPU.  A batch's working set (attention scores above all) is what predict's
# peak memory adds to the model's, and grew about in proportion to the budget when QA at 16x its input was tried at
# 1,024 to 8,192 tokens, at the same speed on one thread; on two threads 4,096 was no faster for QA either, and
# NER's short rows are mostly held by the row cap before the budget (issue 43's notes).
# On a GPU only the row cap applies: its memory is not the process's, and it needs wide batches to be fast.
TOKEN_BUDGET = 2048


class Predictor:
    """Logits of one chunk of features after another (``pipeline.answer_chunks``), computed where the model is (the
    CPU, or the GPU: ``predict --device`` puts it there, and training leaves it on the Trainer's device).

    Not the Trainer's ``predict``: it gathers a call's logits by concatenating every batch's into a growing array
    padded to the longest row, which over a whole input took ~16x the logits' own size (issue 43).

    Rows are batched by length: each is padded to a length of its own (``padded_to``: at most 1/8 more tokens), and
    rows of one padded length share batches of at most ``batch_size`` rows and, on the CPU, ``token_budget`` padded
    tokens (``TOKEN_BUDGET`` says why).  A row's logits then depend on the row alone, never on which rows share its
    batch or chunk: padding changes the attention's float sums in the last bits (the same question's SQuAD 2.0 null
    odds differed with the file around it when rows were padded to their batch's longest), so predictions are the
    same whatever the chunks.  Batching only rows of one exact length kept that too, but QA's varied window lengths
    made batches of one or two rows and halved its rows/s.
    """

    def __init__(self, model: AdaptedModel, collator, batch_size: int, work_dir: Path | None = None,
                 pad_id: int | None = 0, token_budget: int | None = TOKEN_BUDGET) -> None:
        self.model, self.collator, self.batch_size, self.token_budget = model, collator, batch_size, token_budget
        self.trim = HeapTrimmer()  # one for every chunk: the heap's growth is across them
        self.tokens = Tokens()  # of the last call: what predict reports, and benchmarks/predict_scaling.py reads
        self.pad_id = pad_id or 0  # a tokenizer without a pad token: any id does, the attention mask hides it
        limit = getattr(model, "max_input_length", None)  # an ONNX graph has none: its input was checked on export
        self.limit = limit() if callable(limit) else None

    def __call__(self, dataset: list[dict]) -> np.ndarray:
        """Logits for every example of ``dataset``, in its order; token-level rows are padded with -100 to the
        longest example."""
        if not dataset:  # nothing to run (a predict input with no predicate found): no rows, any decoder's rank
            self.tokens = Tokens()  # not the last chunk's again
            return np.zeros((0, 1, 1), dtype=np.float32)
        device, training = _device(self.model), self.model.training
        lengths = [padded_length(f) for f in dataset]
        cpu = device.type == "cpu"
        widths = [padded_to(n, self.limit, CPU_STEP if cpu else GPU_STEP) for n in lengths]
        budget = self.token_budget if cpu and self.token_budget else None
        self.model.eval()
        out = Gathered(len(dataset), max(lengths))
        costs = [w * choices(f) for w, f in zip(widths, dataset)]  # padded tokens: the budget's unit
        self.tokens = Tokens(sum(n * choices(f) for n, f in zip(lengths, dataset)), sum(costs))
        try:
            with torch.no_grad():
                for rows in batches(widths, costs, self.batch_size, budget):
                    width = widths[rows[0]]
                    batch = padded_batch(self.collator([{k: v for k, v in dataset[i].items() if k != "labels"}
                                                        for i in rows]), width, self.pad_id)
                    logits = self.model(**{k: v.to(device) for k, v in batch.items()}).logits.float().cpu().numpy()
                    out.add(rows, own_positions(logits, [lengths[i] for i in rows], width))
                    del batch, logits
                    self.trim()  # the freed activations, once they add up (allocator.py)
        finally:
            self.model.train(training)
        return out.logits


@dataclasses.dataclass(frozen=True)
class Tokens:
    """Tokens of a predict call: the rows' own (each padded to its longest choice by the collator, as any batch
    would) and what the forward ran (each row at its ``padded_to`` width); their difference is the padding that
    batching rows by width costs."""
    own: int = 0
    run: int = 0

    def __add__(self, other: "Tokens") -> "Tokens":
        return Tokens(self.own + other.own, self.run + other.run)


def _device(model: torch.nn.Module) -> torch.device:
    """Where ``model`` runs: its parameters' device; the CPU for a model without parameters of its own (an ONNX
    graph run by onnxruntime: ``tasks/export/onnx_graph.py``)."""
    parameter = next(model.parameters(), None)
    return torch.device("cpu") if parameter is None else parameter.device


def padded_length(feature: dict) -> int:
    """The length a batch pads ``feature`` to when it is the longest: its tokens (the longest of its choices)."""
    ids = feature["input_ids"]
    return max(map(len, ids)) if ids and isinstance(ids[0], list) else len(ids)


def choices(feature: dict) -> int:
    """Sequences in ``feature``: its choices (a multiple-choice row), else 1."""
    ids = feature["input_ids"]
    return len(ids) if ids and isinstance(ids[0], list) else 1


# The smallest step of ``padded_to``, by device.  On the CPU every padded token costs its share of the forward, and
# short sentences (NER) padded to multiples of 8 ran on about twice the padding of multiples of 4 (counted for issue
# 43; on two threads the extra, smaller batches took back what the tokens saved).  Not below 4: on AVX2 a product of
# few rows that are not a multiple of 4 takes another kernel, and a short row's logits then changed with its batch.
# A GPU's matrix units want multiples of 8.
CPU_STEP, GPU_STEP = 4, 8


def padded_to(length: int, limit: int | None = None, floor: int = GPU_STEP) -> int:
    """The length a row of ``length`` tokens runs at: the next multiple of ``floor``, or of an eighth of the power of
    two below ``length`` (16 from 128 tokens, 32 from 256), so at most 1/8 of a batch is padding; never past
    ``limit`` (the encoder's positions, when known) nor below ``length``."""
    step = max(floor, 1 << max(length.bit_length() - 4, 0))
    ceiling = -(-length // step) * step
    return ceiling if limit is None else max(length, min(ceiling, limit))


def batches(widths: list[int], costs: list[int], size: int, budget: int | None = None) -> list[list[int]]:
    """Indices of rows in batches of one padded width, at most ``size`` rows and ``budget`` summed ``costs``
    (padded tokens; None: no limit) each, but at least one row; narrowest first, in input order within."""
    order = sorted(range(len(widths)), key=widths.__getitem__)
    out: list[list[int]] = []
    for _, group in itertools.groupby(order, key=widths.__getitem__):
        batch, spent = [], 0
        for row in group:
            if batch and (len(batch) == size or (budget is not None and spent + costs[row] > budget)):
                out.append(batch)
                batch, spent = [], 0
            batch.append(row)
            spent += costs[row]
        out.append(batch)
    return out


def padded_batch(batch: dict[str, torch.Tensor], width: int, pad_id: int) -> dict[str, torch.Tensor]:
    """``batch`` (the collator padded it to its longest row) padded on the right to ``width`` tokens: the input ids
    with ``pad_id``, the attention mask and every other per-token input (segment ids, span masks) with 0."""
    ids = batch["input_ids"]
    extra = width - ids.shape[-1]
    if extra <= 0:
        return batch
    per_token = lambda v: v.shape[:-1] == ids.shape[:-1] and v.shape[-1] == ids.shape[-1]  # noqa: E731
    return {k: torch.nn.functional.pad(v, (0, extra), value=pad_id if k == "input_ids" else 0) if per_token(v)
            else v for k, v in batch.items()}


def own_positions(logits: np.ndarray, lengths: list[int], width: int) -> np.ndarray:
    """Token-level ``logits`` (rows, ``width``, ...) with each row's positions past its own length set to -100, as
    if the row had run unpadded (``Gathered`` fills there with -100 too); other logits as they are."""
    if logits.ndim < 3 or logits.shape[1] != width:
        return logits
    for row, length in enumerate(lengths):
        logits[row, length:] = -100
    return logits


class Gathered:
    """Every batch's logits in one array, rows back at their indices; token-level rows are padded with -100 to the
    longest row (``width`` tokens, as the Trainer's gathering pads), so that decoders read each row's own positions
    only.

    The array is made once, at the first batch, and each batch's logits are copied in: nothing a batch leaves behind
    lands between the blocks the next batch frees and reuses (a kept array per batch did, and the heap grew around
    them by a batch's working set again and again: see ``allocator.HeapTrimmer``)."""

    def __init__(self, count: int, width: int) -> None:
        self.count, self.width = count, width
        self._logits: np.ndarray | None = None

    @property
    def logits(self) -> np.ndarray:
        assert self._logits is not None, "no batch added"
        return self._logits

    def add(self, rows: list[int], logits: np.ndarray) -> None:
        if self._logits is None:
            self._logits = self._made_for(logits)
        if logits.ndim == 1:
            self._logits[rows] = logits
        else:  # token-level: the positions up to the longest row (past a row's own length: -100 already)
            width = min(logits.shape[1], self._logits.shape[1])
            self._logits[rows, :width] = logits[:, :width]

    def _made_for(self, first: np.ndarray) -> np.ndarray:
        if first.ndim == 1:  # one value per row (a regression head)
            return np.empty(self.count, dtype=first.dtype)
        width = self.width if first.ndim >= 3 else first.shape[1]  # token-level: the longest row's positions
        return np.full((self.count, width, *first.shape[2:]), -100, dtype=first.dtype)


def predict(model: AdaptedModel, dataset: list[dict], collator, batch_size: int, work_dir: Path) -> np.ndarray:
    """Logits for every example of ``dataset`` at once (one ``Predictor`` call)."""
    return Predictor(model, collator, batch_size, work_dir)(dataset)

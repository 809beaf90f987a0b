"""Training and inference on the transformers Trainer (checkpoints, resume, DDP, mixed precision come from it)."""
from __future__ import annotations

import itertools
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from transformers import TrainingArguments

from models.adapted import AdaptedModel
from models.precision import no_attention_plans_per_shape

from .errors import UsageError
from .settings import TrainSettings
from .trainer import CHECKPOINT_WEIGHTS, COMPLETE, AdapterTrainer, TrainingDiverged, last_complete_checkpoint

CHECKPOINTS = "checkpoints"
__all__ = ["CHECKPOINTS", "CHECKPOINT_WEIGHTS", "COMPLETE", "AdapterTrainer", "TrainingDiverged", "bf16_mode",
           "Predictor", "predict", "train", "training_arguments"]


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


class Predictor:
    """Logits of one chunk of features after another (``pipeline.answer_chunks``), computed where the model is (the
    CPU, or the GPU: ``predict --device`` puts it there, and training leaves it on the Trainer's device).

    Not the Trainer's ``predict``: it gathers a call's logits by concatenating every batch's into a growing array
    padded to the longest row, which over a whole input took ~16x the logits' own size (issue 43).  And each batch
    here holds rows of one padded length only, so no row is padded: a row's logits then do not depend on which other
    rows share its batch (padding changes the attention's float sums in the last bits: the same question's SQuAD 2.0
    null odds differed with the file around it), and predictions are the same whatever the chunks.
    """

    def __init__(self, model: AdaptedModel, collator, batch_size: int, work_dir: Path | None = None) -> None:
        self.model, self.collator, self.batch_size = model, collator, batch_size

    def __call__(self, dataset: list[dict]) -> np.ndarray:
        """Logits for every example of ``dataset``, in its order; token-level rows are padded with -100 to the
        longest example."""
        if not dataset:  # nothing to run (a predict input with no predicate found): no rows, any decoder's rank
            return np.zeros((0, 1, 1), dtype=np.float32)
        device, training = _device(self.model), self.model.training
        self.model.eval()
        parts: list[tuple[list[int], np.ndarray]] = []
        try:
            with torch.no_grad():
                for rows in batches([padded_length(f) for f in dataset], self.batch_size):
                    batch = self.collator([{k: v for k, v in dataset[i].items() if k != "labels"} for i in rows])
                    logits = self.model(**{k: v.to(device) for k, v in batch.items()}).logits
                    parts.append((rows, logits.float().cpu().numpy()))
        finally:
            self.model.train(training)
        return _assembled(parts, len(dataset))


def _device(model: torch.nn.Module) -> torch.device:
    """Where ``model`` runs: its parameters' device; the CPU for a model without parameters of its own (an ONNX
    graph run by onnxruntime: ``tasks/export/onnx_graph.py``)."""
    parameter = next(model.parameters(), None)
    return torch.device("cpu") if parameter is None else parameter.device


def padded_length(feature: dict) -> int:
    """The length a batch pads ``feature`` to when it is the longest: its tokens (the longest of its choices)."""
    ids = feature["input_ids"]
    return max(map(len, ids)) if ids and isinstance(ids[0], list) else len(ids)


def batches(lengths: list[int], size: int) -> list[list[int]]:
    """Indices of rows in batches of at most ``size`` rows of one length, shortest first, in input order within."""
    order = sorted(range(len(lengths)), key=lengths.__getitem__)
    out: list[list[int]] = []
    for _, group in itertools.groupby(order, key=lengths.__getitem__):
        rows = list(group)
        out += [rows[k: k + size] for k in range(0, len(rows), size)]
    return out


def _assembled(parts: list[tuple[list[int], np.ndarray]], count: int) -> np.ndarray:
    """Every batch's logits in one array, rows back at their indices; a longer dimension 1 is padded with -100 (as
    the Trainer's gathering pads), so that decoders read each row's own positions only."""
    first = parts[0][1]
    if first.ndim == 1:  # one value per row (a regression head)
        out = np.empty(count, dtype=first.dtype)
        for rows, logits in parts:
            out[rows] = logits
        return out
    out = np.full((count, max(p.shape[1] for _, p in parts), *first.shape[2:]), -100, dtype=first.dtype)
    for rows, logits in parts:
        out[rows, : logits.shape[1]] = logits
    return out


def predict(model: AdaptedModel, dataset: list[dict], collator, batch_size: int, work_dir: Path) -> np.ndarray:
    """Logits for every example of ``dataset`` at once (one ``Predictor`` call)."""
    return Predictor(model, collator, batch_size, work_dir)(dataset)

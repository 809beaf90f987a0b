"""Training and inference on the transformers Trainer (checkpoints, resume, DDP, mixed precision come from it)."""
from __future__ import annotations

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
           "predict", "train", "training_arguments"]


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
        report_to="none",
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


def predict(model: AdaptedModel, dataset: list[dict], collator, batch_size: int, work_dir: Path) -> np.ndarray:
    """Logits for every example of ``dataset``, in its order, computed where the model is (the CPU, or the GPU:
    ``predict --device`` puts it there, and training leaves it on the Trainer's device).

    Examples are run shortest-first (little padding per batch) and put back in order;
    rows are padded with -100 to the longest example.
    """
    if not dataset:  # nothing to run (a predict input with no predicate found): no rows, any decoder's rank
        return np.zeros((0, 1, 1), dtype=np.float32)
    order = sorted(range(len(dataset)), key=lambda i: len(dataset[i]["input_ids"]))
    arguments = TrainingArguments(
        output_dir=str(work_dir), per_device_eval_batch_size=batch_size, report_to="none",
        remove_unused_columns=False, label_names=["labels"], train_sampling_strategy="sequential",
        dataloader_num_workers=0, use_cpu=next(model.parameters()).device.type == "cpu",
    )
    trainer = AdapterTrainer(model=model, args=arguments, data_collator=collator)
    logits = trainer.predict([dataset[i] for i in order]).predictions
    restored = np.empty_like(logits)
    restored[np.asarray(order)] = logits
    return restored

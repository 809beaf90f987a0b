"""Training and inference on the transformers Trainer (checkpoints, resume, DDP, mixed precision come from it)."""
from __future__ import annotations

import math
import os
import re
from pathlib import Path

import numpy as np
from safetensors.torch import load_file, save_file
import torch
from transformers import Trainer, TrainingArguments
from transformers.trainer_pt_utils import LengthGroupedSampler
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

from models.adapted import AdaptedModel

from .artifacts import load_trainable
from .errors import UsageError
from .settings import TrainSettings

CHECKPOINTS = "checkpoints"
CHECKPOINT_WEIGHTS = "model.safetensors"
COMPLETE = "checkpoint-complete"  # marker file, written after everything else in a checkpoint
DIVERGED_FACTOR = 100.0  # a loss this many times the first step's means the run diverged


class EpochSeededLengthGroupedSampler(LengthGroupedSampler):
    """Length-grouped order that depends only on (seed, epoch).

    The stock sampler draws from the global RNG, so a run resumed mid-epoch would
    replay a different order and see some examples twice and others never.
    """

    def __init__(self, batch_size: int, lengths: list[int], seed: int) -> None:
        super().__init__(batch_size, lengths=lengths, generator=torch.Generator())
        self.seed = seed
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:  # the Trainer calls this at the start of every epoch
        self.generator.manual_seed(self.seed + epoch)


class TrainingDiverged(UsageError):
    """The loss became non-finite or exploded: the settings (usually the learning rate) do not train."""


class AdapterTrainer(Trainer):
    """Trainer whose checkpoints hold only the trainable tensors (never a copy of the frozen encoder),
    mark themselves complete, and which stops a diverging run."""

    _first_loss: float | None = None

    def _get_train_sampler(self, train_dataset=None):
        dataset = train_dataset if train_dataset is not None else self.train_dataset
        if self.args.train_sampling_strategy != "group_by_length" or not isinstance(dataset, list):
            return super()._get_train_sampler(train_dataset)
        lengths = [len(example["input_ids"]) for example in dataset]
        batch = self.args.train_batch_size * self.args.gradient_accumulation_steps
        return EpochSeededLengthGroupedSampler(batch, lengths, self.args.seed)

    def _save(self, output_dir: str | None = None, state_dict=None) -> None:
        output_dir = output_dir or self.args.output_dir
        if not self.args.should_save:
            return
        os.makedirs(output_dir, exist_ok=True)
        model: AdaptedModel = self.accelerator.unwrap_model(self.model)
        if state_dict is None:
            state_dict = model.trainable_state_dict()
        else:  # FSDP/DeepSpeed gather the full tensors into the state_dict they hand over: save those
            trainable = set(model.trainable_state_dict())
            state_dict = {k: v for k, v in state_dict.items() if k in trainable}
        tensors = {k: v.detach().contiguous().cpu() for k, v in state_dict.items()}
        save_file(tensors, os.path.join(output_dir, CHECKPOINT_WEIGHTS), metadata={"format": "pt"})

    def _save_checkpoint(self, model, trial) -> None:
        super()._save_checkpoint(model, trial)
        if self.args.should_save:  # written last: a checkpoint without it was cut short (killed mid-write)
            folder = Path(self._get_output_dir(trial=trial)) / f"{PREFIX_CHECKPOINT_DIR}-{self.state.global_step}"
            (folder / COMPLETE).write_text(f"step {self.state.global_step}\n")

    def training_step(self, model, inputs, num_items_in_batch=None):
        loss = super().training_step(model, inputs, num_items_in_batch)
        self._check_divergence(loss)
        return loss

    def _check_divergence(self, loss: torch.Tensor) -> None:
        """Stop at the first non-finite loss, or one DIVERGED_FACTOR times the first step's: the run diverged.

        Raised before the optimizer applies this step, so the last checkpoint on disk is from before it.
        """
        value = loss.detach().float() * self.current_gradient_accumulation_steps
        if self.args.world_size > 1:  # every process must stop together, so they decide on the same number
            value = self.accelerator.reduce(value, reduction="mean")
        value = float(value)
        if self._first_loss is None and math.isfinite(value):
            self._first_loss = max(value, 1e-3)
        if math.isfinite(value) and value <= DIVERGED_FACTOR * (self._first_loss or value):
            return
        step = self.state.global_step + 1
        saved, _ = last_complete_checkpoint(Path(self.args.output_dir))
        raise TrainingDiverged(
            f"training diverged at step {step}: loss {value:.4g} (first step: {self._first_loss or float('nan'):.4g}); "
            f"lower the learning rate (--lr, now {self.args.learning_rate:g})"
            + (f"; the last good checkpoint is {saved}" if saved else "; no checkpoint was written before it"))

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model=None) -> None:
        model = model or self.model
        load_trainable(self.accelerator.unwrap_model(model),
                       load_file(os.path.join(resume_from_checkpoint, CHECKPOINT_WEIGHTS)))


def training_arguments(settings: TrainSettings, learning_rate: float, output_dir: Path) -> TrainingArguments:
    save = ({"save_strategy": "steps", "save_steps": settings.save_steps} if settings.save_steps
            else {"save_strategy": "epoch"})
    return TrainingArguments(
        output_dir=str(output_dir / CHECKPOINTS),
        learning_rate=learning_rate,
        num_train_epochs=settings.epochs,
        per_device_train_batch_size=settings.batch_size,
        per_device_eval_batch_size=settings.eval_batch_size,
        gradient_accumulation_steps=settings.grad_accum,
        weight_decay=settings.weight_decay,
        warmup_steps=settings.warmup,
        seed=settings.seed,
        bf16=settings.bf16,
        fp16=settings.fp16,
        logging_steps=settings.logging_steps,
        save_total_limit=2,
        report_to="none",
        remove_unused_columns=False,  # datasets hold exactly the model inputs; heads may take extra ones
        label_names=["labels"],
        # similar lengths per batch: less padding.  transformers applies this strategy to
        # evaluation too (reordering predictions), so predict() uses its own arguments.
        train_sampling_strategy="group_by_length",
        ddp_find_unused_parameters=False,
        dataloader_num_workers=0,
        use_cpu=not torch.cuda.is_available(),  # else torchrun on CPU runs N unsynchronised copies
        **save,
    )


def train(model: AdaptedModel, settings: TrainSettings, learning_rate: float, output_dir: Path, train_dataset,
          collator) -> AdapterTrainer:
    """Train (resuming from the last complete checkpoint when ``settings.resume``) and return the trainer."""
    trainer = AdapterTrainer(model=model, args=training_arguments(settings, learning_rate, output_dir),
                             train_dataset=train_dataset, data_collator=collator)
    checkpoint = None
    if settings.resume:
        folder = output_dir / CHECKPOINTS
        checkpoint, incomplete = last_complete_checkpoint(folder)
        for path in incomplete:
            print(f"--resume: skipping {path}: incomplete (no {COMPLETE} marker; the run was stopped while writing it)")
        print(f"resuming from {checkpoint}" if checkpoint else f"--resume: no checkpoint in {folder} to resume "
                                                              "from, starting fresh")
    trainer.train(resume_from_checkpoint=None if checkpoint is None else str(checkpoint))
    return trainer


def last_complete_checkpoint(folder: Path) -> tuple[Path | None, list[Path]]:
    """(newest checkpoint that finished writing, newer ones that did not), by step number."""
    pattern = re.compile(rf"^{PREFIX_CHECKPOINT_DIR}-(\d+)$")
    found = sorted((int(m.group(1)), path) for path in (folder.iterdir() if folder.is_dir() else ())
                   if path.is_dir() and (m := pattern.match(path.name)))
    incomplete = []
    for _, path in reversed(found):
        if (path / COMPLETE).is_file():
            return path, incomplete
        incomplete.append(path)
    return None, incomplete


def predict(model: AdaptedModel, dataset: list[dict], collator, batch_size: int, work_dir: Path) -> np.ndarray:
    """Logits for every example of ``dataset``, in its order.

    Examples are run shortest-first (little padding per batch) and put back in order;
    rows are padded with -100 to the longest example.
    """
    order = sorted(range(len(dataset)), key=lambda i: len(dataset[i]["input_ids"]))
    arguments = TrainingArguments(
        output_dir=str(work_dir), per_device_eval_batch_size=batch_size, report_to="none",
        remove_unused_columns=False, label_names=["labels"], train_sampling_strategy="sequential",
        dataloader_num_workers=0, use_cpu=not torch.cuda.is_available(),
    )
    trainer = AdapterTrainer(model=model, args=arguments, data_collator=collator)
    logits = trainer.predict([dataset[i] for i in order]).predictions
    restored = np.empty_like(logits)
    restored[np.asarray(order)] = logits
    return restored

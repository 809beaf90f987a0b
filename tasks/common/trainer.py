"""The transformers Trainer as this project needs it.

* checkpoints hold only the trainable tensors (never a copy of the frozen encoder), saved from the
  state_dict the Trainer hands over (FSDP/DeepSpeed), and end with a completion marker;
* a diverging run stops before the bad step is applied;
* dev evaluation during training uses the task's own metric (an ``evaluator`` the pipeline gives),
  and the best dev checkpoint can be loaded at the end (``load_best_model_at_end``);
* an optional separate learning rate for the head, and the reference recipe's per-epoch exponential
  learning-rate decay next to the Trainer's linear/constant schedules.
"""
from __future__ import annotations

import math
import os
import re
import time
from pathlib import Path
from typing import Callable

import torch
from safetensors.torch import load_file, save_file
from transformers import Trainer, TrainerCallback
from transformers.trainer_pt_utils import LengthGroupedSampler
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

from models.adapted import AdaptedModel

from .artifacts import load_trainable
from .errors import UsageError

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


class TrainingClock(TrainerCallback):
    """Seconds spent training, without the dev evaluations, carried across a resume by the log history."""

    def __init__(self) -> None:
        self.started, self.offset, self.evaluating = time.time(), 0.0, 0.0

    def on_train_begin(self, args, state, control, **kwargs):
        earlier = [entry["train_seconds"] for entry in state.log_history if "train_seconds" in entry]
        self.started, self.offset, self.evaluating = time.time(), (earlier[-1] if earlier else 0.0), 0.0

    def seconds(self) -> float:
        return round(self.offset + time.time() - self.started - self.evaluating, 1)


class EpochOfSampler(TrainerCallback):
    """Tell a batch sampler the epoch at its start (resumed runs too), so its order depends on (seed, epoch)."""

    def __init__(self, sampler) -> None:
        self.sampler = sampler

    def on_epoch_begin(self, args, state, control, **kwargs):
        self.sampler.set_epoch(int(state.epoch or 0))


def epoch_exponential(optimizer: torch.optim.Optimizer, warmup_steps: int, steps_per_epoch: int,
                      decay: float) -> torch.optim.lr_scheduler.LambdaLR:
    """lr x decay^epoch, stepped once per epoch (the reference recipe's ExponentialLR), after a linear warm-up."""
    def factor(step: int) -> float:
        warm = min(1.0, (step + 1) / warmup_steps) if warmup_steps else 1.0
        return warm * decay ** (step // steps_per_epoch)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


class AdapterTrainer(Trainer):
    """See the module docstring; ``evaluator(model) -> {metric: percent}`` scores the dev split."""

    _first_loss: float | None = None

    def __init__(self, *args, evaluator: Callable[[AdaptedModel], dict] | None = None, head_lr: float | None = None,
                 schedule: str = "linear", lr_decay: float = 0.95, batch_sampler=None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.evaluator, self.head_lr, self.schedule, self.lr_decay = evaluator, head_lr, schedule, lr_decay
        self.clock = TrainingClock()
        self.add_callback(self.clock)
        for method in getattr(self.accelerator.unwrap_model(self.model), "methods", {}).values():
            for callback in method.trainer_callbacks():  # what a method does around optimizer steps (AdaLoRA)
                self.add_callback(callback)
        self.batch_sampler = batch_sampler  # multi-task: every batch from one member (tasks/common/sampling.py)
        if batch_sampler is not None:
            self.add_callback(EpochOfSampler(batch_sampler))

    def get_train_dataloader(self):
        if self.batch_sampler is None:
            return super().get_train_dataloader()
        loader = torch.utils.data.DataLoader(self.train_dataset, batch_sampler=self.batch_sampler,
                                             collate_fn=self.data_collator, num_workers=0)
        return self.accelerator.prepare(loader)

    def _get_train_sampler(self, train_dataset=None):
        dataset = train_dataset if train_dataset is not None else self.train_dataset
        if self.args.train_sampling_strategy != "group_by_length" or not isinstance(dataset, list):
            return super()._get_train_sampler(train_dataset)
        lengths = [len(example["input_ids"]) for example in dataset]
        batch = self.args.train_batch_size * self.args.gradient_accumulation_steps
        return EpochSeededLengthGroupedSampler(batch, lengths, self.args.seed)

    # ------------------------------------------------------------------ optimizer and schedule
    def create_optimizer(self, model=None):
        model = self.model if model is None else model
        unwrapped = self.accelerator.unwrap_model(model)
        rates = unwrapped.parameter_rates() if hasattr(unwrapped, "parameter_rates") else {}
        if (self.head_lr is None and not rates) or self.optimizer is not None:
            return super().create_optimizer(model)
        head = {id(p) for p in unwrapped.head_parameters()}
        decay = set(self.get_decay_parameter_names(model))

        def rate_of(parameter) -> float | None:  # None: the run's rate
            if id(parameter) in head:
                return self.head_lr
            return rates.get(id(parameter))

        # the run's rate first, then the method's own rates, then the randomly initialised head (and layer mix)
        kinds = [None, *sorted({r for r in rates.values()}), "head"]
        groups = []
        for kind in kinds:
            for with_decay in (True, False):
                params = [p for n, p in model.named_parameters() if p.requires_grad and (n in decay) == with_decay
                          and (("head" if id(p) in head else rate_of(p)) == kind)]
                if params:
                    rate = self.head_lr if kind == "head" else kind
                    groups.append({"params": params, "weight_decay": self.args.weight_decay if with_decay else 0.0,
                                   **({} if rate is None else {"lr": rate})})
        optimizer_cls, kwargs = self.get_optimizer_cls_and_kwargs(self.args, model)
        self.optimizer = optimizer_cls(groups, **kwargs)
        return self.optimizer

    def create_scheduler(self, num_training_steps: int, optimizer=None):
        if self.schedule != "exponential" or self.lr_scheduler is not None:
            return super().create_scheduler(num_training_steps, optimizer)
        steps_per_epoch = max(1, math.ceil(len(self.get_train_dataloader()) / self.args.gradient_accumulation_steps))
        self.lr_scheduler = epoch_exponential(optimizer or self.optimizer,
                                              self.args.get_warmup_steps(num_training_steps), steps_per_epoch,
                                              self.lr_decay)
        return self.lr_scheduler

    # ------------------------------------------------------------------ dev evaluation and the best checkpoint
    def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix: str = "eval") -> dict[str, float]:
        if self.evaluator is None:
            return super().evaluate(eval_dataset, ignore_keys, metric_key_prefix)
        started = time.time()
        scores = self.evaluator(self.accelerator.unwrap_model(self.model))
        self.clock.evaluating += time.time() - started
        metrics = {f"{metric_key_prefix}_{k}": v for k, v in scores.items()}
        metrics.update({f"{metric_key_prefix}_seconds": round(time.time() - started, 1),
                        "train_seconds": self.clock.seconds()})
        self.log(metrics)
        self.control = self.callback_handler.on_evaluate(self.args, self.state, self.control, metrics)
        return metrics

    def _load_best_model(self) -> None:
        best = self.state.best_model_checkpoint
        print(f"loading the best dev checkpoint {best} ({self.args.metric_for_best_model} {self.state.best_metric})")
        load_trainable(self.accelerator.unwrap_model(self.model), load_file(os.path.join(best, CHECKPOINT_WEIGHTS)))

    # ------------------------------------------------------------------ checkpoints
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

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model=None) -> None:
        model = model or self.model
        load_trainable(self.accelerator.unwrap_model(model),
                       load_file(os.path.join(resume_from_checkpoint, CHECKPOINT_WEIGHTS)))

    # ------------------------------------------------------------------ divergence
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

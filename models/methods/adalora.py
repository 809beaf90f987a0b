"""The peer "adalora": Hugging Face PEFT's AdaLoRA (Zhang et al. 2023) injected into the frozen encoder.

PEFT replaces each target linear layer by an SVD-form update ``B E A`` (``E`` the singular values, zero at the start,
so training starts from the encoder as it is); while training, a rank allocator scores every singular triplet by
its smoothed sensitivity and prunes the budget from ``init_r`` per matrix to an average of ``target_r`` on a cubic
schedule: ``tinit`` steps with the whole budget, pruning every ``deltaT`` steps until ``total_step - tfinal``, then
the ranks fixed for the last ``tfinal`` steps.  PEFT wants ``total_step`` when the model is built; here the
schedule is in shares of the run (``AdaLoraConfig.tinit``, ``tfinal``) and sized to the run's optimizer steps when
training begins.

What PEFT leaves to the training loop, ``BudgetSchedule`` (a ``transformers.TrainerCallback``, registered by the
Trainer through ``AdaptationMethod.trainer_callbacks``) does at every optimizer step:

* before it, the gradient of PEFT's orthogonal regularisation ``orth_reg * mean ||A A^T - I||_F + ||B^T B - I||_F``
  is added to the adapters' gradients (PEFT's ``AdaLoraModel.forward`` adds the term to the loss; the encoder here
  runs without that wrapper).  Added once per optimizer step, it equals the term in every micro-batch's loss averaged
  over gradient accumulation; it is added after gradient clipping, so a clipped step differs from PEFT's in that;
* after it (gradients still there), ``update_and_allocate(step)``: the importance scores, and the budget's masks.

A run resumed mid-schedule starts the importance scores afresh (they are not in checkpoints); one resumed in the
final phase takes the ranks from the pruned (zero) singular values it loaded.  Pruned singular values are zero in
the artifact, so predicting from it needs no schedule.
"""
from __future__ import annotations

import warnings

import torch
from torch import nn
from transformers import TrainerCallback
from transformers.modeling_outputs import BaseModelOutput

from .base import AdaptationMethod, run_backbone
from .configs import AdaLoraConfig
from .lora import ALL_LINEAR, checked_targets, given_targets
from .peft_import import import_peft

ADAPTER = "default"  # PEFT's adapter name


def schedule(config: AdaLoraConfig, steps: int) -> dict[str, int]:
    """PEFT's ``total_step``, ``tinit``, ``tfinal`` and ``deltaT`` for a run of ``steps`` optimizer steps: the
    config's shares of it, with at least one step of the final phase (where PEFT fixes the ranks) and at least one
    of budgeting, as far as the run has steps for them."""
    steps = max(1, int(steps))
    tfinal = min(max(1, round(config.tfinal * steps)), steps - 1)
    tinit = max(0, min(round(config.tinit * steps), steps - tfinal - 1))
    return {"total_step": steps, "tinit": tinit, "tfinal": tfinal, "deltaT": config.delta_t}


class AdaLora(AdaptationMethod):
    name = "adalora"

    def __init__(self, backbone: nn.Module, config: AdaLoraConfig) -> None:
        super().__init__(backbone, config)
        peft = import_peft(self.name)
        targets = checked_targets(given_targets(config.target_modules) or ALL_LINEAR, backbone)
        alpha = config.alpha if config.alpha is not None else 2 * config.init_r
        # total_step is a placeholder until the Trainer says how many steps the run has (``begin``)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # PEFT's note that LoRA's r is unused by AdaLoRA
            self.peft_config = peft.AdaLoraConfig(
                init_r=config.init_r, target_r=config.target_r, lora_alpha=alpha, lora_dropout=config.dropout,
                target_modules=targets, orth_reg_weight=config.orth_reg, beta1=config.beta1, beta2=config.beta2,
                bias="none", **schedule(config, 1000))
        # PEFT's tuner injects the SVD layers into ``backbone`` and holds the rank allocator; kept out of this
        # module's children (it would register every encoder weight a second time under the method)
        object.__setattr__(self, "_tuner", peft.AdaLoraModel(backbone, self.peft_config, ADAPTER))
        self.peft_config = self._tuner.peft_config[ADAPTER]  # the one the rank allocator reads
        self.scheduled = self._warned = False

    def mark_trainable(self, backbone: nn.Module) -> None:
        for name, parameter in backbone.named_parameters():
            if ".lora_" in name:  # lora_A, lora_E, lora_B (not ranknum, a constant)
                parameter.requires_grad_(True)

    def encode(self, backbone: nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor,
               token_type_ids: torch.Tensor | None = None, all_layers: bool = False) -> BaseModelOutput:
        if self.training and torch.is_grad_enabled() and not (self.scheduled or self._warned):
            self._warned = True
            warnings.warn("adalora trains without its budget schedule: no Trainer registered its callback "
                          "(AdaptationMethod.trainer_callbacks), so the ranks stay at --adalora-init-r", stacklevel=2)
        return run_backbone(backbone, all_layers, input_ids=input_ids, attention_mask=attention_mask,
                            token_type_ids=token_type_ids)

    def trainer_callbacks(self) -> list:
        return [BudgetSchedule(self)]

    # ------------------------------------------------------------------ the schedule (``BudgetSchedule`` calls these)
    def begin(self, steps: int, step: int = 0) -> None:
        """Size the budget schedule to a run of ``steps`` optimizer steps; ``step``: where a resumed run starts."""
        for key, value in schedule(self.config, steps).items():
            setattr(self.peft_config, key, value)
        self.scheduled = True
        self._tuner.rankallocator.reset_ipt()
        if step > self.peft_config.total_step - self.peft_config.tfinal and self.peft_config.rank_pattern is None:
            self.peft_config.rank_pattern = self.rank_pattern()  # resumed in the final phase: the loaded masks

    def regularise(self) -> None:
        """Add the gradient of AdaLoRA's orthogonal regularisation (weight ``orth_reg``) to the adapters' gradients."""
        if self.config.orth_reg == 0:
            return
        pairs = [(p, "lora_A" in n) for n, p in self._tuner.model.named_parameters()
                 if ("lora_A" in n or "lora_B" in n) and p.requires_grad and p.grad is not None]
        if not pairs:
            return
        with torch.enable_grad():
            total = 0.0
            for parameter, is_a in pairs:
                cov = parameter @ parameter.T if is_a else parameter.T @ parameter
                total = total + torch.linalg.matrix_norm(cov - torch.eye(cov.shape[0], device=cov.device,
                                                                          dtype=cov.dtype))
            grads = torch.autograd.grad(self.config.orth_reg * total / len(pairs), [p for p, _ in pairs])
        for (parameter, _), grad in zip(pairs, grads):
            parameter.grad.add_(grad.to(parameter.grad.dtype))

    def allocate(self, step: int) -> None:
        """PEFT's ``update_and_allocate`` after optimizer step ``step`` (0-based), gradients still in place."""
        if self.config.init_r == self.config.target_r:
            # no budget to prune: the ranks stay fixed (PEFT's allocator would ask for the 0th-smallest score and fail)
            return
        if any(p.grad is None for n, p in self._tuner.model.named_parameters() if ".lora_" in n and p.requires_grad):
            return  # no backward reached the adapters (nothing to score)
        self._tuner.update_and_allocate(step)

    def rank_pattern(self) -> dict[str, list[bool]]:
        """Which singular values of each adapted matrix are kept (nonzero), by PEFT's parameter name."""
        return {name: (p.detach() != 0).view(-1).tolist() for name, p in self._tuner.model.named_parameters()
                if f"lora_E.{ADAPTER}" in name}

    def ranks(self) -> dict[str, int]:
        """The rank each adapted matrix has now (its nonzero singular values), by module name."""
        return {name.split(".lora_E")[0]: sum(kept) for name, kept in self.rank_pattern().items()}


class BudgetSchedule(TrainerCallback):
    """Drives AdaLoRA's budget schedule from the Trainer: sized at the start to the run's optimizer steps
    (``state.max_steps``), then around every optimizer step (see the module docstring)."""

    def __init__(self, method: AdaLora) -> None:
        self.method = method

    def on_train_begin(self, args, state, control, **kwargs):
        self.method.begin(state.max_steps, state.global_step)

    def on_pre_optimizer_step(self, args, state, control, **kwargs):
        self.method.regularise()

    def on_optimizer_step(self, args, state, control, **kwargs):
        self.method.allocate(state.global_step)  # the Trainer counts this step after its callbacks: 0-based here

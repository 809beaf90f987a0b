"""Encoders and decoders of several sizes (a base per quantisation scheme), one AdaptedModel per method, and the
timed training step / inference batch."""
from __future__ import annotations

import argparse
import contextlib
import statistics
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import torch
from torch import nn
from transformers import TrainerControl, TrainerState

from heads import TokenClassificationHead
from models.adapted import AdaptedModel
from models.backbone import DEFAULT_MODEL, load_backbone
from models.methods import get_method

from .device import autocast_bf16
from .speed_grid import BERT_SIZES, DECODER_SIZES, LR, NUM_LABELS, PREFIX_LEN, flags_of, method_of

CPU = torch.device("cpu")


def make_backbone(size: str, model: str = DEFAULT_MODEL) -> nn.Module:
    """``bundled`` loads ``model`` (default: the bundled encoder); BERT and decoder sizes are random (seeded), built
    from their config in code (no download); a decoder is prepared as ``load_backbone`` prepares one (no cache)."""
    if size == "bundled":
        return load_backbone(model)
    if size in DECODER_SIZES:
        from transformers import AutoConfig, AutoModel

        from models.decoders import prepare_decoder

        shape = dict(DECODER_SIZES[size])
        torch.manual_seed(0)
        config = AutoConfig.for_model(shape.pop("model_type"), **shape)
        return prepare_decoder(AutoModel.from_config(config, attn_implementation="sdpa"))  # load_backbone's kernel
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    config = BertConfig(vocab_size=30522, max_position_embeddings=512, **BERT_SIZES[size])
    config._attn_implementation = "sdpa"  # the same kernel load_backbone asks for
    return BertModel(config, add_pooling_layer=False)


def base_backbone(size: str, model: str = DEFAULT_MODEL, base: str = "fp32") -> nn.Module:
    """``make_backbone`` with its linear layers stored as ``base`` says (``--quantize-base``; fp32: as built)."""
    backbone = make_backbone(size, model)
    if base != "fp32":
        from models.quantize import quantize_base

        quantize_base(backbone, base)
    return backbone


def unavailable_base(base: str, device: torch.device) -> str | None:
    """Why ``base`` cannot be timed here (one line), or None: a scheme this install lacks, nf4 off the GPU."""
    if base == "fp32":
        return None
    from models.quantize import QuantizationUnavailable, check_scheme

    try:
        check_scheme(base)
    except QuantizationUnavailable as err:
        return str(err)
    if base == "nf4" and device.type != "cuda":
        return f"--quantize-base nf4: bitsandbytes quantises on the GPU, and this run is on {device.type}"
    return None


def weights_of(module: nn.Module) -> dict[str, torch.Tensor]:
    """Every parameter and buffer of ``module`` by full name (a snapshot: later wrapping does not rename them)."""
    return {**dict(module.named_parameters(remove_duplicate=False)),
            **dict(module.named_buffers(remove_duplicate=False))}


def share_weights(target: nn.Module, source: nn.Module | dict[str, torch.Tensor]) -> None:
    """Point every parameter and buffer of ``target`` at ``source``'s storage (new Parameter objects: own
    requires_grad; buffers, such as a quantised base's int8 weights, shared as they are).

    Lets all methods of one size live in one process without a copy of BERT-large or of a decoder per method.  The
    arithmetic is identical whatever the weights hold, so sharing does not change timings.  ``source``: a module
    of the same architecture, or its ``weights_of`` taken before a method wrapped its layers.
    """
    sources = source if isinstance(source, dict) else weights_of(source)
    for module_name, module in target.named_modules():
        for name, parameter in list(module._parameters.items()):
            if parameter is not None:
                full = f"{module_name}.{name}" if module_name else name
                module._parameters[name] = nn.Parameter(sources[full].data, requires_grad=parameter.requires_grad)
        for name, buffer in list(module._buffers.items()):
            full = f"{module_name}.{name}" if module_name else name
            if buffer is not None and full in sources:
                module._buffers[name] = sources[full]


def build(method: str, backbone: nn.Module, prefix_len: int) -> AdaptedModel:
    """``backbone`` adapted by the timed column ``method`` (a registered method, or a cpu-suite variant: its method
    with its flags) at ``prefix_len``, with a token-classification head."""
    head = TokenClassificationHead(backbone.config.hidden_size, NUM_LABELS)
    return AdaptedModel(backbone, head, method_of(method), config_of(method, prefix_len))


def config_of(method: str, prefix_len: int):
    """The config the timed column ``method`` runs with: its flags read as the task CLIs read them (the method's own
    defaults otherwise, no family recipe), and ``prefix_len`` for a method that takes --prefix-len."""
    from tasks.common.cli import add_method_flags, method_config

    spec = get_method(method_of(method))
    parser = argparse.ArgumentParser(prog=f"benchmarks speed: {method}")
    add_method_flags(parser, {})
    config = method_config(spec.name, parser.parse_args(list(flags_of(method))))
    length = {field: prefix_len for flag, field in spec.flags().items() if flag == "--prefix-len"}
    return replace(config, **length)


def build_all(size: str, methods: tuple[str, ...], prefix_len: int, model: str = DEFAULT_MODEL,
              device: torch.device = CPU, base: str = "fp32",
              refused: dict[str, str] | None = None) -> dict[str, AdaptedModel]:
    """One model per method on ``device`` over a ``base`` backbone, all sharing the first one's weights (see
    share_weights; an nf4 base is not shared: bitsandbytes keeps its quantisation state on its own parameters).

    A method that refuses the backbone (finetune on a quantised base, a method whose package is missing) raises,
    unless ``refused`` is given: then its one-line reason goes there and the other methods are built.
    """
    sources: dict[str, torch.Tensor] | None = None  # the first backbone's weights (never set for nf4)
    built = {}
    for method in methods:
        shared = sources is not None
        # a random size that takes the first one's weights is built without values (meta), not initialised in vain
        with torch.device("meta") if shared and size != "bundled" else contextlib.nullcontext():
            backbone = base_backbone(size, model, base)
        if shared:
            share_weights(backbone, sources)  # the parameters now live on the first backbone's device
        else:
            backbone.to(device)  # nf4: bitsandbytes quantises as the weights reach the GPU
            if base != "nf4":
                sources = weights_of(backbone)  # before a method wraps its layers (LoRA)
        try:
            built[method] = build(method, backbone, prefix_len).to(device)  # buffers, prefix and head
        except (ValueError, ImportError) as err:
            if refused is None:
                raise
            refused[method] = str(err).splitlines()[0]
            if not shared:
                sources = None  # the next method's backbone is the source instead
    return built


def learning_rate(method: str) -> float:
    """The rate of the benchmark's AdamW (``LR``; a method not listed there: its config's default)."""
    return LR[method] if method in LR else config_of(method, PREFIX_LEN).default_lr()


def optimizer_for(model: AdaptedModel, method: str) -> torch.optim.Optimizer:
    # the Trainer's default optimizer (AdamW, torch implementation) over the trainable tensors only
    return torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=learning_rate(method))


def fake_batch(batch: int, length: int, vocab: int, seed: int = 0,
               device: torch.device = CPU) -> dict[str, torch.Tensor]:
    """Random tokens with ~10% padding at the end of half the rows (real batches are padded), on ``device``."""
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(1000, vocab, (batch, length), generator=generator)
    mask = torch.ones_like(ids)
    mask[::2, int(length * 0.9):] = 0
    labels = torch.randint(0, NUM_LABELS, (batch, length), generator=generator).masked_fill(mask == 0, -100)
    tensors = {"input_ids": ids.masked_fill(mask == 0, 0), "attention_mask": mask,
               "token_type_ids": torch.zeros_like(ids), "labels": labels}
    return {name: t.to(device) for name, t in tensors.items()}


# Steps a timed run is said to have, for a method whose callbacks size a schedule to the run (AdaLoRA's budget):
# a timed step then sits early in a long run, where AdaLoRA scores every singular value at every step
TIMED_RUN_STEPS = 1000


class MethodHooks:
    """A model's method callbacks (``AdaptationMethod.trainer_callbacks``: AdaLoRA's regularisation before the
    optimizer step and its rank allocation after it) called around each step as the Trainer calls them, so that a
    timed step costs what a training step of that method costs."""

    def __init__(self, model: AdaptedModel) -> None:
        self.callbacks = [c for method in getattr(model, "methods", {}).values() for c in method.trainer_callbacks()]
        self.state, self.control = TrainerState(max_steps=TIMED_RUN_STEPS), TrainerControl()
        for callback in self.callbacks:
            callback.on_train_begin(None, self.state, self.control)

    def before_step(self) -> None:
        for callback in self.callbacks:
            callback.on_pre_optimizer_step(None, self.state, self.control)

    def after_step(self) -> None:
        for callback in self.callbacks:
            callback.on_optimizer_step(None, self.state, self.control)
        self.state.global_step += 1


_hooks: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # one MethodHooks per model, made at its first step


def train_step(model: AdaptedModel, optimizer: torch.optim.Optimizer, batch: dict[str, torch.Tensor]) -> None:
    """forward + backward + optimizer step, with the method's callbacks around the optimizer step, as one Trainer
    step does."""
    hooks = _hooks.get(model)
    if hooks is None:
        hooks = _hooks[model] = MethodHooks(model)
    optimizer.zero_grad(set_to_none=True)
    model(**batch)["loss"].backward()
    hooks.before_step()
    optimizer.step()
    hooks.after_step()


def train_stepper(model: AdaptedModel, optimizer: torch.optim.Optimizer, batch: dict[str, torch.Tensor],
                  precision: str = "fp32") -> Callable[[], None]:
    """One training step in ``precision`` as the task CLIs run it (``--bf16``, tasks/common/training.py: bf16_mode):
    a frozen encoder's weights cast to bf16 once, here (``model.set_precision``), and the step run as it is; an
    encoder that trains under bf16 autocast, as the Trainer's."""
    if precision == "fp32":
        return lambda: train_step(model, optimizer, batch)
    if precision != "bf16":
        raise ValueError(f"training runs in fp32 or bf16, not {precision}")
    if model.encoder_frozen():
        model.set_precision("bf16")
        return lambda: train_step(model, optimizer, batch)
    device = batch["input_ids"].device

    def autocast_step() -> None:
        with autocast_bf16(device):
            train_step(model, optimizer, batch)
    return autocast_step


def infer(model: AdaptedModel, batch: dict[str, torch.Tensor]) -> None:
    with torch.no_grad():  # what Trainer.predict uses
        model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
              token_type_ids=batch["token_type_ids"])


def no_sync() -> None:
    """The CPU's synchronisation: none (a call returns when its work is done)."""


@dataclass
class Timer:
    """Round-robin timing: repeat r runs every method once, so drift hits all methods alike; each repeat starts one
    method further on, so that a slowdown that recurs at one point of a round does not land on the same methods
    every time (on a host of swinging speed the last methods of a fixed order got the slow stretches in most
    repeats).

    ``sync`` waits for queued device work (``torch.cuda.synchronize`` on a GPU): called before each timed call
    (earlier work is not charged to it) and after it (its own work is).  Warm-up calls are not timed.
    """

    warmup: int
    repeats: int
    sync: Callable[[], None] = field(default=no_sync)

    def time_call(self, call: Callable[[], None]) -> float:
        self.sync()
        start = time.perf_counter()
        call()
        self.sync()
        return time.perf_counter() - start

    def run(self, calls: dict[str, Callable[[], None]]) -> dict[str, dict[str, float]]:
        for _ in range(self.warmup):
            for call in calls.values():
                call()
        self.sync()
        samples: dict[str, list[float]] = {name: [] for name in calls}
        names = list(calls)
        for repeat in range(self.repeats):
            start = repeat % len(names)
            for name in names[start:] + names[:start]:
                samples[name].append(self.time_call(calls[name]))
        return {name: {"median_s": statistics.median(s), "min_s": min(s), "max_s": max(s), "n": len(s)}
                for name, s in samples.items()}

"""The one model for every task, method and mix of tasks: an encoder, adaptation methods, and one readout per task.

* ``backbone``: the pretrained encoder, frozen except for what a method trains in it;
* ``methods``: adaptation methods (``models/methods``) by key; every task names the one it uses, so a
  multi-task prefix is one method shared by several tasks, and a server holds one method per artifact;
* ``heads`` and ``mixes``: per task, its randomly initialised head and, with ``layers="mix"``, the learned
  layer mix it reads (``models/readout.py``).

Rows of several tasks go through one forward as *segments* (contiguous runs of rows of one task, as LoRAX's
adapter segments or adapters' ``BatchSplit``): the encoder runs once, each task's method contributes its
rows' state (only methods registered with ``mixes_rows`` can share a forward), and each segment is read by
its own task's readout.  A single-task model is the case of one task and one segment.
"""
from __future__ import annotations

import contextlib
import copy
from dataclasses import asdict, dataclass, field
from typing import Iterator

import torch
from torch import nn
from transformers.modeling_outputs import BaseModelOutput
from transformers.utils import ModelOutput

from .backbone import base_options, fingerprint, load_backbone
from .methods.base import AdaptationMethod
from .methods.registry import get_method
from .precision import autocast, cast_weights, check_precision, quantize_attention_int8, restore_weights, weights_cast
from .quantize import is_quantized
from .readout import LAYERS, LayerMix, read_out, states

SHARED = "shared"  # key of the method every task of a model built by ``build_model`` uses


@dataclass
class TaskOutput(ModelOutput):
    """``loss`` only when labels were given; ``logits`` in the head's shape."""

    loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None


@dataclass
class Segment:
    """``rows`` consecutive rows of one ``task`` in a batch, with what its head reads besides the hidden states."""

    task: str
    rows: int
    head_inputs: dict = field(default_factory=dict)


class AdaptedModel(nn.Module):
    """encoder + methods + one readout per task; see the module docstring.

    ``AdaptedModel(backbone, head, "prefix", config, layers)`` is a single-task model (task ``task``);
    ``add_method``/``add_task`` grow it into a multi-task one.  Inputs of shape (B, C, n) are C choices
    per example (multiple choice).
    """

    # The heads return a mean loss and ignore ``num_items_in_batch``: tell the Trainer (which otherwise
    # infers the opposite from ``**head_inputs``) to average over gradient accumulation and processes itself.
    accepts_loss_kwargs = False

    def __init__(self, backbone: nn.Module, head: nn.Module | None = None, method: str | AdaptationMethod = "prefix",
                 config=None, layers: str = "last", task: str = "task") -> None:
        super().__init__()
        # registration order = parameter order: the encoder, the heads, the methods, the layer mixes (the order
        # of the single-task model before the multi-task one; gradient clipping sums per-parameter norms in
        # this order, so another order changes the total norm in its last bits and the run after some
        # hundred steps)
        self.backbone = backbone
        self.heads = nn.ModuleDict()
        self.methods = nn.ModuleDict()
        self.mixes = nn.ModuleDict()
        self.task_methods: dict[str, str] = {}  # task -> key of its method
        self.precision = "fp32"  # of the backbone's forward: fp32, bf16 (cast once or autocast) or int8
        for parameter in backbone.parameters():
            parameter.requires_grad_(False)
        if head is not None:
            self.add_method(SHARED, method, config)
            self.add_task(task, head, layers)

    # ------------------------------------------------------------------ building
    def add_method(self, key: str, method: str | AdaptationMethod, config=None) -> AdaptationMethod:
        """Attach a method (a registered name, or an instance built on this model's backbone) under ``key``."""
        if isinstance(method, str):
            spec = get_method(method)
            if spec.trains_backbone and is_quantized(self.backbone):
                raise ValueError(f"--method {spec.name} trains every weight of the base, which --quantize-base stores "
                                 "frozen in low precision; use one or the other")
            method = spec.implementation_class()(self.backbone, config if config is not None else spec.config_class())
        self.methods[key] = method
        method.mark_trainable(self.backbone)  # what of the encoder the method trains (all of it when fine-tuning)
        return method

    def add_task(self, name: str, head: nn.Module, layers: str = "last", method: str = SHARED,
                 mix: LayerMix | None = None) -> None:
        """A task read by ``head`` from the last layer or a learned mix of every layer, adapted by ``method``."""
        if layers not in LAYERS:
            raise ValueError(f"unknown layers '{layers}'; choose from {', '.join(LAYERS)}")
        if method not in self.methods:
            raise KeyError(f"no method '{method}' in this model (it has {', '.join(self.methods)})")
        self.heads[name] = head
        if layers == "mix":
            self.mixes[name] = mix or LayerMix(self.backbone.config.num_hidden_layers + 1)
        self.task_methods[name] = method

    # ------------------------------------------------------------------ the single-task view
    @property
    def tasks(self) -> list[str]:
        return list(self.heads)

    def _only(self, modules: nn.ModuleDict, what: str):
        if len(modules) != 1:
            raise ValueError(f"this model has {len(modules)} {what}s ({', '.join(modules)}); name the task")
        return next(iter(modules.values()))

    @property
    def method(self) -> AdaptationMethod:
        return self._only(self.methods, "method")

    @property
    def head(self) -> nn.Module:
        return self._only(self.heads, "head")

    @property
    def mix(self) -> LayerMix | None:
        return self.mixes[self.tasks[0]] if len(self.heads) == 1 and self.tasks[0] in self.mixes else None

    @property
    def layers(self) -> str:
        """What the (only) task's head reads: ``last`` or ``mix``."""
        return self.layers_of(self._only_task())

    def layers_of(self, task: str) -> str:
        return "mix" if task in self.mixes else "last"

    def _only_task(self) -> str:
        return self.tasks[0] if len(self.heads) == 1 else self._only(self.heads, "task")

    @property
    def method_name(self) -> str:
        return self.method.name

    @property
    def spec(self):
        return get_method(self.method.name)

    # ------------------------------------------------------------------ forward
    def encode(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
               token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        """The hidden states the (only) task's head reads (B, n, hidden), for the real tokens only."""
        task = self._only_task()
        output = self.encoder_output(input_ids, attention_mask, token_type_ids)
        mix = self.mixes[task] if task in self.mixes else None
        return states(output, mix, slice(None), next(self.heads[task].parameters()).dtype)

    def encoder_output(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                       token_type_ids: torch.Tensor | None = None,
                       segments: list[Segment] | None = None) -> BaseModelOutput:
        """The encoder's output for every row, each segment's rows adapted by its task's method."""
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        segments = segments or [Segment(self._only_task(), len(input_ids))]
        methods = [self.methods[self.task_methods[s.task]] for s in segments]
        all_layers = any(s.task in self.mixes for s in segments)
        with autocast(self.autocast_precision, input_ids.device.type):
            if all(m is methods[0] for m in methods):
                return methods[0].encode(self.backbone, input_ids, attention_mask, token_type_ids,
                                         all_layers=all_layers)
            kind = type(methods[0])
            if not all(type(m) is kind for m in methods) or not get_method(kind.name).mixes_rows:
                raise ValueError("rows of tasks with different methods, or of a method that cannot mix rows, "
                                 "cannot share a forward")
            return kind.encode_rows(self.backbone, [(m, s.rows) for m, s in zip(methods, segments)], input_ids,
                                    attention_mask, token_type_ids, all_layers=all_layers)

    def segment_logits(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None,
                       token_type_ids: torch.Tensor | None, segments: list[Segment]) -> list[torch.Tensor]:
        """One encoder pass over every row; each segment's logits from its own task's readout."""
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        output = self.encoder_output(input_ids, attention_mask, token_type_ids, segments)
        logits, start = [], 0
        for segment in segments:
            # one segment reads every row: no slice of a fixed length (a traced graph would keep its batch size)
            rows = slice(None) if len(segments) == 1 else slice(start, start + segment.rows)
            start += segment.rows
            logits.append(read_out(self.heads[segment.task], self.mixes[segment.task] if segment.task in self.mixes
                                   else None, output, rows, attention_mask[rows], **segment.head_inputs))
        return logits

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                token_type_ids: torch.Tensor | None = None, labels: torch.Tensor | None = None,
                task_index: torch.Tensor | None = None, **head_inputs) -> TaskOutput:
        """The Trainer's entry: a batch of one task (``task_index``: per example, the index into ``tasks``)."""
        if input_ids.dim() == 3:  # (B, C, n): score every choice with the same encoder and prefix
            head_inputs["num_choices"] = input_ids.shape[1]
            flat = lambda t: None if t is None else t.reshape(-1, t.shape[-1])  # noqa: E731
            input_ids, attention_mask, token_type_ids = flat(input_ids), flat(attention_mask), flat(token_type_ids)
        task = self._only_task() if task_index is None else self._task_of(task_index)
        logits = self.segment_logits(input_ids, attention_mask, token_type_ids,
                                     [Segment(task, len(input_ids), head_inputs)])[0]
        return TaskOutput(loss=None if labels is None else self.heads[task].loss(logits, labels), logits=logits)

    def _task_of(self, task_index: torch.Tensor) -> str:
        index = task_index.reshape(-1)
        if not bool((index == index[0]).all()):  # a training batch has one head's labels and one loss
            raise ValueError("a training batch must come from one task (the multi-task sampler draws one per batch); "
                             "use segment_logits for rows of several tasks")
        return self.tasks[int(index[0])]

    # ------------------------------------------------------------------ training helpers
    def enable_gradient_checkpointing(self) -> None:
        """Recompute each encoder layer's activations during backward instead of storing them.

        Non-reentrant checkpointing only: the reentrant kind passes gradients only to a layer's
        tensor arguments, and the prefix reaches attention through its slot, not as an argument.
        """
        kwargs = {"use_reentrant": False}
        for method in self.methods.values():
            kwargs.update(method.checkpointing_kwargs())
        # transformers 5.24 renamed the method; earlier 5.x releases only have the old name
        enable = getattr(self.backbone, "activation_checkpointing_enable", None)
        if enable is not None:
            enable(activation_checkpointing_kwargs=kwargs)
        else:
            self.backbone.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)

    def parameter_rates(self) -> dict[int, float]:
        """id(parameter) -> its own learning rate, for the parameters a method rates apart (``own_rates``)."""
        rates = {}
        for method in self.methods.values():
            for prefix, rate in method.own_rates().items():
                rates.update({id(p): rate for name, p in method.named_parameters() if name.startswith(prefix)})
        return rates

    def head_parameters(self) -> list[nn.Parameter]:
        """The randomly initialised readouts: every head and layer mix."""
        return [*self.heads.parameters(), *self.mixes.parameters()]

    def trainable_state_dict(self) -> dict[str, torch.Tensor]:
        """Only what was trained (methods + readouts, and what of the encoder a method trains)."""
        trainable = {name for name, p in self.named_parameters() if p.requires_grad}
        return {k: v for k, v in self.state_dict().items() if k in trainable}

    def parameter_counts(self) -> dict[str, float]:
        total = sum(p.numel() for p in self.parameters())
        trainable = sum(p.numel() for p in self.parameters() if p.requires_grad)
        return {"trainable": trainable, "total": total, "trainable_percent": 100.0 * trainable / total}

    # ------------------------------------------------------------------ precision
    def encoder_frozen(self) -> bool:
        """Whether no encoder tensor takes gradients (what a method trains lives outside it, or nothing trains)."""
        return not any(p.requires_grad for p in self.backbone.parameters())

    @property
    def autocast_precision(self) -> str:
        """What the forward autocasts to: bf16 only for an encoder in bf16 whose weights are not cast (they train)."""
        return "bf16" if self.precision == "bf16" and not weights_cast(self.backbone) else "fp32"

    def set_precision(self, precision: str) -> "AdaptedModel":
        """Run the backbone's forward in ``precision`` from now on (``models/precision.py``).

        bf16: a frozen encoder's weights are cast to bf16 once (the fp32 ones kept, put back by fp32), an encoder
        whose tensors train runs under autocast; what trains outside the encoder stays fp32 either way.  int8
        quantizes the attention projections in place (inference only).
        """
        check_precision(precision, next(self.parameters()).device.type)
        self._use(precision)
        if precision == "int8":
            quantize_attention_int8(self.backbone)
        return self

    def _use(self, precision: str) -> None:
        if precision == "bf16" and self.encoder_frozen():
            cast_weights(self.backbone, torch.bfloat16)
        else:
            restore_weights(self.backbone)
        self.precision = precision

    @contextlib.contextmanager
    def inference(self, precision: str = "fp32") -> Iterator["AdaptedModel"]:
        """A model to predict with in ``precision``: this one (bf16 for the duration; int8 when it is quantized
        already), or an int8 copy."""
        if precision == "int8":
            yield self if self.precision == "int8" else copy.deepcopy(self).set_precision("int8")  # the copy's slot
            return  # and hooks stay its own
        previous = self.precision
        self.set_precision(precision)
        try:
            yield self
        finally:
            self._use(previous)  # a frozen encoder cast back (or again): its fp32 weights are kept exactly

    # ------------------------------------------------------------------ bookkeeping
    def max_input_length(self) -> int | None:
        """Longest tokenized input the encoder accepts (the prompt and PEFT's prefix eat into it; ours does not)."""
        limit = getattr(self.backbone.config, "max_position_embeddings", None)
        if limit is None:
            return None
        if self.backbone.config.model_type in ("roberta", "xlm-roberta"):
            limit -= 2  # positions start after the padding index
        return limit - max((m.positions_used() for m in self.methods.values()), default=0)

    def base_record(self) -> dict:
        """How the base was loaded beyond its weights (attention mode, quantisation): ``load_backbone``'s keywords to
        rebuild the same base; empty for a base as pre-trained."""
        return base_options(self.backbone)

    def method_record(self) -> dict:
        """What an artifact stores to rebuild the (only) method: its registered name and its config."""
        return {"name": self.method.name, "config": asdict(self.method.config)}


def build_model(model_name_or_path: str | None, head, method: str = "prefix", config=None,
                layers: str = "last", attn_implementation: str = "sdpa",
                encoder_dropout: float | None = None, attention: str | None = None,
                quantize_base: str | None = None) -> AdaptedModel:
    """Load the encoder and wrap it; remembers the encoder's name and fingerprint for artifacts.

    ``head`` is a module, or a function of the encoder's hidden size that builds one, or a dict of
    either by task name (a multi-task model whose tasks share the method); ``encoder_dropout``
    replaces the encoder's own dropout probabilities (``models.backbone.set_dropout``); ``attention`` and
    ``quantize_base`` set a decoder's attention mode and a quantised base (``models.backbone.load_backbone``).
    """
    backbone = load_backbone(model_name_or_path, attn_implementation, encoder_dropout, attention, quantize_base)
    encoder_fingerprint = fingerprint(backbone)  # before a method injects its own tensors into the encoder (LoRA)
    heads = head if isinstance(head, dict) else {"task": head}
    heads = {name: h if isinstance(h, nn.Module) else h(backbone.config.hidden_size) for name, h in heads.items()}
    first, *others = heads.items()
    model = AdaptedModel(backbone, first[1], method, config, layers, task=first[0])
    for name, task_head in others:
        model.add_task(name, task_head, layers)
    model.backbone_name = model_name_or_path
    model.backbone_fingerprint = encoder_fingerprint
    return model

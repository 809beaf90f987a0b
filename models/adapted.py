"""One model class for every task and method: an encoder, an adaptation method, what the head reads, and a head."""
from __future__ import annotations

import contextlib
import copy
from dataclasses import asdict, dataclass
from typing import Iterator

import torch
from torch import nn
from transformers.utils import ModelOutput

from .backbone import fingerprint, load_backbone
from .methods.base import AdaptationMethod
from .methods.registry import get_method
from .precision import autocast, check_precision, quantize_attention_int8
from .readout import LAYERS, LayerMix


@dataclass
class TaskOutput(ModelOutput):
    """``loss`` only when labels were given; ``logits`` in the head's shape."""

    loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None


class Trained:
    """What the Trainer and artifacts ask of a model: its trained tensors and how many parameters train."""

    def trainable_state_dict(self) -> dict[str, torch.Tensor]:
        """Only what was trained (method + head, or everything when fine-tuning)."""
        trainable = {name for name, p in self.named_parameters() if p.requires_grad}
        return {k: v for k, v in self.state_dict().items() if k in trainable}

    def parameter_counts(self) -> dict[str, float]:
        total = sum(p.numel() for p in self.parameters())
        trainable = sum(p.numel() for p in self.parameters() if p.requires_grad)
        return {"trainable": trainable, "total": total, "trainable_percent": 100.0 * trainable / total}


class AdaptedModel(Trained, nn.Module):
    """encoder + method (``models/methods``) + head.

    * the method decides what trains besides the head (prefix, prompt, PEFT's prefix, or the whole
      encoder) and how inputs pass through the encoder; every method but ``finetune`` freezes it;
    * ``layers``: the head reads the last hidden layer (``last``, as the paper) or a learned mix of
      every layer's output (``mix``, ``models/readout.py``);
    * inputs of shape (B, C, n) are C choices per example (multiple choice).
    """

    # The heads return a mean loss and ignore ``num_items_in_batch``: tell the Trainer (which otherwise
    # infers the opposite from ``**head_inputs``) to average over gradient accumulation and processes itself.
    accepts_loss_kwargs = False

    def __init__(self, backbone: nn.Module, head: nn.Module, method: str | AdaptationMethod = "prefix",
                 config=None, layers: str = "last", mix: LayerMix | None = None) -> None:
        super().__init__()
        if layers not in LAYERS:
            raise ValueError(f"unknown layers '{layers}'; choose from {', '.join(LAYERS)}")
        if isinstance(method, str):
            spec = get_method(method)
            method = spec.implementation_class()(backbone, config if config is not None else spec.config_class())
        self.spec = get_method(method.name)
        # registration order = parameter order: the encoder, the head, then the method's parameters (the
        # order before the registry; gradient clipping sums per-parameter norms in this order, so another
        # order changes the total norm in its last bits and the run after some hundred steps)
        self.backbone, self.head, self.method = backbone, head, method
        self.layers = layers
        self.precision = "fp32"  # of the backbone's forward at inference: fp32, bf16 (autocast) or int8
        self.mix = (mix or LayerMix(backbone.config.num_hidden_layers + 1)) if layers == "mix" else None
        for parameter in backbone.parameters():
            parameter.requires_grad_(False)
        method.mark_trainable(backbone)  # what of the encoder the method trains (all of it when fine-tuning)

    @property
    def method_name(self) -> str:
        return self.method.name

    # ------------------------------------------------------------------ forward
    def encode(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
               token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        """The hidden states the head reads (B, n, hidden), for the real tokens only."""
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        with autocast(self.precision, input_ids.device.type):
            out = self.method.encode(self.backbone, input_ids, attention_mask, token_type_ids,
                                     all_layers=self.mix is not None)
        dtype = next(self.head.parameters()).dtype  # the head reads states in its own (fp32) dtype, also after bf16
        if self.mix is None:
            return out.last_hidden_state.to(dtype)
        return self.mix(tuple(h.to(dtype) for h in out.hidden_states))

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                token_type_ids: torch.Tensor | None = None, labels: torch.Tensor | None = None,
                **head_inputs) -> TaskOutput:
        if input_ids.dim() == 3:  # (B, C, n): score every choice with the same encoder and prefix
            head_inputs["num_choices"] = input_ids.shape[1]
            flat = lambda t: None if t is None else t.reshape(-1, t.shape[-1])  # noqa: E731
            input_ids, attention_mask, token_type_ids = flat(input_ids), flat(attention_mask), flat(token_type_ids)
        hidden = self.encode(input_ids, attention_mask, token_type_ids)
        logits = self.head(hidden, attention_mask=attention_mask, **head_inputs)
        return TaskOutput(loss=None if labels is None else self.head.loss(logits, labels), logits=logits)

    def enable_gradient_checkpointing(self) -> None:
        """Recompute each encoder layer's activations during backward instead of storing them.

        Non-reentrant checkpointing only: the reentrant kind passes gradients only to a layer's
        tensor arguments, and the prefix reaches attention through its slot, not as an argument.
        """
        kwargs = {"use_reentrant": False, **self.method.checkpointing_kwargs()}
        # transformers 5.24 renamed the method; earlier 5.x releases only have the old name
        enable = getattr(self.backbone, "activation_checkpointing_enable", None)
        if enable is not None:
            enable(activation_checkpointing_kwargs=kwargs)
        else:
            self.backbone.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)

    def head_parameters(self) -> list[nn.Parameter]:
        """The randomly initialised readout: the head and, with ``layers="mix"``, the layer weights."""
        return [*self.head.parameters(), *([] if self.mix is None else self.mix.parameters())]

    def set_precision(self, precision: str) -> "AdaptedModel":
        """Run the backbone's forward in ``precision`` from now on (int8 quantizes it in place: inference only)."""
        check_precision(precision, next(self.parameters()).device.type)
        if precision == "int8":
            quantize_attention_int8(self.backbone)
        self.precision = precision
        return self

    @contextlib.contextmanager
    def inference(self, precision: str = "fp32") -> Iterator["AdaptedModel"]:
        """A model to predict with in ``precision``: this one (bf16 for the duration), or an int8 copy."""
        if precision == "int8":
            yield copy.deepcopy(self).set_precision("int8")  # the copy's slot and hooks stay its own
            return
        previous = self.precision
        self.set_precision(precision)
        try:
            yield self
        finally:
            self.precision = previous

    # ------------------------------------------------------------------ bookkeeping
    def max_input_length(self) -> int | None:
        """Longest tokenized input the encoder accepts (the prompt and PEFT's prefix eat into it; ours does not)."""
        limit = getattr(self.backbone.config, "max_position_embeddings", None)
        if limit is None:
            return None
        if self.backbone.config.model_type in ("roberta", "xlm-roberta"):
            limit -= 2  # positions start after the padding index
        return limit - self.method.positions_used()

    def method_record(self) -> dict:
        """What an artifact stores to rebuild the method: its registered name and its config."""
        return {"name": self.method.name, "config": asdict(self.method.config)}


def build_model(model_name_or_path: str | None, head: nn.Module, method: str = "prefix", config=None,
                layers: str = "last", attn_implementation: str = "sdpa",
                encoder_dropout: float | None = None) -> AdaptedModel:
    """Load the encoder and wrap it; remembers the encoder's name and fingerprint for artifacts.

    ``head`` is a module, or a function of the encoder's hidden size that builds one; ``encoder_dropout``
    replaces the encoder's own dropout probabilities (``models.backbone.set_dropout``).
    """
    backbone = load_backbone(model_name_or_path, attn_implementation, encoder_dropout)
    encoder_fingerprint = fingerprint(backbone)  # before a method injects its own tensors into the encoder (LoRA)
    if not isinstance(head, nn.Module):
        head = head(backbone.config.hidden_size)
    model = AdaptedModel(backbone, head, method, config, layers)
    model.backbone_name = model_name_or_path
    model.backbone_fingerprint = encoder_fingerprint
    return model

"""One model class for every task and method: a (frozen) encoder, an adaptation method and a head."""
from __future__ import annotations

from dataclasses import asdict
from typing import Callable, Literal

import torch
from torch import nn

from .backbone import fingerprint, load_backbone
from .prefix import PrefixConfig, PrefixEncoder, attention_modules, inject_prefix
from .prompt import PromptConfig, ShallowPrompt

Method = Literal["prefix", "prompt", "finetune", "peft-prefix"]
METHODS: tuple[str, ...] = ("prefix", "prompt", "finetune", "peft-prefix")


def _kv_dim(config) -> int:
    heads = config.num_attention_heads
    return getattr(config, "attention_head_size", config.hidden_size // heads) * heads


class AdaptedModel(nn.Module):
    """encoder + (prefix | prompt | nothing) + head, returning ``{"loss", "logits"}``.

    * ``prefix``: encoder frozen, trainable key/value prefix at every attention layer.
    * ``prompt``: encoder frozen, trainable embeddings prepended at the input only.
    * ``finetune``: every encoder weight trains; no prefix.
    * ``peft-prefix``: the peer baseline, Hugging Face PEFT's prefix tuning (``models/peft_prefix.py``).

    Inputs of shape (B, C, n) are treated as C choices per example (multiple choice).
    """

    # The heads return a mean loss and ignore ``num_items_in_batch``: tell the Trainer (which otherwise
    # infers the opposite from ``**head_inputs``) to average over gradient accumulation and processes itself.
    accepts_loss_kwargs = False

    def __init__(self, backbone: nn.Module, head: nn.Module, method: Method,
                 prefix: PrefixConfig | None = None, prompt: PromptConfig | None = None) -> None:
        super().__init__()
        if method not in METHODS:
            raise ValueError(f"unknown method '{method}'; choose from {', '.join(METHODS)}")
        self.backbone, self.head, self.method = backbone, head, method
        self.prefix_encoder: PrefixEncoder | None = None
        self.prompt: ShallowPrompt | None = None
        self.peft_prefix = None
        if method == "peft-prefix":
            from .peft_prefix import PeftPrefix  # lazy: peft is an optional dependency

            self.peft_prefix = PeftPrefix(backbone, prefix or PrefixConfig())
        elif method == "prefix":
            prefix = prefix or PrefixConfig()
            layers = len(attention_modules(backbone))
            self._slot = inject_prefix(backbone)
            self.prefix_encoder = PrefixEncoder(prefix, layers, _kv_dim(backbone.config))
        elif method == "prompt":
            self.prompt = ShallowPrompt(prompt or PromptConfig(), backbone.get_input_embeddings())
        if method != "finetune":
            for parameter in backbone.parameters():
                parameter.requires_grad_(False)

    # ------------------------------------------------------------------ forward
    def encode(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
               token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        """Last hidden states (B, n, hidden) for the real tokens only."""
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        extra = {} if token_type_ids is None else {"token_type_ids": token_type_ids}
        if self.prompt is not None:
            embeds = self.backbone.get_input_embeddings()(input_ids)
            embeds, attention_mask, token_type_ids = self.prompt(embeds, attention_mask, token_type_ids)
            extra = {} if token_type_ids is None else {"token_type_ids": token_type_ids}
            out = self.backbone(inputs_embeds=embeds, attention_mask=attention_mask, **extra)
            return out.last_hidden_state[:, self.prompt.config.prompt_len:]
        if self.peft_prefix is not None:
            return self.peft_prefix(self.backbone, input_ids, attention_mask, token_type_ids)
        if self.prefix_encoder is None:
            return self.backbone(input_ids=input_ids, attention_mask=attention_mask, **extra).last_hidden_state
        self._slot.set(self.prefix_encoder(input_ids.shape[0]))
        try:
            return self.backbone(input_ids=input_ids, attention_mask=attention_mask, **extra).last_hidden_state
        finally:
            self._slot.set(None)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                token_type_ids: torch.Tensor | None = None, labels: torch.Tensor | None = None,
                **head_inputs) -> dict[str, torch.Tensor | None]:
        if input_ids.dim() == 3:  # (B, C, n): score every choice with the same encoder and prefix
            head_inputs["num_choices"] = input_ids.shape[1]
            flat = lambda t: None if t is None else t.reshape(-1, t.shape[-1])  # noqa: E731
            input_ids, attention_mask, token_type_ids = flat(input_ids), flat(attention_mask), flat(token_type_ids)
        hidden = self.encode(input_ids, attention_mask, token_type_ids)
        logits = self.head(hidden, attention_mask=attention_mask, **head_inputs)
        loss = None if labels is None else self.head.loss(logits, labels)
        return {"loss": loss, "logits": logits}

    def enable_gradient_checkpointing(self) -> None:
        """Recompute each encoder layer's activations during backward instead of storing them.

        Non-reentrant checkpointing only: the reentrant kind passes gradients only to a layer's
        tensor arguments, and the prefix reaches attention through the slot, not as an argument.
        The slot's ``checkpoint_contexts`` gives every recomputation the prefix of its forward.
        """
        if self.peft_prefix is not None:  # PEFT's cache is appended to by every layer: a replay appends twice
            raise ValueError("gradient checkpointing cannot be combined with peft-prefix: PEFT's key/value cache "
                             "is updated again when a layer is recomputed (PEFT refuses it too)")
        kwargs = {"use_reentrant": False}
        if self.prefix_encoder is not None:
            kwargs["context_fn"] = self._slot.checkpoint_contexts
        # transformers 5.24 renamed the method; earlier 5.x releases only have the old name
        enable = getattr(self.backbone, "activation_checkpointing_enable", None)
        if enable is not None:
            enable(activation_checkpointing_kwargs=kwargs)
        else:
            self.backbone.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)

    # ------------------------------------------------------------------ bookkeeping
    def max_input_length(self) -> int | None:
        """Longest tokenized input the encoder accepts (the prompt and PEFT's prefix eat into it; ours does not)."""
        limit = getattr(self.backbone.config, "max_position_embeddings", None)
        if limit is None:
            return None
        if self.backbone.config.model_type in ("roberta", "xlm-roberta"):
            limit -= 2  # positions start after the padding index
        if self.peft_prefix is not None:  # PEFT shifts the tokens' positions by the prefix length
            limit -= self.peft_prefix.prefix_len
        return limit - (self.prompt.config.prompt_len if self.prompt is not None else 0)

    def trainable_state_dict(self) -> dict[str, torch.Tensor]:
        """Only what was trained (prefix/prompt + head, or everything when fine-tuning)."""
        trainable = {name for name, p in self.named_parameters() if p.requires_grad}
        return {k: v for k, v in self.state_dict().items() if k in trainable}

    def parameter_counts(self) -> dict[str, float]:
        total = sum(p.numel() for p in self.parameters())
        trainable = sum(p.numel() for p in self.parameters() if p.requires_grad)
        return {"trainable": trainable, "total": total, "trainable_percent": 100.0 * trainable / total}

    def method_config(self) -> dict:
        if self.prefix_encoder is not None:
            return {"prefix": asdict(self.prefix_encoder.config)}
        if self.prompt is not None:
            return {"prompt": asdict(self.prompt.config)}
        if self.peft_prefix is not None:  # same settings type, so load_artifact rebuilds it unchanged
            return {"prefix": asdict(self.peft_prefix.config)}
        return {}


def build_model(model_name_or_path: str | None, head: nn.Module | Callable[[int], nn.Module], method: Method,
                prefix: PrefixConfig | None = None, prompt: PromptConfig | None = None,
                attn_implementation: str = "sdpa") -> AdaptedModel:
    """Load the encoder and wrap it; remembers the encoder's name and fingerprint for artifacts.

    ``head`` is a module, or a function of the encoder's hidden size that builds one.
    """
    backbone = load_backbone(model_name_or_path, attn_implementation)
    if not isinstance(head, nn.Module):
        head = head(backbone.config.hidden_size)
    model = AdaptedModel(backbone, head, method, prefix, prompt)
    model.backbone_name = model_name_or_path
    model.backbone_fingerprint = fingerprint(backbone)
    return model

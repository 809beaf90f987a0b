"""The peer "lora": Hugging Face PEFT's LoRA injected into the frozen encoder's attention projections (or, with
``--lora-targets all-linear``, into every linear layer of the encoder).

PEFT replaces each target ``nn.Linear`` by a LoRA layer that adds ``(alpha / r) * B(A(x))`` to the frozen
projection; ``A`` starts random, ``B`` at zero, so training starts from the encoder as it is.  The
trainable tensors live inside the encoder's modules (``backbone....query.lora_A.default.weight``), which is
why the encoder's fingerprint is taken before injection (``models/adapted.py: build_model``).
"""
from __future__ import annotations

import torch
from torch import nn
from transformers.modeling_outputs import BaseModelOutput

from ..prefix.injection import UnsupportedArchitecture
from .base import AdaptationMethod, run_backbone
from .configs import ALL_LINEAR, LoraConfig
from .peft_import import import_peft

# the attention query and value projections by model_type (PEFT's own table lacks some of ours)
DEFAULT_TARGETS = {
    "bert": ["query", "value"], "roberta": ["query", "value"], "xlm-roberta": ["query", "value"],
    "electra": ["query", "value"], "distilbert": ["q_lin", "v_lin"], "deberta-v2": ["query_proj", "value_proj"],
    "modernbert": ["Wqkv"],  # one fused projection
    # decoders: their query and value projections (Phi-3 and GPT-2 fuse query, key and value into one)
    **{model_type: ["q_proj", "v_proj"] for model_type in ("llama", "mistral", "qwen2", "qwen3", "gemma", "gemma2",
                                                            "gemma3_text", "glm", "glm4", "phi")},
    "phi3": ["qkv_proj"], "gpt2": ["c_attn"],
}


def given_targets(names: list[str] | None) -> list[str] | str | None:
    """``--lora-targets`` as PEFT takes it: None when not given, else the names, or ``all-linear`` (alone)."""
    if not names:
        return None
    if ALL_LINEAR in names:
        if len(names) > 1:
            raise ValueError(f"--lora-targets {ALL_LINEAR} already names every linear layer; give it alone")
        return ALL_LINEAR
    return list(names)


def target_modules(config: LoraConfig, backbone: nn.Module) -> list[str] | str:
    """The modules to adapt: the names given (``all-linear`` alone: PEFT's every linear layer), else the
    architecture's attention query and value projections."""
    given = given_targets(config.target_modules)
    if given is not None:
        return given
    model_type = backbone.config.model_type
    if model_type not in DEFAULT_TARGETS:
        raise UnsupportedArchitecture(f"no default LoRA targets for model_type '{model_type}'; name them with "
                                      f"--lora-targets (module names, e.g. query value)")
    return DEFAULT_TARGETS[model_type]


def checked_targets(targets: list[str] | str, backbone: nn.Module) -> list[str] | str:
    """``targets``, refusing a name that is no linear layer of ``backbone`` (in one line naming the ones it has)."""
    if targets == ALL_LINEAR:
        return targets
    found = {name.rsplit(".", 1)[-1] for name, module in backbone.named_modules()
             if isinstance(module, nn.Linear) or type(module).__name__ == "Conv1D"}  # GPT-2's linear layers
    missing = sorted(set(targets) - found)
    if missing:
        raise UnsupportedArchitecture(f"--lora-targets {' '.join(missing)}: no such linear layer in "
                                      f"{type(backbone).__name__} (it has: {', '.join(sorted(found))})")
    return targets


class Lora(AdaptationMethod):
    name = "lora"

    def __init__(self, backbone: nn.Module, config: LoraConfig) -> None:
        super().__init__(backbone, config)
        peft = import_peft(self.name)
        targets = checked_targets(target_modules(config, backbone), backbone)
        peft_config = peft.LoraConfig(r=config.r, lora_alpha=config.alpha if config.alpha is not None else 2 * config.r,
                                      lora_dropout=config.dropout, target_modules=targets, bias="none")
        peft.inject_adapter_in_model(peft_config, backbone)

    def mark_trainable(self, backbone: nn.Module) -> None:
        for name, parameter in backbone.named_parameters():
            if ".lora_" in name:
                parameter.requires_grad_(True)

    def encode(self, backbone: nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor,
               token_type_ids: torch.Tensor | None = None, all_layers: bool = False) -> BaseModelOutput:
        return run_backbone(backbone, all_layers, input_ids=input_ids, attention_mask=attention_mask,
                            token_type_ids=token_type_ids)

"""Adaptation methods registered by name with their config class (importable without torch).

Each entry names the class that implements the method (``module:Class``, imported on first
use), so the benchmark runner and the CLI can list methods, configs and default learning
rates without loading torch, and an optional dependency (peft) is only needed by its method.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, fields
from typing import Any

from ..options import flag_name
from .configs import (AdaLoraConfig, BitFitConfig, FinetuneConfig, LoraConfig, PeftPrefixConfig, PeftPtuningConfig,
                      PrefixAdapterConfig, PrefixBiasConfig, PrefixConfig, PrefixLoraConfig, PromptConfig)


@dataclass(frozen=True)
class MethodSpec:
    name: str
    config_class: type
    implementation: str  # "package.module:Class"
    description: str
    trains_backbone: bool = False  # every encoder weight trains: the artifact carries a whole encoder
    # rows of several tasks (each with its own instance of the method) share one forward on one encoder
    # (the method implements ``encode_rows``): mixed-task serving and batches
    mixes_rows: bool = False
    # the method leaves the encoder's weights and modules as they are, so one encoder can serve several of its
    # artifacts (each in its own forward unless it also mixes rows)
    keeps_backbone: bool = False

    def build_config(self, values: dict[str, Any] | None = None):
        """The config from stored values (an artifact's), refusing keys the config does not have."""
        values = dict(values or {})
        known = {f.name for f in fields(self.config_class)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"method '{self.name}' has no setting {', '.join(unknown)} (it has: "
                             f"{', '.join(sorted(known)) or 'none'})")
        return self.config_class(**values)

    def flags(self) -> dict[str, str]:
        """The method's command-line flags (``--prefix-len``) -> the config fields they set."""
        return {flag_name(f): f.name for f in fields(self.config_class) if "help" in f.metadata}

    def implementation_class(self) -> type:
        module, _, name = self.implementation.partition(":")
        return getattr(importlib.import_module(module), name)


METHODS: dict[str, MethodSpec] = {}


class UnknownMethod(KeyError):
    def __str__(self) -> str:
        return str(self.args[0])


def register_method(spec: MethodSpec) -> MethodSpec:
    if spec.name in METHODS:
        raise ValueError(f"method '{spec.name}' is already registered")
    METHODS[spec.name] = spec
    return spec


def get_method(name: str) -> MethodSpec:
    if name not in METHODS:
        raise UnknownMethod(f"unknown method '{name}'; registered: {', '.join(METHODS)}")
    return METHODS[name]


register_method(MethodSpec("prefix", PrefixConfig, "models.methods.prefix:DeepPrefix",
                           "P-tuning v2: trainable keys/values in every attention layer, frozen encoder",
                           mixes_rows=True, keeps_backbone=True))
register_method(MethodSpec("finetune", FinetuneConfig, "models.methods.finetune:FineTune",
                           "full fine-tuning: every encoder weight trains", trains_backbone=True))
register_method(MethodSpec("prompt", PromptConfig, "models.methods.prompt:ShallowPrompt",
                           "shallow prompt: trainable embeddings before the input, frozen encoder",
                           keeps_backbone=True))
register_method(MethodSpec("peft-prefix", PeftPrefixConfig, "models.methods.peft_prefix:PeftPrefix",
                           "Hugging Face PEFT's prefix tuning (the peer baseline; needs the package peft)"))
register_method(MethodSpec("lora", LoraConfig, "models.methods.lora:Lora",
                           "Hugging Face PEFT's LoRA on the attention query/value projections, frozen encoder "
                           "(needs the package peft)"))
register_method(MethodSpec("bitfit", BitFitConfig, "models.methods.bitfit:BitFit",
                           "BitFit: only the encoder's bias terms train"))
register_method(MethodSpec("peft-ptuning", PeftPtuningConfig, "models.methods.peft_ptuning:PeftPtuning",
                           "Hugging Face PEFT's P-tuning (v1): an MLP prompt encoder before the input, frozen encoder "
                           "(needs the package peft)"))
register_method(MethodSpec("prefix-bias", PrefixBiasConfig, "models.methods.prefix_deltas:PrefixBias",
                           "the deep prefix plus a per-task delta on every bias of the frozen encoder (mixes rows of "
                           "tasks in one forward)", mixes_rows=True, keeps_backbone=True))
register_method(MethodSpec("prefix-lora", PrefixLoraConfig, "models.methods.prefix_deltas:PrefixLora",
                           "the deep prefix plus per-task low-rank deltas on the attention value and output "
                           "projections, the feed-forward projections, or both (--delta-targets; mixes rows of tasks "
                           "in one forward)", mixes_rows=True, keeps_backbone=True))
register_method(MethodSpec("prefix-adapter", PrefixAdapterConfig, "models.methods.prefix_deltas:PrefixAdapter",
                           "MAM adapter: the deep prefix plus a per-task scaled parallel adapter beside every "
                           "feed-forward block (mixes rows of tasks in one forward)", mixes_rows=True,
                           keeps_backbone=True))
register_method(MethodSpec("adalora", AdaLoraConfig, "models.methods.adalora:AdaLora",
                           "Hugging Face PEFT's AdaLoRA on every linear layer, its rank budget pruned while training "
                           "on a schedule sized to the run, frozen encoder (needs the package peft)"))

"""Encoders adapted for a task: deep prefix (P-tuning v2), shallow prompt, or full fine-tuning.

The prefix machinery lives in ``models/prefix/`` (``injection.py`` is where prefixes enter attention).
"""
from .adapted import METHODS, AdaptedModel, build_model
from .backbone import DEFAULT_MODEL, load_backbone, load_tokenizer
from .prefix import PrefixConfig, PrefixEncoder, inject_prefix
from .prompt import PromptConfig, ShallowPrompt

__all__ = [
    "DEFAULT_MODEL",
    "METHODS",
    "AdaptedModel",
    "PrefixConfig",
    "PrefixEncoder",
    "PromptConfig",
    "ShallowPrompt",
    "build_model",
    "inject_prefix",
    "load_backbone",
    "load_tokenizer",
]

"""Adaptation methods: one interface (``base.AdaptationMethod``), registered by name (``registry.py``).

Importing this package (or ``.registry`` / ``.configs``) does not import torch; each method's
implementation is imported when it is first built.
"""
from .configs import (BitFitConfig, FinetuneConfig, LoraConfig, PeftPrefixConfig, PeftPtuningConfig, PrefixConfig,
                      PromptConfig)
from .registry import METHODS, MethodSpec, UnknownMethod, get_method, register_method

__all__ = ["METHODS", "BitFitConfig", "FinetuneConfig", "LoraConfig", "MethodSpec", "PeftPrefixConfig",
           "PeftPtuningConfig", "PrefixConfig", "PromptConfig", "UnknownMethod", "get_method", "register_method"]

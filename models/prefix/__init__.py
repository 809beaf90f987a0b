"""Deep prefix machinery (P-tuning v2): the prefix encoder and the injection into attention.

The method object that uses it is ``models/methods/prefix.py``; its settings are
``models.methods.configs.PrefixConfig``.
"""
from ..methods.configs import PrefixConfig
from .encoder import PrefixEncoder
from .injection import SUPPORTED_ARCHITECTURES, UnsupportedArchitecture, attention_modules, inject_prefix

__all__ = [
    "PrefixConfig",
    "PrefixEncoder",
    "SUPPORTED_ARCHITECTURES",
    "UnsupportedArchitecture",
    "attention_modules",
    "inject_prefix",
]

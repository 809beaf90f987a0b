"""Deep prefix tuning (P-tuning v2): config, prefix encoder and the injection into attention."""
from .config import PrefixConfig
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

"""Shallow prompt tuning (Lester et al. 2021 / P-tuning v1 style): trainable input embeddings only."""
from .prompt import PromptConfig, ShallowPrompt

__all__ = ["PromptConfig", "ShallowPrompt"]

"""Heads registered by name, so configs and artifacts can name the head they use."""
from __future__ import annotations

from typing import Callable

from torch import nn

HEADS: dict[str, type[nn.Module]] = {}


def register_head(name: str) -> Callable[[type[nn.Module]], type[nn.Module]]:
    def decorate(cls: type[nn.Module]) -> type[nn.Module]:
        if name in HEADS:
            raise ValueError(f"head '{name}' is already registered")
        HEADS[name] = cls
        cls.head_name = name
        return cls

    return decorate


def build_head(name: str, **kwargs) -> nn.Module:
    """Instantiate the head registered as ``name`` with its constructor arguments."""
    if name not in HEADS:
        raise KeyError(f"unknown head '{name}'; registered: {', '.join(sorted(HEADS))}")
    return HEADS[name](**kwargs)

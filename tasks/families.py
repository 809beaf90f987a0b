"""Every task family by name (what artifacts record as ``task.family``), imported on first use.

Only the cross-family tools (``tasks.multitask``, ``tasks.serve``) look families up here; the families
themselves never import each other.
"""
from __future__ import annotations

import importlib

from .common.errors import UsageError

# family name -> "module:attribute" of its TaskFamily instance
FAMILIES = {
    "ner": "tasks.ner.family:FAMILY",
    "qa": "tasks.qa.family:FAMILY",
    "glue": "tasks.glue.family:GLUE_FAMILY",
    "superglue": "tasks.glue.family:SUPERGLUE_FAMILY",
    "srl": "tasks.srl.family:FAMILY",
}


def get_family(name: str):
    if name not in FAMILIES:
        raise UsageError(f"unknown task family '{name}'; known: {', '.join(FAMILIES)}")
    module, _, attribute = FAMILIES[name].partition(":")
    return getattr(importlib.import_module(module), attribute)

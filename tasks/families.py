"""Every task family by name (what artifacts record as ``task.family``), imported on first use.

Only the cross-family tools (``tasks.multitask``, ``tasks.serve``) look families up here; the families
themselves never import each other.  A name leads to the family's flags first (``get_flags``: its
``settings.py``, no torch, what a command line is built from), and they to the family (``get_family``).
"""
from __future__ import annotations

import importlib

from .common.errors import UsageError

# family name -> "module:attribute" of its FamilyFlags (tasks/common/settings.py), which names the family itself
FAMILIES = {
    "ner": "tasks.ner.settings:FLAGS",
    "qa": "tasks.qa.settings:FLAGS",
    "glue": "tasks.glue.settings:GLUE_FLAGS",
    "superglue": "tasks.glue.settings:SUPERGLUE_FLAGS",
    "srl": "tasks.srl.settings:FLAGS",
}


def get_flags(name: str):
    """The family's ``FamilyFlags``: its name, flags and defaults, importable without torch."""
    if name not in FAMILIES:
        raise UsageError(f"unknown task family '{name}'; known: {', '.join(FAMILIES)}")
    module, _, attribute = FAMILIES[name].partition(":")
    return getattr(importlib.import_module(module), attribute)


def get_family(name: str):
    """The family (``TaskFamily``) itself, imported now."""
    return get_flags(name).load()

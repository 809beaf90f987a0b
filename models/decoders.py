"""What a decoder (Llama, Qwen, Gemma, Mistral, GLM, Phi, GPT-2) needs besides the prefix itself to serve NLU heads.

The prefix enters decoders through the one injection mechanism (``models/prefix/injection.py``); here are the
settings around it:

* ``attention``: ``causal`` (the model as pre-trained: each token sees the prefix and the tokens before it) or
  ``bidirectional`` (every token sees every real token; padding stays masked), for encoder-style tasks;
* no key/value cache: nothing here generates;
* a tokenizer without a pad token pads with its end-of-sequence token (no new embedding; padding is masked
  anyway), on the right, so that every row's tokens keep positions 0..n-1;
* sequence heads pool the last real token (the only one that has seen the whole input under causal attention).
"""
from __future__ import annotations

from torch import nn

from .choices import ATTENTION_MODES
from .prefix.injection import UnsupportedArchitecture, attention_modules, is_decoder

DECODER_POOLING = "last"


def attention_mode(backbone: nn.Module) -> str:
    """How ``backbone``'s self-attention runs now: ``causal`` or ``bidirectional``."""
    if not is_decoder(backbone.config):
        return "bidirectional"
    return "causal" if getattr(backbone.config, "is_causal", True) else "bidirectional"


def set_attention(backbone: nn.Module, mode: str | None) -> None:
    """Make a decoder's attention ``mode`` (None: leave the model's own); refuse ``causal`` for an encoder.

    transformers' own switch: ``config.is_causal = False`` makes its mask builders build bidirectional (padding-only)
    masks, and each attention module's ``is_causal = False`` keeps sdpa from applying its causal shortcut when it
    gets no mask at all.
    """
    if mode is None:
        return
    if mode not in ATTENTION_MODES:
        raise ValueError(f"unknown attention '{mode}'; choose from {', '.join(ATTENTION_MODES)}")
    if not is_decoder(backbone.config):
        if mode == "causal":
            raise UnsupportedArchitecture(f"--attention causal: '{backbone.config.model_type}' is an encoder, its "
                                          "attention is bidirectional")
        return
    causal = mode == "causal"
    backbone.config.is_causal = causal
    for module in attention_modules(backbone):
        module.is_causal = causal


def prepare_decoder(backbone: nn.Module, attention: str | None = None) -> nn.Module:
    """A loaded decoder ready for NLU: no cache, ``attention`` as asked.  Encoders pass through (``attention``
    checked)."""
    if is_decoder(backbone.config):
        backbone.config.use_cache = False
    set_attention(backbone, attention)
    return backbone


def pad_like_a_decoder(tokenizer, rows: int | None = None, where: str = "this tokenizer") -> None:
    """Give a decoder's tokenizer a pad token without adding an embedding (its eos, else bos or unk), padding right.

    Right padding keeps every row's real tokens at positions 0..n-1 (left padding would shift them under absolute
    positions, GPT-2) and puts the last real token where ``last`` pooling finds it from the mask.  ``rows`` is the
    model's embedding size: a pad token past it (a tokenizer class's default pad, such as Qwen2's ``<|endoftext|>``,
    added on load to a vocabulary that lacks it) would fail in the embedding lookup of the first padded batch, so it
    is replaced as a missing one is.
    """
    def fits(token: str | None) -> bool:
        return token is not None and (rows is None or tokenizer.convert_tokens_to_ids(token) < rows)

    if not fits(tokenizer.pad_token):
        substitute = next((t for t in (tokenizer.eos_token, tokenizer.bos_token, tokenizer.unk_token) if fits(t)),
                          None)
        if substitute is None:
            raise ValueError(f"{where}: no pad, eos, bos or unk token within the model's {rows} embedding rows to pad "
                             "with")
        tokenizer.pad_token = substitute
    tokenizer.padding_side = "right"

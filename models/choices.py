"""The model flags' choices and default, and the error a missing encoder raises: importable without torch.

The command line builds its parser from these (``tasks/common/settings.py``), so ``--help`` and usage errors come
before torch is imported; the modules that use them (``backbone.py``, ``decoders.py``, ``precision.py``,
``quantize.py``, ``readout.py``) import them from here.
"""
from __future__ import annotations

DEFAULT_MODEL = "bundled:all-MiniLM-L6-v2"
ATTENTION_MODES = ("causal", "bidirectional")  # a decoder's --attention
PRECISIONS = ("fp32", "bf16", "int8")  # of the frozen backbone when evaluating or predicting
QUANTIZE_SCHEMES = ("int8", "nf4")  # what --quantize-base offers
REFUSED_SCHEMES = {
    "dynamic-int8": "torch.ao dynamic int8 quantisation cuts the gradient to its input (its kernels have no input "
                    "derivative), so no prefix before the last quantised layer would train; use --quantize-base int8",
}
LAYERS = ("last", "mix")  # what a head reads: the last layer, or a learned mix of every layer


class EncoderNotFound(OSError):
    """Neither a local folder nor something the hub could give (one line, for the CLI to print)."""

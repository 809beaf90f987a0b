"""A quantised frozen base (``--quantize-base``): the base's linear layers stored in low precision, trained through.

P-tuning v2 trains nothing inside the base, so its weights can be stored in fewer bits while the prefix and the
head train in fp32.  What matters is that the gradient still flows *through* every quantised layer to its input:
the prefix of layer l reaches the loss through every later layer.

* ``int8`` (no dependency): ChatGLM-style weight-only quantisation.  Every linear layer of the base (attention and
  feed-forward; not the embeddings) keeps an int8 weight and one fp32 scale per output row (absmax / 127); the
  forward dequantises the weight and runs an ordinary ``F.linear``, so autograd passes the gradient to the input
  exactly as through the fp32 layer (with the dequantised weight), and no gradient reaches the stored weight
  (a buffer).  Weights take a quarter of their fp32 memory; compute stays fp32 (or bf16 with ``--bf16``).
* ``nf4``: bitsandbytes' 4-bit NormalFloat ``Linear4bit`` (QLoRA's), only where the optional package bitsandbytes is
  importable (it quantises on the GPU); refused in one line otherwise.
* ``dynamic-int8`` (torch.ao dynamic quantisation, what ``--eval-precision int8`` uses for inference) is refused:
  its quantised kernels have no derivative for their input, so the output looks differentiable but the gradient
  stops there and every prefix before the last quantised layer would silently get none.

The scheme is part of the base: an artifact records it (``base_options``) and loading rebuilds the same base; the
artifact itself holds only the trained tensors.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from .choices import QUANTIZE_SCHEMES, REFUSED_SCHEMES


class QuantizationUnavailable(ValueError):
    """A scheme this install cannot offer, or one refused outright (one line, for the CLI to print)."""


class Int8Linear(nn.Linear):
    """A frozen linear layer stored as int8 rows with one fp32 scale per output row, dequantised in ``forward``.

    A subclass of ``nn.Linear`` (its ``weight`` is a property giving the dequantised matrix) so that what looks for
    linear layers by type still finds it: LoRA wraps it (QLoRA-style), the per-task deltas hook it.
    """

    def __init__(self, weight: torch.Tensor, bias: nn.Parameter | None) -> None:
        nn.Module.__init__(self)  # not nn.Linear's: it would allocate an fp32 weight again
        self.out_features, self.in_features = weight.shape
        rows = weight.detach().float()
        scale = rows.abs().amax(dim=1).clamp(min=torch.finfo(torch.float32).tiny) / 127.0
        self.register_buffer("weight_int8", torch.round(rows / scale[:, None]).clamp(-127, 127).to(torch.int8))
        self.register_buffer("weight_scale", scale)
        self.bias = bias

    @property
    def weight(self) -> torch.Tensor:  # type: ignore[override]
        return self.weight_int8.to(self.weight_scale.dtype) * self.weight_scale[:, None]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bias = None if self.bias is None else self.bias.to(x.dtype)
        return F.linear(x, self.weight.to(x.dtype), bias)


def _linear_weight(module: nn.Module) -> torch.Tensor | None:
    """The (out, in) weight of a linear layer: ``nn.Linear``, or transformers' ``Conv1D`` (GPT-2, stored (in, out))."""
    if isinstance(module, nn.Linear) and not isinstance(module, Int8Linear):
        return module.weight
    if type(module).__name__ == "Conv1D" and hasattr(module, "nf"):
        return module.weight.t()
    return None


def _nf4_linear(weight: torch.Tensor, bias: nn.Parameter | None) -> nn.Module:
    import bitsandbytes as bnb  # checked importable by quantize_base

    layer = bnb.nn.Linear4bit(weight.shape[1], weight.shape[0], bias=bias is not None, compute_dtype=torch.float32,
                              quant_type="nf4")
    layer.weight = bnb.nn.Params4bit(weight.detach().contiguous(), requires_grad=False, quant_type="nf4")
    if bias is not None:
        layer.bias = bias
    return layer


def check_scheme(scheme: str) -> None:
    """Refuse a scheme that is unknown, refused outright, or whose package is missing (QuantizationUnavailable)."""
    if scheme in REFUSED_SCHEMES:
        raise QuantizationUnavailable(f"--quantize-base {scheme} is refused: {REFUSED_SCHEMES[scheme]}")
    if scheme not in QUANTIZE_SCHEMES:
        raise QuantizationUnavailable(f"unknown --quantize-base '{scheme}'; choose from {', '.join(QUANTIZE_SCHEMES)}")
    if scheme == "nf4":
        try:
            import bitsandbytes  # noqa: F401
        except ImportError:
            raise QuantizationUnavailable("--quantize-base nf4 needs the optional package bitsandbytes (pip install "
                                          "bitsandbytes, with a GPU); --quantize-base int8 needs nothing") from None


def quantize_base(backbone: nn.Module, scheme: str) -> int:
    """Replace every linear layer of ``backbone`` by its ``scheme`` version, in place; returns how many.

    Call it on the bare base, before a method injects anything: the method then adapts the quantised layers.
    """
    check_scheme(scheme)
    build = Int8Linear if scheme == "int8" else _nf4_linear
    targets = [(name, module) for name, module in backbone.named_modules() if _linear_weight(module) is not None]
    for name, module in targets:
        parent_name, _, child = name.rpartition(".")
        parent = backbone.get_submodule(parent_name) if parent_name else backbone
        layer = build(_linear_weight(module), module.bias)
        layer.requires_grad_(False)
        setattr(parent, child, layer)
    if not targets:
        raise QuantizationUnavailable(f"no linear layer to quantise in {type(backbone).__name__}")
    return len(targets)


def is_quantized(backbone: nn.Module) -> bool:
    return any(isinstance(m, Int8Linear) or type(m).__name__ == "Linear4bit" for m in backbone.modules())

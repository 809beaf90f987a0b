"""Running the frozen backbone in lower precision: what the hardware offers, and the two schemes.

The frozen encoder is the whole cost of inference and most of training, and it never changes, so it
can run in lower precision while everything trained (prefix, head, layer mix) stays fp32:

* ``bf16``: the backbone's forward under ``torch.autocast`` in bfloat16, where the hardware has
  native bf16 matrix units (CPUs with AVX512-BF16 or AMX-BF16, GPUs with bf16); on others it would
  be emulated and slower than fp32, so it is refused there.  Measured on the bundled encoder
  (benchmarks/results/speed.md): hidden states at cosine 0.9999 to fp32.
* ``int8``: dynamic int8 quantization (per-channel weights, per-tensor activations, torch.ao) of the
  attention projections only (query, key, value and attention output). Quantizing the feed-forward
  layers too drops the hidden states' cosine to fp32 to 0.87 on the bundled encoder (their inputs
  have outlier activations), so they stay fp32; see benchmarks/README.md for what int8 buys.
"""
from __future__ import annotations

import contextlib
import warnings
from functools import lru_cache
from pathlib import Path

import torch
from torch import nn

PRECISIONS = ("fp32", "bf16", "int8")
ISA_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "avx512_fp16", "amx_tile", "amx_bf16", "amx_int8")


@lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    """The instruction-set flags this CPU reports (Linux /proc/cpuinfo; empty elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def instruction_sets() -> list[str]:
    """The vector and matrix instruction sets that matter here, as this CPU reports them."""
    return [flag for flag in ISA_FLAGS if flag in cpu_flags()]


def native_bf16(device: str = "cpu") -> bool:
    """Whether bf16 matrix multiplication runs natively (not emulated) on ``device``."""
    if device.startswith("cuda"):
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    return bool({"avx512_bf16", "amx_bf16"} & cpu_flags())


def check_precision(precision: str, device: str = "cpu") -> None:
    """Refuse a precision this machine would only emulate (ValueError with the reason)."""
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision '{precision}'; choose from {', '.join(PRECISIONS)}")
    if precision == "bf16" and not native_bf16(device):
        raise ValueError(f"bf16 would be emulated on this {device.upper()} (no AVX512-BF16/AMX-BF16"
                         f"{'' if device == 'cpu' else ' support'}): slower than fp32, so it is refused; use fp32")


def autocast(precision: str, device: str = "cpu"):
    """The context the backbone's forward runs in (bf16 autocast, or nothing)."""
    if precision == "bf16":
        return torch.autocast(device_type="cuda" if device.startswith("cuda") else "cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()


INT8_LAYERS = ("query", "key", "value", "attention.output.dense",  # BERT family names
               "q_lin", "k_lin", "v_lin", "out_lin",  # DistilBERT
               "query_proj", "key_proj", "value_proj")  # DeBERTa-v2


def quantize_attention_int8(backbone: nn.Module) -> nn.Module:
    """Quantize ``backbone``'s attention projections to dynamic int8, in place (CPU inference only).

    Projections that carry a prefix hook (DeBERTa's key/value, ``models/prefix/injection.py``) stay
    fp32: replacing them would drop the hook and with it the prefix.
    """
    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

    names = {name for name, module in backbone.named_modules()
             if isinstance(module, nn.Linear) and name.endswith(INT8_LAYERS) and not hasattr(module, "_ptv2_slot")}
    if not names:
        raise ValueError(f"no attention projection found to quantize in {type(backbone).__name__}")
    with warnings.catch_warnings():  # torch 2.13 marks torch.ao.quantization deprecated (in favour of torchao,
        warnings.simplefilter("ignore")  # whose int8 CPU kernels measured slower than fp32 here)
        return quantize_dynamic(backbone, {name: per_channel_dynamic_qconfig for name in names},
                                dtype=torch.qint8, inplace=True)

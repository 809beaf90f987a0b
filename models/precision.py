"""Running the frozen backbone in lower precision: what the hardware offers, and the two schemes.

The frozen encoder is the whole cost of inference and most of training, and it never changes, so it
can run in lower precision while everything trained (prefix, head, layer mix) stays fp32:

* ``bf16``: the backbone in bfloat16, where the hardware has native bf16 matrix units (CPUs with
  AVX512-BF16 or AMX-BF16, GPUs with bf16); on others it would be emulated and slower than fp32, so it
  is refused there.  Two ways, chosen by what trains:

  - a frozen encoder (no encoder tensor takes gradients: prefix, prompt, peft-prefix, peft-ptuning, and
    every method at inference unless it trains encoder tensors) has its weights cast to bf16 once
    (``cast_weights``; the fp32 tensors are kept on the CPU and put back exactly by ``restore_weights``);
  - an encoder whose tensors train (finetune, BitFit, LoRA) runs under ``torch.autocast``, whose fp32
    master weights the optimizer needs.

  Why not autocast everywhere: autocast casts every fp32 weight to bf16 on every call (it caches the casts
  of weights that require grad only, so a frozen encoder's weights are cast again at every use, forward
  and backward).  In a small, launch-bound model those extra kernels are a large share of the step.  On
  the bundled encoder (prefix 32, one thread of a 2-core AVX512-BF16 EPYC under load, medians of 15): a
  1x16 training step took 38.1 ms under autocast, 26.2 ms cast once, 36.0 ms in fp32 (inference 12.3 /
  10.2 / 13.6 ms); at NER's 16x32 steps and 64x32 inference both bf16 ways took the same (227 / 222 ms
  and 275 / 267 ms, fp32 516 and 781 ms), also at 16x64 within the noise.  Hidden states on the bundled
  encoder: cosine 0.9999 to fp32 (benchmarks/results/speed.md).
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

from .choices import PRECISIONS

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
    if precision == "int8" and device.startswith("cuda"):
        raise ValueError("int8 (dynamic quantization, a CPU kernel) runs on the CPU only; use fp32 or bf16 on a GPU, "
                         "or --device cpu")


def no_attention_plans_per_shape() -> None:
    """Keep half-precision attention off cuDNN's backend on a GPU (the flash / memory-efficient kernels serve it).

    For bf16/fp16, PyTorch's SDPA prefers cuDNN attention on recent GPUs, which builds an execution plan for
    every new input shape. Our batches are padded to their own longest input, so nearly every batch of a run or
    of a predict is a new shape, and each plan costs far more than the step: measured on an H200 (torch 2.11),
    50 new lengths took 4.56 s in bf16 with cuDNN attention against 0.25 s without, and the same 50 again 0.20 s.
    That made --bf16 training and bf16 predict slower than fp32 (benchmarks/README.md, the GPU check).
    """
    if torch.cuda.is_available() and hasattr(torch.backends.cuda, "enable_cudnn_sdp"):
        torch.backends.cuda.enable_cudnn_sdp(False)


def autocast(precision: str, device: str = "cpu"):
    """The context the backbone's forward runs in (bf16 autocast, or nothing)."""
    if precision == "bf16":
        if device.startswith("cuda"):
            no_attention_plans_per_shape()
        return torch.autocast(device_type="cuda" if device.startswith("cuda") else "cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()


FP32_WEIGHTS = "_ptv2_fp32_weights"  # attribute of an encoder cast by cast_weights: {name: its fp32 tensor, on CPU}


def cast_weights(backbone: nn.Module, dtype: torch.dtype = torch.bfloat16) -> None:
    """Cast every floating-point parameter of ``backbone`` to ``dtype`` once, in place (the same Parameter objects,
    new data), keeping the fp32 tensors to put back exactly (``restore_weights``).  Buffers stay as they are
    (rotary frequencies keep fp32).  The state lives on the encoder, so models that share it share it too; a
    second call does nothing.

    The fp32 tensors are kept on the CPU: on a GPU the cast encoder then takes half the memory, and restoring
    is one host-to-device copy.
    """
    if getattr(backbone, FP32_WEIGHTS, None) is not None:
        return
    no_attention_plans_per_shape()
    kept = {}
    for name, parameter in backbone.named_parameters():
        if parameter.is_floating_point() and parameter.dtype != dtype:
            kept[name] = parameter.data.to("cpu")
            parameter.data = parameter.data.to(dtype)
    setattr(backbone, FP32_WEIGHTS, kept)


def restore_weights(backbone: nn.Module) -> None:
    """Put back the tensors ``cast_weights`` kept (on each parameter's device now); nothing if it was not cast."""
    kept = getattr(backbone, FP32_WEIGHTS, None)
    if kept is None:
        return
    for name, tensor in kept.items():
        parameter = backbone.get_parameter(name)
        parameter.data = tensor.to(parameter.device)
    setattr(backbone, FP32_WEIGHTS, None)


def weights_cast(backbone: nn.Module) -> bool:
    """Whether ``backbone``'s weights are cast (``cast_weights``) rather than fp32."""
    return getattr(backbone, FP32_WEIGHTS, None) is not None


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

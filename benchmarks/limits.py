"""The machine's own limit for the encoder's arithmetic, measured in the same process as the methods.

An encoder forward is almost all matrix multiplication: per layer the Q/K/V, attention-output and
two feed-forward projections (``tokens x in -> out``) and the two attention products
(``(batch x heads) x length x (prefix + length)``).  A decoder's keys/values are as wide as its key/value heads
(grouped-query attention) and a gated feed-forward (Llama, Qwen, Gemma, Mistral, GLM, Phi-3) has three
projections.  ``matmul_limit`` times exactly those shapes
with plain ``torch.mm``/``torch.bmm`` in a precision and returns the FLOP rate the whole forward
would reach if every multiplication ran as fast as it does alone: the ceiling a method's measured
FLOP rate is compared with.  FLOPs count 2 per multiply-add; training steps count the backward as
one more forward for a frozen encoder (input gradients only) and two more when fine-tuning
(input and weight gradients).
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from .device import synchronize

CPU = torch.device("cpu")
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "int8": torch.int8}


@dataclass(frozen=True)
class Shape:
    kind: str  # "linear" (m x k @ k x n) or "attention" (batch of m x k @ k x n)
    batch: int
    m: int
    k: int
    n: int
    count: int  # how often the forward does it

    @property
    def flops(self) -> float:
        return 2.0 * self.batch * self.m * self.k * self.n * self.count


# decoders whose feed-forward is gated (gate and up projections, then down)
GATED = ("llama", "mistral", "qwen2", "qwen3", "gemma", "gemma2", "gemma3_text", "glm", "glm4", "phi3")


def encoder_shapes(config, batch: int, length: int, prefix: int = 0) -> list[Shape]:
    hidden, layers, heads = config.hidden_size, config.num_hidden_layers, config.num_attention_heads
    inner, tokens = config.intermediate_size, batch * length
    dim = getattr(config, "head_dim", None) or hidden // heads
    kv = (getattr(config, "num_key_value_heads", None) or heads) * dim  # fewer key/value heads: narrower K and V
    keys = length + prefix
    if kv == hidden and heads * dim == hidden:
        projections = [Shape("linear", 1, tokens, hidden, hidden, 4 * layers)]  # Q, K, V, attention output
    else:
        projections = [Shape("linear", 1, tokens, hidden, heads * dim, layers),  # Q
                       Shape("linear", 1, tokens, hidden, kv, 2 * layers),  # K, V
                       Shape("linear", 1, tokens, heads * dim, hidden, layers)]  # attention output
    gated = 2 if getattr(config, "model_type", None) in GATED else 1
    return [*projections,
            Shape("linear", 1, tokens, hidden, inner, gated * layers),  # feed-forward in (gate and up)
            Shape("linear", 1, tokens, inner, hidden, layers),  # feed-forward out
            Shape("attention", batch * heads, length, dim, keys, layers),  # scores
            Shape("attention", batch * heads, length, keys, dim, layers)]  # weighted values


def forward_flops(config, batch: int, length: int, prefix: int = 0) -> float:
    return sum(s.flops for s in encoder_shapes(config, batch, length, prefix))


TRAIN_FACTOR = {"frozen": 2.0, "finetune": 3.0}  # forward + backward, in forwards (see the module docstring)


def operands(shape: Shape, dtype: torch.dtype, device: torch.device = CPU) -> tuple[torch.Tensor, torch.Tensor]:
    """Random operands of one multiplication, made on ``device``."""
    if dtype == torch.int8:
        make = lambda *size: torch.randint(-64, 64, size, dtype=torch.int8, device=device)  # noqa: E731
    else:
        make = lambda *size: torch.randn(*size, dtype=dtype, device=device)  # noqa: E731
    if shape.kind == "linear":
        return make(shape.m, shape.k), make(shape.k, shape.n)
    return make(shape.batch, shape.m, shape.k), make(shape.batch, shape.k, shape.n)


def multiply(shape: Shape, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    if a.dtype == torch.int8:  # int8 x int8 -> int32, the kernel dynamic quantization uses
        if shape.kind == "linear":
            return torch._int_mm(a, b)
        return torch.stack([torch._int_mm(x, y) for x, y in zip(a, b)])
    return a @ b


def matmul_rate(shape: Shape, precision: str, repeats: int = 5, device: torch.device = CPU) -> float:
    """GFLOP/s of one such multiplication alone (median of ``repeats`` after a warm-up), on ``device``."""
    a, b = operands(shape, DTYPES[precision], device)
    multiply(shape, a, b)  # warm-up, not timed
    times = []
    for _ in range(repeats):
        synchronize(device)
        start = time.perf_counter()
        multiply(shape, a, b)
        synchronize(device)
        times.append(time.perf_counter() - start)
    times.sort()
    return 2.0 * shape.batch * shape.m * shape.k * shape.n / times[len(times) // 2] / 1e9


def matmul_limit(config, batch: int, length: int, prefix: int, precision: str, device: torch.device = CPU) -> dict:
    """The forward's FLOP rate if each of its multiplications ran as fast as alone; and each shape's rate."""
    shapes = encoder_shapes(config, batch, length, prefix)
    rates = [matmul_rate(s, precision, device=device) for s in shapes]
    seconds = sum(s.flops / (rate * 1e9) for s, rate in zip(shapes, rates))
    return {"precision": precision, "gflops": sum(s.flops for s in shapes) / seconds / 1e9,
            "shapes": [{"kind": s.kind, "batch": s.batch, "m": s.m, "k": s.k, "n": s.n, "gflops": round(r, 1)}
                       for s, r in zip(shapes, rates)]}

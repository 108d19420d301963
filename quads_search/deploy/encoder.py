"""The student as ONNX operators: log-mel [batch, mels, frames] -> intent logits [batch, classes].

The same computation as `core.models.SLUModel` over transformers' `WhisperEncoder`: conv1
(k 3, pad 1), GELU, conv2 (k 3, stride 2, pad 1), GELU, + sinusoidal positions, pre-LN
layers (LayerNorm, multi-head self-attention with the query scaled by head_dim^-0.5 before
QK^T, residual; LayerNorm, fc1, GELU, fc2, residual), final LayerNorm, mean or max over time
(`arch["pooling"]`, mean where absent), linear head. Linear layers are Gemm with transB. GELU is the exact (erf) one, written out
since the Gelu operator needs opset 20; ONNX Runtime fuses the pattern back into one kernel. The positions are computed in-graph
(as `sinusoids` does, in float32) rather than stored: the packed file does not store them either.
"""
from __future__ import annotations

import math
from typing import Callable

from quads_search.config.schema import arch_pooling
from quads_search.deploy.graph import Graph

Weights = Callable[[str], "str | None"]  # parameter name -> its float32 value in the graph (None: not stored)
LAYER_NORM_EPS = 1e-5  # torch.nn.LayerNorm's default, which WhisperEncoder uses


def slu_graph(g: Graph, w: Weights, arch: dict, features: str) -> str:
    """Append the whole student to `g`; returns the logits' name."""
    d_model, heads = int(arch["d_model"]), int(arch["encoder_attention_heads"])
    x = gelu(g, conv1d(g, w, "encoder.conv1", features, stride=1))
    x = gelu(g, conv1d(g, w, "encoder.conv2", x, stride=2))
    x = g.op("Transpose", x, perm=[0, 2, 1])  # [batch, time, d_model]
    x = g.op("Add", x, positions(g, int(arch["max_source_positions"]), d_model))
    rows = g.op("Concat", g.op("Slice", g.op("Shape", x), g.const([0]), g.const([2])), g.const([-1]), axis=0)
    for i in range(int(arch["encoder_layers"])):
        x = encoder_layer(g, w, f"encoder.layers.{i}", x, rows, heads, d_model)
    x = layer_norm(g, w, "encoder.layer_norm", x)
    pool = "ReduceMax" if arch_pooling(arch) == "max" else "ReduceMean"
    z = g.op(pool, x, g.const([1]), keepdims=0)  # [batch, d_model]
    return linear(g, w, "head", z)


def encoder_layer(g: Graph, w: Weights, prefix: str, x: str, rows: str, heads: int, d_model: int) -> str:
    attended = attention(g, w, f"{prefix}.self_attn", layer_norm(g, w, f"{prefix}.self_attn_layer_norm", x),
                         rows, heads, d_model)
    x = g.op("Add", x, attended)
    hidden = gelu(g, linear(g, w, f"{prefix}.fc1", layer_norm(g, w, f"{prefix}.final_layer_norm", x), rows))
    return g.op("Add", x, linear(g, w, f"{prefix}.fc2", hidden, rows))


def attention(g: Graph, w: Weights, prefix: str, x: str, rows: str, heads: int, d_model: int) -> str:
    """Multi-head self-attention over [batch, time, d_model], no mask (Whisper's encoder has none)."""
    head_dim = d_model // heads
    split = g.const([0, 0, heads, head_dim])  # 0 keeps batch and time as they are
    q = g.op("Mul", linear(g, w, f"{prefix}.q_proj", x, rows), g.scalar(head_dim ** -0.5))
    q = g.op("Transpose", g.op("Reshape", q, split), perm=[0, 2, 1, 3])  # [b, h, t, d]
    k = g.op("Transpose", g.op("Reshape", linear(g, w, f"{prefix}.k_proj", x, rows), split), perm=[0, 2, 3, 1])
    v = g.op("Transpose", g.op("Reshape", linear(g, w, f"{prefix}.v_proj", x, rows), split), perm=[0, 2, 1, 3])
    weights = g.op("Softmax", g.op("MatMul", q, k), axis=-1)  # [b, h, t, t]
    out = g.op("Transpose", g.op("MatMul", weights, v), perm=[0, 2, 1, 3])
    return linear(g, w, f"{prefix}.out_proj", g.op("Reshape", out, g.const([0, 0, d_model])), rows)


def linear(g: Graph, w: Weights, prefix: str, x: str, rows: str | None = None) -> str:
    """x·Wᵀ + b as one Gemm with transB, so the weight is used as stored (no transposed copy of it
    at load); a [batch, time, in] input is flattened to rows and `rows` ([batch, time, -1]) restores it."""
    inputs = [w(f"{prefix}.weight")] + ([bias] if (bias := w(f"{prefix}.bias")) else [])
    if rows is None:
        return g.op("Gemm", x, *inputs, transB=1)
    return g.op("Reshape", g.op("Gemm", g.op("Flatten", x, axis=2), *inputs, transB=1), rows)


def conv1d(g: Graph, w: Weights, prefix: str, x: str, stride: int) -> str:
    inputs = [x, w(f"{prefix}.weight")] + ([b] if (b := w(f"{prefix}.bias")) else [])
    return g.op("Conv", *inputs, kernel_shape=[3], pads=[1, 1], strides=[stride])


def layer_norm(g: Graph, w: Weights, prefix: str, x: str) -> str:
    return g.op("LayerNormalization", x, w(f"{prefix}.weight"), w(f"{prefix}.bias"), axis=-1,
                epsilon=LAYER_NORM_EPS)


def gelu(g: Graph, x: str) -> str:
    """x · (1 + erf(x / √2)) / 2, the exact GELU of torch.nn.functional.gelu."""
    erf = g.op("Erf", g.op("Div", x, g.scalar(math.sqrt(2.0))))
    return g.op("Mul", g.op("Mul", x, g.op("Add", erf, g.scalar(1.0))), g.scalar(0.5))


def positions(g: Graph, length: int, channels: int) -> str:
    """transformers' `sinusoids(length, channels)` in float32: [sin(t·f), cos(t·f)], f = 10000^(-i/(c/2-1))."""
    increment = math.log(10000) / (channels // 2 - 1)
    index = g.op("Range", g.scalar(0.0), g.scalar(float(channels // 2)), g.scalar(1.0))
    inverse = g.op("Exp", g.op("Mul", index, g.scalar(-increment)))
    time = g.op("Range", g.scalar(0.0), g.scalar(float(length)), g.scalar(1.0))
    scaled = g.op("Mul", g.op("Unsqueeze", time, g.const([1])), g.op("Unsqueeze", inverse, g.const([0])))
    return g.op("Concat", g.op("Sin", scaled), g.op("Cos", scaled), axis=1)

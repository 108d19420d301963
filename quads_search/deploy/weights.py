"""The tensors of a packed model file as ONNX initializers, each stored at its packed size.

A 1–8-bit tensor keeps its bit-packed uint8 codes (`quant/packing.py`'s layout: code i holds
stream bits [i·b, (i+1)·b), least significant first, stream bit j is bit j mod 8 of byte
j // 8) plus its level table: the k-means codebook, or the affine scale and zero point from
which the graph computes `(arange(2^b) − zero_point) · scale` in float32, as
`quant/packed.py` does. The graph unpacks the codes with BitShift and BitwiseAnd and Gathers
their levels (at 1, 2 and 4 bits it unpacks the 256 byte values once and Gathers the bytes),
so the weight it computes equals `load_packed`'s bit for bit. An fp16 tensor
stays fp16 in the file and is Cast in-graph; every other tensor is stored as the file holds it.
"""
from __future__ import annotations

from math import prod
from typing import Any

import numpy as np
from onnx import TensorProto

from quads_search.deploy.graph import Graph


def float_weight(g: Graph, f: Any, name: str, spec: dict[str, Any]) -> str:
    """The float32 value of stored tensor `name` (`f`: the file opened by safetensors' numpy `safe_open`)."""
    method = spec["method"]
    if method in ("float", "float16"):
        value = f.get_tensor(name)
        stored = g.initializer(name, value)
        return stored if value.dtype == np.float32 else g.op("Cast", stored, to=TensorProto.FLOAT)
    bits, shape = int(spec["bits"]), [int(s) for s in spec["shape"]]
    count = prod(shape)
    idx = f.get_tensor(f"{name}.idx")
    packed, levels = g.initializer(f"{name}.idx", idx), _levels(g, f, name, method, bits)
    if bits < 8 and 8 % bits == 0:  # whole codes in every byte: look the bytes up
        values = g.op("Gather", byte_table(g, levels, bits), g.op("Cast", packed, to=TensorProto.INT32), axis=0)
        if idx.size * (8 // bits) != count:  # the last byte is part padding
            values = g.op("Slice", g.op("Reshape", values, g.const([-1])), g.const([0]), g.const([count]))
    else:
        values = g.op("Gather", levels, unpack_codes(g, packed, bits, count), axis=0)
    return g.op("Reshape", values, g.const(shape))


def byte_table(g: Graph, levels: str, bits: int) -> str:
    """[256, 8 / bits] float32: the levels of the codes each byte value holds, lowest bits first.

    At 1, 2 and 4 bits a byte holds whole codes, so one Gather of the bytes into this table
    dequantizes a tensor: fewer and smaller intermediate tensors than unpacking every code
    first, which is what a runtime that folds the graph at load holds at its peak.
    """
    every_byte = g.op("Unsqueeze", g.const(np.arange(256), np.uint8), g.const([1]))  # [256, 1]
    shifted = g.op("BitShift", every_byte, g.const(np.arange(0, 8, bits), np.uint8), direction="RIGHT")
    codes = g.op("BitwiseAnd", shifted, g.const(2 ** bits - 1, np.uint8))  # [256, 8 / bits]
    return g.op("Gather", levels, g.op("Cast", codes, to=TensorProto.INT32), axis=0)


def _levels(g: Graph, f: Any, name: str, method: str, bits: int) -> str:
    """The 2^bits float32 values the codes index."""
    if method == "kmeans":
        return g.initializer(f"{name}.codebook", f.get_tensor(f"{name}.codebook"))
    if method != "affine":
        raise ValueError(f"{name}: unknown storage method {method!r}")
    scale = g.initializer(f"{name}.scale", f.get_tensor(f"{name}.scale"))
    zero_point = g.initializer(f"{name}.zero_point", f.get_tensor(f"{name}.zero_point"))
    codes = g.op("Range", g.scalar(0.0), g.scalar(float(2 ** bits)), g.scalar(1.0))
    return g.op("Mul", g.op("Sub", codes, zero_point), scale)


def unpack_codes(g: Graph, packed: str, bits: int, count: int) -> str:
    """int32 codes from the uint8 bytes `packed` holds (`pack_bits(codes, bits)`): all of them at 8 bits,
    the first `count` at 3, 5, 6 and 7 bits, where codes straddle bytes (1, 2, 4: `byte_table`)."""
    if bits == 8:
        return g.op("Cast", packed, to=TensorProto.INT32)
    # read the bit stream and weigh `bits` bits at a time
    column = g.op("Unsqueeze", packed, g.const([1]))  # [bytes, 1]
    shifted = g.op("BitShift", column, g.const(np.arange(8), np.uint8), direction="RIGHT")
    stream = g.op("Reshape", g.op("BitwiseAnd", shifted, g.const(1, np.uint8)), g.const([-1]))
    stream = g.op("Slice", stream, g.const([0]), g.const([count * bits]))
    rows = g.op("Cast", g.op("Reshape", stream, g.const([count, bits])), to=TensorProto.INT32)
    weighted = g.op("Mul", rows, g.const(1 << np.arange(bits), np.int32))
    return g.op("ReduceSum", weighted, g.const([1]), keepdims=0)

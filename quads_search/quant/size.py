"""Model size as the paper counts it (nominal) and as a device stores it (packed)."""
from __future__ import annotations

import math

from torch import nn

from quads_search.quant.bits import QUANTIZED_BITS, quantizable_weights
from quads_search.quant.packed import Method

MIB = 2 ** 20


def stored_bytes(count: int, bits: int, method: Method) -> int:
    """Bytes of one tensor in a packed export: codes plus level table, or the float values."""
    if bits in QUANTIZED_BITS:
        table = 4 * 2 ** bits if method == "kmeans" else 4 * 2  # codebook, or scale + zero point
        return math.ceil(count * bits / 8) + table
    return count * bits // 8  # 16: fp16, 32: fp32


def _nominal_bits(params: dict[str, int], bits: dict[str, int], quantizable: list[str]) -> dict[str, int]:
    """Bits per parameter as the paper counts size: params x bits / 8 / 2^20.

    A uniform allocation (every quantizable weight at b bits) counts every parameter at b, so
    whisper-tiny at 4 bits is 7.64 M x 4 bits = 3.65 MiB as in the paper's Table 1. Under a
    mixed one there is no single b: a parameter counts at its own bits, else at the bits of its
    module's weight (a bias at its layer's), else at 32 (LayerNorms, whose weights stay float).
    """
    widths = {bits.get(name, 32) for name in quantizable}
    if len(widths) == 1:
        return dict.fromkeys(params, widths.pop())
    return {name: bits.get(name, bits.get(name.rpartition(".")[0] + ".weight", 32)) for name in params}


def size_report(model: nn.Module, bits: dict[str, int], method: Method = "kmeans") -> dict[str, float]:
    """Params (M), nominal and packed size (MiB) and mean stored bits over trainable parameters.

    `bits` maps full parameter names to bit widths; a parameter not in it is stored as 32-bit
    float. Frozen tensors (Whisper's sinusoidal positions) are no parameters, as in the paper.
    `size_mb` equals the tensor bytes `save_packed` writes; the file adds only its header.
    `size_mb_nominal` follows the paper's convention (see `_nominal_bits`).
    """
    params = {name: p.numel() for name, p in model.named_parameters() if p.requires_grad}
    unknown = sorted(set(bits) - set(params))
    if unknown:
        raise ValueError(f"bits name tensors that are not trainable parameters: {unknown[:5]}")
    total = sum(params.values())
    if not total:
        raise ValueError("the model has no trainable parameters to size")
    nominal = _nominal_bits(params, bits, list(quantizable_weights(model)))
    stored = sum(stored_bytes(count, bits.get(name, 32), method) for name, count in params.items())
    return {
        "params_m": total / 1e6,
        "size_mb_nominal": sum(count * nominal[name] for name, count in params.items()) / 8 / MIB,
        "size_mb": stored / MIB,
        "bits_avg": sum(count * bits.get(name, 32) for name, count in params.items()) / total,
    }

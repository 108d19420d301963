"""Dense bit packing of b-bit codes (b = 1..8) into bytes: ceil(n·b/8) bytes for n codes.

Layout: code i occupies bits [i·b, (i+1)·b) of the stream, least significant bit first,
and stream bit j is bit (j mod 8) of byte j // 8. Codes may straddle bytes (b = 3, 5, 6, 7).
"""
from __future__ import annotations

import torch
from torch import Tensor


def _check_bits(bits: int) -> None:
    if not 1 <= bits <= 8:
        raise ValueError(f"packing needs 1 <= bits <= 8, got {bits=}")


def pack_bits(codes: Tensor, bits: int) -> Tensor:
    """Integer codes in [0, 2^bits) -> a uint8 tensor of ceil(n·bits/8) bytes."""
    _check_bits(bits)
    codes = codes.flatten().long()
    if codes.numel() and not 0 <= int(codes.min()) <= int(codes.max()) < 2 ** bits:
        raise ValueError(f"codes must lie in [0, {2 ** bits}), got [{int(codes.min())}, {int(codes.max())}]")
    shifts = torch.arange(bits, device=codes.device)
    stream = ((codes.unsqueeze(1) >> shifts) & 1).to(torch.uint8).flatten()
    stream = torch.nn.functional.pad(stream, (0, -stream.numel() % 8))
    weights = (1 << torch.arange(8, device=codes.device)).to(torch.uint8)
    return (stream.view(-1, 8) * weights).sum(1, dtype=torch.uint8)


def unpack_bits(data: Tensor, bits: int, count: int) -> Tensor:
    """Inverse of `pack_bits`: the first `count` codes, as int64."""
    _check_bits(bits)
    if data.dtype != torch.uint8 or data.numel() != -(-count * bits // 8):
        raise ValueError(f"expected {-(-count * bits // 8)} uint8 bytes for {count} {bits}-bit codes, "
                         f"got {data.numel()} {data.dtype}")
    shifts = torch.arange(8, device=data.device, dtype=torch.uint8)
    stream = ((data.unsqueeze(1) >> shifts) & 1).flatten()[: count * bits]
    weights = 1 << torch.arange(bits, device=data.device)
    return (stream.view(count, bits).long() * weights).sum(1)

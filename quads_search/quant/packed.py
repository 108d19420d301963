"""The stored form of one quantized tensor: packed b-bit codes into a table of 2^b levels.

Both quantizers store codes into a level table; only the table differs. k-means stores the
table itself (`codebook`, 2^b float32); affine stores `scale` and `zero_point` (float32) and
the table is `(arange(2^b) − zero_point) · scale`. Training snaps weights with the same
float32 arithmetic, so dequantizing a stored tensor reproduces the trained weights bit for bit.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

from quads_search.quant.packing import pack_bits, unpack_bits

Method = Literal["kmeans", "affine"]
LEVEL_PARAMS: dict[str, tuple[str, ...]] = {"kmeans": ("codebook",), "affine": ("scale", "zero_point")}


def affine_levels(scale: Tensor, zero_point: Tensor, bits: int) -> Tensor:
    """The 2^bits values of an affine grid, ascending, float32."""
    codes = torch.arange(2 ** bits, dtype=torch.float32, device=scale.device)
    return (codes - zero_point) * scale


@dataclass(frozen=True)
class PackedTensor:
    """One quantized tensor as written to disk: `idx` bytes plus the level parameters."""

    method: Method
    bits: int
    shape: tuple[int, ...]
    idx: Tensor  # uint8, pack_bits(codes, bits)
    params: dict[str, Tensor]  # the names in LEVEL_PARAMS[method], float32

    @classmethod
    def from_codes(cls, method: Method, bits: int, shape: tuple[int, ...], codes: Tensor,
                   params: dict[str, Tensor]) -> PackedTensor:
        return cls(method, bits, tuple(shape), pack_bits(codes.cpu(), bits),
                   {k: v.detach().float().cpu().clone() for k, v in params.items()})

    def levels(self) -> Tensor:
        if self.method == "kmeans":
            return self.params["codebook"]
        return affine_levels(self.params["scale"], self.params["zero_point"], self.bits)

    def dequantize(self) -> Tensor:
        count = int(torch.Size(self.shape).numel())
        return self.levels()[unpack_bits(self.idx, self.bits, count)].view(self.shape)

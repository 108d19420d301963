"""Asymmetric uniform (affine) quantization, calibrated per tensor (= per layer).

Quantization-aware training keeps a latent float32 copy of every weight: the forward pass
sees its grid value, the backward pass hands the gradient straight through to the latent
weight (within the clipping range), so updates smaller than half a level accumulate until
the weight changes level instead of being rounded away after every step.
"""
from __future__ import annotations

import math
from typing import Literal, get_args

import torch
from torch import Tensor, nn

from quads_search.quant import latent
from quads_search.quant.base import Grid, Quantizer
from quads_search.quant.packed import PackedTensor
from quads_search.quant.sorted1d import SortedValues

Calibration = Literal["minmax", "mse"]
Scale = Literal["calibrated", "learned"]


def calibrate(weight: Tensor, bits: int, how: Calibration, grid: int = 32) -> tuple[Tensor, Tensor]:
    """(scale, zero_point), float32 of shape (1,), for a grid of 2^bits levels over a range.

    "minmax" spans [min, max]. "mse" tries grid×grid ranges whose ends are independently
    shrunk towards the mean by factors in [0.02, 1] (geometric; 1 = minmax) and keeps the
    one with the least squared rounding-plus-clipping error, computed exactly from prefix sums.
    """
    data = SortedValues.of(weight)
    lo, hi = data.values[0].double(), data.values[-1].double()
    steps = 2 ** bits - 1
    if how == "mse":
        centre = data.csum[-1] / data.values.numel()
        shrink = torch.logspace(-1.7, 0, grid, dtype=torch.float64, device=lo.device)
        lows = (centre + (lo - centre) * shrink).repeat_interleave(grid)
        highs = (centre + (hi - centre) * shrink).repeat(grid)
        ramp = torch.arange(steps + 1, dtype=torch.float64, device=lo.device) / steps
        best = data.squared_error(lows[:, None] + (highs - lows)[:, None] * ramp).argmin()
        lo, hi = lows[best], highs[best]
    scale = (hi - lo) / steps if hi > lo else torch.ones_like(lo)  # a constant tensor: any scale
    return scale.float().reshape(1), (-lo / scale).float().reshape(1)


def _scaled_gradient(value: Tensor, factor: float) -> Tensor:
    """`value` exactly in the forward pass, its gradient times `factor` in the backward pass."""
    scaled = value * factor
    return value.detach() + (scaled - scaled.detach())


class AffineGrid(Grid):
    """W ≈ (q − zero_point)·scale with q in [0, 2^b), one (scale, zero_point) per tensor.

    As a parametrization it fake-quantizes the latent weight; the latent weight gets the
    gradient of the elements inside the clipping range (LSQ's clipped straight-through
    estimator). With `learned`, scale and zero point are parameters trained as in LSQ (Esser
    et al. 2020; the zero point as LSQ+'s offset), their gradients scaled by 1/sqrt(n·(2^b − 1))
    so that their steps stay commensurate with the weights' steps.
    """

    scale: Tensor
    zero_point: Tensor

    def __init__(self, scale: Tensor, zero_point: Tensor, bits: int, count: int, learned: bool):
        super().__init__()
        self.top, self.learned = 2 ** bits - 1, learned
        self.gradient_factor = 1 / math.sqrt(count * self.top)
        for key, value in (("scale", scale), ("zero_point", zero_point)):
            if learned:
                setattr(self, key, nn.Parameter(value.detach().clone()))
            else:
                self.register_buffer(key, value)

    def forward(self, weight: Tensor) -> Tensor:
        scale, zero_point = self.scale, self.zero_point
        if self.learned:
            scale = _scaled_gradient(scale, self.gradient_factor)
            zero_point = _scaled_gradient(zero_point, self.gradient_factor)
        level = (weight / scale + zero_point).clamp(0, self.top)
        return (latent.straight_through(level, level.detach().round()) - zero_point) * scale

    def codes(self, weight: Tensor) -> Tensor:
        scale, zero_point = self.scale.detach(), self.zero_point.detach()
        return (weight.detach() / scale + zero_point).round_().clamp_(0, self.top)

    def target(self, weight: Tensor) -> Tensor:
        return (self.codes(weight) - self.zero_point.detach()) * self.scale.detach()

    def update(self, weight: Tensor) -> None:
        """The grid stays as calibrated (or learned): see AffineQuantizer."""

    def pack(self, bits: int, weight: Tensor) -> PackedTensor:
        return PackedTensor.from_codes("affine", bits, weight.shape, self.codes(weight).long(),
                                       {"scale": self.scale, "zero_point": self.zero_point})


class AffineQuantizer(Quantizer):
    """One uniform grid per tensor, calibrated at fit() and then fixed, or learned (`scale="learned"`).

    Re-calibrating during training would cost a sort per tensor ("mse") or let one drifting
    outlier stretch every level ("minmax"). The zero point is a float, not an integer: an
    integer zero point forces 0 to be a level, which at 1 bit leaves only {0, a} instead of {−a, b}.
    """

    method = "affine"

    def __init__(self, model: nn.Module, bits: dict[str, int], calibration: Calibration = "mse",
                 scale: Scale = "calibrated"):
        super().__init__(model, bits)
        if calibration not in get_args(Calibration) or scale not in get_args(Scale):
            raise ValueError(f"need calibration in {get_args(Calibration)} and scale in {get_args(Scale)}, "
                             f"got {calibration=}, {scale=}")
        self.calibration, self.scale_mode = calibration, scale
        self.grids: dict[str, AffineGrid] = {}

    def _grid(self, name: str, scale: Tensor, zero_point: Tensor) -> AffineGrid:
        count = self._plain(name).numel()
        return AffineGrid(scale, zero_point, self.bits[name], count, learned=self.scale_mode == "learned")

    def _fit(self, name: str, weight: Tensor) -> AffineGrid:
        return self._grid(name, *calibrate(weight, self.bits[name], self.calibration))

    def _grid_from_state(self, name: str, state: dict[str, Tensor]) -> AffineGrid:
        return self._grid(name, state["scale"], state["zero_point"])

    def _begin(self, name: str) -> None:
        latent.register(self.model, name, self.grids[name])

    def _after_step(self) -> None:
        if self.scale_mode != "learned" or not self.grids:
            return
        scales = torch.cat([grid.scale.detach() for grid in self.grids.values()])
        smallest = int(scales.argmin())
        if scales[smallest] <= 0:
            name = list(self.grids)[smallest]
            raise FloatingPointError(f"the learned affine scale of {name} reached {scales[smallest].item():.3g} "
                                     "(it must stay > 0): lower the quantize stage's lr")

    def _free(self, name: str) -> Tensor | None:
        return latent.original(self.model, name)

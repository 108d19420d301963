"""Asymmetric uniform (affine) quantization, calibrated per tensor (= per layer)."""
from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

from quads_search.quant.base import Quantizer
from quads_search.quant.packed import PackedTensor
from quads_search.quant.sorted1d import SortedValues

Calibration = Literal["minmax", "mse"]


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


class AffineQuantizer(Quantizer):
    """W ≈ (q − zero_point)·scale with q in [0, 2^b), one (scale, zero_point) per tensor.

    The grid is calibrated at attach() and then fixed: `step()` re-rounds the drifted weights
    onto it. Re-calibrating every step would cost a sort per tensor ("mse") or let one drifting
    outlier stretch every level ("minmax"); weights still change level once their accumulated
    update crosses a decision boundary. The zero point is a float, not an integer: an integer
    zero point forces 0 to be a level, which at 1 bit leaves only {0, a} instead of {−a, b}.
    """

    method = "affine"

    def __init__(self, model: nn.Module, bits: dict[str, int], calibration: Calibration = "mse"):
        super().__init__(model, bits)
        if calibration not in ("minmax", "mse"):
            raise ValueError(f"calibration must be 'minmax' or 'mse', got {calibration!r}")
        self.calibration = calibration
        self.grids: dict[str, tuple[Tensor, Tensor]] = {}  # name -> (scale, zero_point)

    def _fit(self, name: str, weight: Tensor) -> None:
        self.grids[name] = calibrate(weight, self.bits[name], self.calibration)

    def _update(self, name: str, weight: Tensor) -> None:
        """The grid stays as calibrated (see the class docstring)."""

    def _snap(self, name: str, weight: Tensor) -> None:
        scale, zero_point = self.grids[name]
        weight.div_(scale).add_(zero_point).round_().clamp_(0, 2 ** self.bits[name] - 1)
        weight.sub_(zero_point).mul_(scale)

    def state_dict(self) -> dict[str, Tensor]:
        return {f"{kind}.{name}": grid[i] for name, grid in self.grids.items()
                for i, kind in enumerate(("scale", "zero_point"))}

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        self.grids = {name: (state[f"scale.{name}"], state[f"zero_point.{name}"])
                      for name in {key.partition(".")[2] for key in state}}
        self.attached = bool(state) or not self.low

    def _codes(self, name: str, weight: Tensor) -> Tensor:
        scale, zero_point = self.grids[name]
        return (weight / scale + zero_point).round_().clamp_(0, 2 ** self.bits[name] - 1)

    def _target(self, name: str, weight: Tensor) -> Tensor:
        scale, zero_point = self.grids[name]
        return (self._codes(name, weight) - zero_point) * scale

    def _pack(self, name: str, weight: Tensor) -> PackedTensor:
        scale, zero_point = self.grids[name]
        return PackedTensor.from_codes("affine", self.bits[name], weight.shape, self._codes(name, weight).long(),
                                       {"scale": scale, "zero_point": zero_point})

"""The quantizer lifecycle shared by the k-means and affine families."""
from __future__ import annotations

from abc import ABC, abstractmethod

import torch
from torch import Tensor, nn

from quads_search.quant.bits import QUANTIZED_BITS, quantizable_weights
from quads_search.quant.packed import Method, PackedTensor


class Quantizer(ABC):
    """Keeps chosen weight tensors of a model on a low-bit grid while it trains.

    Lifecycle:
      1. `q = make_quantizer(model, config)` (or a subclass with explicit `bits`, keyed by
         full parameter name) selects the tensors; nothing changes yet.
      2. `q.attach()` fits a grid to each tensor (k-means clustering / affine calibration)
         and snaps the weights onto it. Call it again to re-fit, e.g. at the start of each
         quantization stage after a distillation stage let the weights float.
      3. Each training step: `loss = ... + q.centroid_loss()`; backward; `optimizer.step()`;
         then `q.step()`, which updates the grid from the drifted weights (k-means) and snaps
         the weights back, so the forward pass always sees quantized weights.
      4. `q.packed_tensors()` gives the storage form for export (`save_packed`).
    Bits 1–8 are quantized by the subclass, 16 are rounded to fp16 values, 32 are untouched.
    The grid state lives on the weights' device: move the model before attach().
    """

    method: Method

    def __init__(self, model: nn.Module, bits: dict[str, int]):
        weights = quantizable_weights(model)
        unknown = sorted(set(bits) - set(weights))
        if unknown:
            raise ValueError(f"bits name tensors that are not quantizable weights: {unknown[:5]}")
        self.bits = dict(bits)
        self.low = {n: weights[n] for n, b in bits.items() if b in QUANTIZED_BITS}
        self.half = {n: weights[n] for n, b in bits.items() if b == 16}
        self.attached = False

    @abstractmethod
    def _fit(self, name: str, weight: Tensor) -> None:
        """Fit the grid of one tensor from its current values (no snapping)."""

    @abstractmethod
    def _update(self, name: str, weight: Tensor) -> None:
        """After an optimizer step: update the grid from the drifted values (no snapping)."""

    def _snap(self, name: str, weight: Tensor) -> None:
        weight.copy_(self._target(name, weight))

    @abstractmethod
    def state_dict(self) -> dict[str, Tensor]:
        """The fitted grids (and labels) as flat tensors, for checkpoints; `load_state_dict` restores them."""

    @abstractmethod
    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        """Restore grids saved by `state_dict` (after which the quantizer counts as attached)."""

    @abstractmethod
    def _target(self, name: str, weight: Tensor) -> Tensor:
        """The quantized value of each element of `weight` (a new tensor, no grad)."""

    @abstractmethod
    def _pack(self, name: str, weight: Tensor) -> PackedTensor:
        """The storage form of one snapped tensor."""

    @torch.no_grad()
    def attach(self) -> None:
        for name, weight in self.low.items():
            self._fit(name, weight)
            self._update(name, weight)
            self._snap(name, weight)
        self._snap_half()
        self.attached = True

    @torch.no_grad()
    def step(self) -> None:
        self._require_attached()
        for name, weight in self.low.items():
            self._update(name, weight)
            self._snap(name, weight)
        self._snap_half()

    @torch.no_grad()
    def update_codebooks(self) -> None:
        """Update the grids from the drifted weights without snapping them (joint stages, where
        L_centroid pulls the free weights towards the grid)."""
        self._require_attached()
        for name, weight in self.low.items():
            self._update(name, weight)

    @torch.no_grad()
    def snap(self) -> None:
        """Write every weight's quantized value (the end of a joint stage)."""
        self._require_attached()
        for name, weight in self.low.items():
            self._snap(name, weight)
        self._snap_half()

    def _snap_half(self) -> None:
        for weight in self.half.values():
            weight.copy_(weight.half().float())

    def centroid_loss(self) -> Tensor:
        """L_centroid = Σ ||W − grid(W)||² over 1–8-bit tensors; the grid is a constant.

        It is 0 right after a snap: with step() after every optimizer step, it and its
        gradient are 0 in every forward pass; it acts only on weights that drift between snaps.
        """
        self._require_attached()
        terms = [(w - self._target(n, w.detach())).square().sum() for n, w in self.low.items()]
        return torch.stack(terms).sum() if terms else torch.zeros(())

    def distinct_violations(self) -> dict[str, int]:
        """Quantized tensors holding more than 2^b distinct values, with their count."""
        counts = {n: int(torch.unique(w).numel()) for n, w in self.low.items()}
        return {n: c for n, c in counts.items() if c > 2 ** self.bits[n]}

    def distinct_ok(self) -> bool:
        return not self.distinct_violations()

    @torch.no_grad()
    def packed_tensors(self) -> dict[str, PackedTensor]:
        """Storage form of every 1–8-bit tensor; raises if a weight is off its grid."""
        self._require_attached()
        packed = {n: self._pack(n, w) for n, w in self.low.items()}
        for name, item in packed.items():
            if not torch.equal(item.dequantize(), self.low[name].detach().cpu()):
                raise RuntimeError(f"{name} is not on its quantization grid: "
                                   "call step() after the last optimizer step before exporting")
        return packed

    def _require_attached(self) -> None:
        if not self.attached:
            raise RuntimeError(f"{type(self).__name__}: call attach() first")

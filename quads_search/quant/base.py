"""The quantizer lifecycle shared by the k-means and affine families."""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections import defaultdict

import torch
from torch import Tensor, nn

from quads_search.quant import latent
from quads_search.quant.bits import QUANTIZED_BITS, quantizable_weights
from quads_search.quant.packed import Method, PackedTensor


class Grid(nn.Module, ABC):
    """The quantization grid of one weight tensor; as a module it can be that tensor's parametrization."""

    @abstractmethod
    def target(self, weight: Tensor) -> Tensor:
        """The quantized value of every element of `weight` (no gradient)."""

    @abstractmethod
    def update(self, weight: Tensor) -> None:
        """Follow weights that drifted off the grid (k-means: centroids to their cluster's mean)."""

    @abstractmethod
    def pack(self, bits: int, weight: Tensor) -> PackedTensor:
        """The storage form of `weight`, which must lie on this grid."""


class Quantizer(ABC):
    """Keeps chosen weight tensors of a model on a low-bit grid while it trains.

    Lifecycle (QuadsRun drives it; `attach()` does 2, 3 and 5 at once: post-training quantization):
      1. `q = make_quantizer(model, config)` (or a subclass with explicit `bits`, keyed by full
         parameter name) selects the tensors; nothing changes yet.
      2. `q.fit()` fits a grid to each 1–8-bit tensor from its current values (k-means
         clustering / affine calibration). Call it again to re-fit; skip it to keep the grids.
      3. `q.begin()` starts quantized training: from now on every forward pass sees quantized
         weights, snapped in place or computed by a parametrization from a trainable latent
         weight or codebook (see the subclass). Build the optimizer after it: it must see those.
      4. Each training step: `loss = ... + q.centroid_loss()`; backward; `optimizer.step()`; `q.step()`.
      5. `q.end()` writes the quantized weights into plain parameters: the model is a plain
         module on its grid again, fit for a checkpoint, a float stage or `packed_tensors()`.
    Joint stages train the plain weights instead: `centroid_loss()` pulls them towards the
    grid, `update_codebooks()` after each step, `snap()` at the stage end.
    Bits 1–8 are quantized by the subclass; 16 train a float32 latent behind fp16 values; 32
    are untouched. The grids live on the weights' device: move the model before fit().
    """

    method: Method

    def __init__(self, model: nn.Module, bits: dict[str, int]):
        weights = quantizable_weights(model)
        unknown = sorted(set(bits) - set(weights))
        if unknown:
            raise ValueError(f"bits name tensors that are not quantizable weights: {unknown[:5]}")
        self.model = model
        self.bits = dict(bits)
        self.low = tuple(n for n, b in bits.items() if b in QUANTIZED_BITS)
        self.half = tuple(n for n, b in bits.items() if b == 16)
        self.grids: dict[str, Grid] = {}
        self.attached = False  # between begin() and end()
        self.steps = 0  # optimizer steps since begin()

    # -- what a family defines --------------------------------------------------------------
    @abstractmethod
    def _fit(self, name: str, weight: Tensor) -> Grid:
        """A grid fitted to the current values of one tensor."""

    @abstractmethod
    def _grid_from_state(self, name: str, state: dict[str, Tensor]) -> Grid:
        """The grid `Grid.state_dict()` saved for `name`."""

    @abstractmethod
    def _begin(self, name: str) -> None:
        """Put one plain tensor under quantized training (snap it, or parametrize it)."""

    @abstractmethod
    def _free(self, name: str) -> Tensor | None:
        """During quantized training, the trainable weight L_centroid acts on (None: on its grid by construction)."""

    def _after_step(self) -> None:
        """After each optimizer step during quantized training (nothing by default)."""

    def _end(self, name: str) -> None:
        """Leave quantized training: the parametrized tensor becomes a plain one on its grid."""
        latent.materialize(self.model, name)

    # -- the lifecycle -----------------------------------------------------------------------
    @property
    def fitted(self) -> bool:
        return bool(self.grids) or not self.low

    @torch.no_grad()
    def fit(self) -> None:
        self._require(attached=False)
        self.grids = {name: self._fit(name, self._plain(name)) for name in self.low}

    @torch.no_grad()
    def begin(self) -> None:
        self._require(fitted=True, attached=False)
        for name in self.low:
            self._begin(name)
        for name in self.half:
            latent.register(self.model, name, latent.HalfPrecision())
        self.attached, self.steps = True, 0

    @torch.no_grad()
    def step(self) -> None:
        self._require(attached=True)
        self.steps += 1
        self._after_step()

    @torch.no_grad()
    def end(self) -> None:
        self._require(attached=True)
        for name in self.low:
            self._end(name)
        for name in self.half:
            latent.materialize(self.model, name)
        self.attached = False

    def attach(self) -> None:
        """Post-training quantization: fit the grids and write every weight's quantized value."""
        self.fit()
        self.begin()
        self.end()

    # -- joint stages (plain weights) ----------------------------------------------------------
    @torch.no_grad()
    def update_codebooks(self) -> None:
        """Update the grids from the drifted plain weights without snapping them (joint stages)."""
        self._require(fitted=True, attached=False)
        for name, grid in self.grids.items():
            grid.update(self._plain(name))

    @torch.no_grad()
    def snap(self) -> None:
        """Write every plain weight's quantized value (the end of a joint stage)."""
        self._require(fitted=True, attached=False)
        for name, grid in self.grids.items():
            weight = self._plain(name)
            weight.copy_(grid.target(weight))
        for name in self.half:
            weight = self._plain(name)
            weight.copy_(weight.half().float())

    # -- losses, checks, export ------------------------------------------------------------------
    def centroid_loss(self) -> Tensor:
        """L_centroid = Σ ||W − grid(W)||² over the free 1–8-bit weights; the grid is a constant.

        W is the latent weight during quantized training (k-means `ste`, affine) and the plain
        weight otherwise. It is 0 where the weights are on their grid at every forward pass
        (k-means `mean`, snapped after each step; k-means `gradient`, where W = codebook[labels]).
        """
        self._require(fitted=True)
        free = {name: self._free(name) if self.attached else self._plain(name) for name in self.low}
        terms = [(w - self.grids[n].target(w.detach())).square().sum() for n, w in free.items() if w is not None]
        return torch.stack(terms).sum() if terms else torch.zeros(())

    def weight(self, name: str) -> Tensor:
        """The value the forward pass uses for `name` (quantized during quantized training)."""
        return latent.weight(self.model, name)

    def distinct_violations(self) -> dict[str, int]:
        """Quantized tensors holding more than 2^b distinct values, with their count."""
        counts = {n: int(torch.unique(self.weight(n)).numel()) for n in self.low}
        return {n: c for n, c in counts.items() if c > 2 ** self.bits[n]}

    def distinct_ok(self) -> bool:
        return not self.distinct_violations()

    @torch.no_grad()
    def packed_tensors(self) -> dict[str, PackedTensor]:
        """Storage form of every 1–8-bit tensor; raises if a weight is off its grid."""
        self._require(fitted=True, attached=False)
        packed = {n: grid.pack(self.bits[n], self._plain(n)) for n, grid in self.grids.items()}
        for name, item in packed.items():
            if not torch.equal(item.dequantize(), self._plain(name).detach().cpu()):
                raise RuntimeError(f"{name} is not on its quantization grid: "
                                   "call snap() or end() after the last optimizer step before exporting")
        return packed

    # -- checkpoints ---------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Tensor]:
        """The fitted grids as flat tensors `<kind>.<parameter name>`, for checkpoints."""
        self._require(attached=False)
        return {f"{kind}.{name}": value.detach() for name, grid in self.grids.items()
                for kind, value in grid.state_dict().items()}

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        """Restore grids saved by `state_dict` (an empty state: not fitted yet)."""
        self._require(attached=False)
        grouped: dict[str, dict[str, Tensor]] = defaultdict(dict)
        for key, value in state.items():
            kind, _, name = key.partition(".")
            grouped[name][kind] = value.clone()  # the grids update in place: never share a caller's tensor
        self.grids = {name: self._grid_from_state(name, tensors) for name, tensors in grouped.items()}

    # -- helpers ---------------------------------------------------------------------------------
    def _plain(self, name: str) -> nn.Parameter:
        module, attr = latent.owner(self.model, name)
        return getattr(module, attr)

    def _require(self, *, fitted: bool | None = None, attached: bool | None = None) -> None:
        if fitted and not self.fitted:
            raise RuntimeError(f"{type(self).__name__}: no grid yet: call fit() (or attach()) first")
        if attached is True and not self.attached:
            raise RuntimeError(f"{type(self).__name__}: not in quantized training: call begin() first")
        if attached is False and self.attached:
            raise RuntimeError(f"{type(self).__name__}: in quantized training: call end() first")

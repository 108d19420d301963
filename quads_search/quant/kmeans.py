"""The paper's quantizer: per-tensor 1-D k-means codebooks, and three ways to train them.

  mean      the paper and the authors' code: labels fixed at clustering; after every optimizer
            step each centroid moves to the mean of its members and the weights snap back.
            A centroid moves by the mean of its members' updates, so the codebook hardly learns.
  gradient  Deep Compression: the weight IS codebook[labels]; the codebook is the trainable
            tensor and gets the sum of its members' gradients.
  ste       latent float weights behind a straight-through estimator: the forward pass uses
            their centroids, the latent weights take the whole gradient; centroids follow the
            mean of their latent members, and every `recluster_every` steps each weight moves
            to its nearest centroid. L_centroid pulls the latent weights towards their centroids.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal, get_args

import torch
from torch import Tensor, nn

from quads_search.quant import latent
from quads_search.quant.base import Grid, Quantizer
from quads_search.quant.packed import PackedTensor
from quads_search.quant.sorted1d import SortedValues

Init = Literal["density", "linspace"]
Update = Literal["mean", "gradient", "ste"]


def kmeans_1d(weight: Tensor, clusters: int, iters: int, init: Init = "density") -> Tensor:
    """Ascending float32 centroids after `iters` Lloyd iterations on the values of `weight`.

    Each iteration costs O(clusters · log n) on the sorted values (see SortedValues); an
    empty cluster keeps its centroid, so the result is deterministic. Init: see `_initial`.
    """
    data = SortedValues.of(weight)
    centroids = _initial(data.values.double(), clusters, init)
    for _ in range(iters):
        count, total, _ = data.segments(centroids)
        centroids = torch.where(count > 0, total / count.clamp(min=1), centroids).sort().values
    return centroids.float()


def _initial(values: Tensor, clusters: int, init: Init, bins: int = 2048) -> Tensor:
    """Starting centroids from ascending float64 `values`.

    "linspace" spreads them evenly over [min, max] (Deep Compression's choice): Lloyd then
    needs hundreds of iterations to pull centroids out of the sparse tails. "density" puts
    them at quantiles of p(w)^(1/3), the high-resolution optimum for squared error: at 4–8
    bits it starts closer to the optimum than 15 iterations from linspace get.
    """
    lo, hi = float(values[0]), float(values[-1])
    if init == "linspace":
        return torch.linspace(lo, hi, clusters, dtype=torch.float64, device=values.device)
    mass = torch.histc(values, bins, lo, hi).pow(1 / 3)
    cdf = torch.cat([mass.new_zeros(1), mass.cumsum(0)]) / mass.sum()
    target = (torch.arange(clusters, dtype=torch.float64, device=values.device) + 0.5) / clusters
    right = torch.searchsorted(cdf, target, right=True).clamp(1, bins)
    frac = (target - cdf[right - 1]) / (cdf[right] - cdf[right - 1])
    return lo + (right - 1 + frac) * ((hi - lo) / bins)


GPU_ROWS = 4096


def _rows(weight: Tensor, most: int = 16) -> Tensor:
    """A (rows, cols) view of up to `most` rows: CPU scatter/gather kernels parallelise over
    rows (a flat scatter runs on one core), and few rows keep the per-row partial sums small."""
    return weight.view(math.gcd(weight.numel(), most), -1)


def _gather(codebook: Tensor, labels: Tensor) -> Tensor:
    """codebook[labels] for (rows, cols) labels; its backward is a per-row scatter-add, then a sum."""
    return codebook.expand(labels.shape[0], -1).gather(1, labels)


def _nearest(rows: Tensor, codebook: Tensor) -> Tensor:
    """Index of the nearest centroid for every value (ties to the lower one); any centroid order."""
    ordered, order = codebook.sort(stable=True)
    return order[torch.bucketize(rows, (ordered[1:] + ordered[:-1]) / 2)]


class Codebook(Grid):
    """One tensor's k-means state: 2^b centroids and each weight's label (in the `_rows` view).

    As a parametrization (update "ste") it maps the latent weight to its centroids and hands
    the gradient straight through to the latent weight.
    """

    codebook: Tensor
    labels: Tensor
    counts: Tensor

    def __init__(self, codebook: Tensor, labels: Tensor):
        super().__init__()
        self.register_buffer("codebook", codebook)
        self.register_buffer("labels", labels)
        self.register_buffer("counts", self._count(labels), persistent=False)

    @classmethod
    def fit(cls, weight: Tensor, clusters: int, iters: int, init: Init) -> Codebook:
        centroids = kmeans_1d(weight, clusters, iters, init)
        return cls(centroids, _nearest(_rows(weight), centroids))

    def _count(self, labels: Tensor) -> Tensor:
        return torch.bincount(labels.flatten(), minlength=self.codebook.numel()).float()

    def target(self, weight: Tensor) -> Tensor:
        return _gather(self.codebook, self.labels).view_as(weight).detach()

    def means(self, weight: Tensor) -> Tensor:
        """Each cluster's mean of `weight`; an empty cluster keeps its centroid.

        On a GPU the partial sums use many rows: a scatter of millions of values into 2^b
        addresses per row serialises on atomics (at 2 bits, 3x slower than with 4,096 rows).
        """
        rows, counts = _rows(weight, GPU_ROWS if weight.is_cuda else 16), self.counts
        labels = self.labels.view(rows.shape)
        sums = rows.new_zeros(rows.shape[0], counts.numel()).scatter_add_(1, labels, rows).sum(0)
        return torch.where(counts > 0, sums / counts.clamp(min=1), self.codebook)

    def update(self, weight: Tensor) -> None:
        self.codebook.copy_(self.means(weight))

    def reassign(self, weight: Tensor) -> None:
        """Move every weight to its nearest centroid (the assignment half of a Lloyd iteration)."""
        self.labels.copy_(_nearest(_rows(weight), self.codebook))
        self.counts.copy_(self._count(self.labels))

    def forward(self, weight: Tensor) -> Tensor:
        return latent.straight_through(weight, self.target(weight))

    def pack(self, bits: int, weight: Tensor) -> PackedTensor:
        return PackedTensor.from_codes("kmeans", bits, weight.shape, self.labels, {"codebook": self.codebook})


class Gathered(nn.Module):
    """Parametrization for update "gradient": the trainable `original` is the codebook itself.

    W = codebook[labels], so autograd gives each centroid the sum of its members' gradients;
    `right_inverse` (run when the parametrization is registered) sets the codebook to the
    cluster means of the plain weight.
    """

    def __init__(self, grid: Codebook, shape: torch.Size):
        super().__init__()
        self.grid, self.shape = grid, shape

    def forward(self, codebook: Tensor) -> Tensor:
        return _gather(codebook, self.grid.labels).view(self.shape)

    def right_inverse(self, weight: Tensor) -> Tensor:
        return self.grid.means(weight)


def _recorded(work: Callable[[], None]) -> torch.cuda.CUDAGraph:
    """Run `work` once (on a side stream, as capture needs: this is the step's real work) and return
    it recorded as a CUDA graph; recording runs nothing, so `work` has run exactly once."""
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        work()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        work()
    return graph


class CodebookQuantizer(Quantizer):
    """2^b centroids per tensor, trained by one of the updates in the module docstring.

    Every update starts quantized training the same way: each centroid moves to the mean of
    its cluster (with the labels of the last clustering). `mean` then snaps in place after every
    step (one scatter-add and one gather per tensor); `gradient` and `ste` parametrize the weight.
    """

    method = "kmeans"

    def __init__(self, model: nn.Module, bits: dict[str, int], iters: int = 15, init: Init = "density",
                 update: Update = "mean", recluster_every: int = 1):
        super().__init__(model, bits)
        if iters < 1 or init not in ("density", "linspace"):
            raise ValueError(f"need iters >= 1 and init in (density, linspace), got {iters=}, {init=}")
        if update not in get_args(Update) or recluster_every < 1:
            raise ValueError(f"need update in {get_args(Update)} and recluster_every >= 1, "
                             f"got {update=}, {recluster_every=}")
        self.iters, self.init, self.update, self.recluster_every = iters, init, update, recluster_every
        self.grids: dict[str, Codebook] = {}
        self._graph: torch.cuda.CUDAGraph | None = None  # the `mean` step, recorded on a GPU

    def _fit(self, name: str, weight: Tensor) -> Codebook:
        return Codebook.fit(weight, 2 ** self.bits[name], self.iters, self.init)

    def _grid_from_state(self, name: str, state: dict[str, Tensor]) -> Codebook:
        return Codebook(state["codebook"], state["labels"])

    def _begin(self, name: str) -> None:
        grid, weight = self.grids[name], self._plain(name)
        if self.update == "gradient":
            latent.register(self.model, name, Gathered(grid, weight.shape))
            return
        grid.update(weight)
        if self.update == "ste":
            latent.register(self.model, name, grid)
        else:
            weight.copy_(grid.target(weight))

    def _after_step(self) -> None:
        if self.update == "mean":
            self._mean_step()
        elif self.update == "ste":
            reassign = self.steps % self.recluster_every == 0
            for name, grid in self.grids.items():
                weight = self._free(name)
                if reassign:
                    grid.reassign(weight)
                grid.update(weight)

    def _snap_all(self) -> None:
        """The `mean` update of every tensor: centroids to their cluster means, weights onto them."""
        for name, grid in self.grids.items():
            weight = self._plain(name)
            grid.update(weight)
            weight.copy_(grid.target(weight))

    def _mean_step(self) -> None:
        """`_snap_all`; on a GPU its ~8 small kernels per tensor are bound by launch latency, so the
        first step after begin() runs it and records it as a CUDA graph, later steps replay it."""
        if not self.grids or not next(iter(self.grids.values())).codebook.is_cuda:
            self._snap_all()
        elif self.steps == 1 or self._graph is None:
            self._graph = _recorded(self._snap_all)
        else:
            self._graph.replay()

    def _free(self, name: str) -> Tensor | None:
        if self.update == "gradient":
            return None
        return latent.original(self.model, name) if self.update == "ste" else self._plain(name)

    def _end(self, name: str) -> None:
        if self.update == "gradient":
            self.grids[name].codebook.copy_(latent.original(self.model, name))
        if self.update != "mean":
            latent.materialize(self.model, name)

"""Sorted values with prefix sums: exact 1-D k-means and clip-search errors in O(levels·log n).

For 1-D data, assigning each value to its nearest level splits the sorted values into
contiguous segments, so cluster counts, sums and squared errors for any candidate set of
levels come from a binary search plus three prefix-sum lookups, never a pass over the data.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True)
class SortedValues:
    """One tensor's values, sorted, with float64 prefix sums of w and w² (leading zero)."""

    values: Tensor
    csum: Tensor
    csum2: Tensor

    @classmethod
    def of(cls, weights: Tensor) -> SortedValues:
        values = weights.detach().flatten().float().sort().values
        wide = values.double()
        zero = wide.new_zeros(1)
        return cls(values, torch.cat([zero, wide.cumsum(0)]), torch.cat([zero, wide.square().cumsum(0)]))

    def segments(self, levels: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Count, sum and sum of squares of the values nearest each level.

        `levels` is (..., K), ascending along the last axis; a value exactly between two
        levels goes to the lower one, like `torch.bucketize(w, midpoints)`.
        """
        mids = (levels[..., 1:] + levels[..., :-1]) / 2
        inner = torch.searchsorted(self.values, mids.float().contiguous(), right=True)
        n = self.values.numel()
        edges = torch.cat([inner.new_zeros(*inner.shape[:-1], 1), inner,
                           inner.new_full((*inner.shape[:-1], 1), n)], dim=-1)
        lo, hi = edges[..., :-1], edges[..., 1:]
        return (hi - lo).double(), self.csum[hi] - self.csum[lo], self.csum2[hi] - self.csum2[lo]

    def squared_error(self, levels: Tensor) -> Tensor:
        """Σ (w − nearest level)² for each row of `levels` (..., K) -> (...)."""
        count, total, total2 = self.segments(levels)
        wide = levels.double()
        return (total2 - 2 * wide * total + count * wide.square()).sum(-1)

"""Hutchinson estimates of the Hessian trace of a loss, per weight tensor.

Tr(H_WW) = E[vᵀ H_WW v] for Rademacher v (entries ±1). One Hessian-vector product over every
tensor at once, by double backward, gives every diagonal block's estimate together: with v
drawn independently per tensor, the cross terms vᵀ_W H_WU v_U average to zero, so
v_W · (Hv)_W estimates Tr(H_WW) alone. HAWQ-V2 ranks layers by this trace.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor


@dataclass(frozen=True)
class TraceEstimate:
    """Mean of the probe estimates of one tensor's Hessian trace, and its standard error."""

    trace: float
    sem: float
    samples: int


def rademacher(shape: torch.Size, generator: torch.Generator, device: torch.device) -> Tensor:
    """±1 entries drawn on the CPU from `generator` (so CPU and CUDA runs draw the same probes)."""
    return (torch.randint(0, 2, shape, generator=generator) * 2 - 1).float().to(device)


def hessian_traces(loss_of: Callable[[Any], Tensor], batches: Sequence[Any], params: dict[str, Tensor],
                   probes: int, generator: torch.Generator) -> dict[str, TraceEstimate]:
    """Tr(∂²L/∂W²) for each tensor W in `params`, averaged over `batches` and `probes` per batch.

    `loss_of(batch)` is the loss whose Hessian is wanted (e.g. the mean cross-entropy of one
    batch): averaging per-batch traces estimates the trace for the mean loss over the batches.
    """
    if probes < 1 or not batches:
        raise ValueError(f"need probes >= 1 and at least one batch, got {probes=} and {len(batches)} batches")
    names, tensors = list(params), list(params.values())
    samples: dict[str, list[float]] = {name: [] for name in names}
    for batch in batches:
        grads = torch.autograd.grad(loss_of(batch), tensors, create_graph=True, allow_unused=True)
        live = [i for i, g in enumerate(grads) if g is not None]  # unused tensors: zero curvature
        for probe in range(probes):
            vectors = [rademacher(t.shape, generator, t.device) for t in tensors]
            products = torch.autograd.grad([grads[i] for i in live], [tensors[i] for i in live],
                                           grad_outputs=[vectors[i] for i in live],
                                           retain_graph=probe < probes - 1, allow_unused=True)
            hv = dict(zip(live, products))
            for i, name in enumerate(names):
                product = hv.get(i)
                samples[name].append(0.0 if product is None else float((vectors[i] * product).sum()))
    return {name: _estimate(values) for name, values in samples.items()}


def _estimate(values: list[float]) -> TraceEstimate:
    n = len(values)
    mean = math.fsum(values) / n
    var = math.fsum((v - mean) ** 2 for v in values) / (n - 1) if n > 1 else float("nan")
    return TraceEstimate(mean, math.sqrt(var / n) if n > 1 else float("nan"), n)

"""A run's packed size from its configuration alone: what a trial will weigh, known before it trains.

The student is built on the meta device (no memory, no weights) and its bits resolved as
`core.quantizer.make_quantizer` resolves them, so the number equals the `size_mb` the run
reports at its end. The early-stop rule compares trials on it after a stage.
"""
from __future__ import annotations

import torch

from quads_search.config import RunConfig
from quads_search.config.units import frames_for
from quads_search.core.models import SLUModel, encoder_arch
from quads_search.quant import quantizable_weights, resolve_bits, size_report


def planned_size_mb(cfg: RunConfig, num_classes: int) -> float:
    """Packed size (MiB) of `cfg`'s student with a `num_classes`-way head at `cfg.quantization`'s bits."""
    arch = encoder_arch(cfg.student, frames_for(cfg.dataset.seconds), cfg.cache_dir)  # may read files: not on meta
    with torch.device("meta"):
        model = SLUModel(arch, num_classes)
    bits = cfg.quantization.bits
    resolved = resolve_bits(quantizable_weights(model), bits["default"], {k: v for k, v in bits.items() if k != "default"})
    return size_report(model, resolved, cfg.quantization.method)["size_mb"]

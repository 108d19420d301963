"""A run's costs from its configuration alone: what a trial will weigh, known before it trains.

The model is built on the meta device (no memory, no weights) and its bits resolved as
`core.quantizer.make_quantizer` resolves them, so the numbers equal those the run reports at
its end. The early-stop rule compares trials on the planned size after a stage; `search.budget`
refuses a draw on its planned costs before it trains.
"""
from __future__ import annotations

import functools

import torch

from quads_search.config import ModelConfig, RunConfig
from quads_search.config.units import frames_for
from quads_search.core.models import SLUModel, encoder_arch
from quads_search.core.profile import count_macs
from quads_search.quant import quantizable_weights, resolve_bits, size_report


@functools.lru_cache(maxsize=8)
def meta_model(model_cfg: ModelConfig, frames: int, cache_dir: str, num_classes: int) -> SLUModel:
    """`model_cfg`'s model with a `num_classes`-way head on the meta device (its architecture is read first:
    a pretrained one may be converted from files, which the meta device cannot do)."""
    arch = encoder_arch(model_cfg, frames, cache_dir)
    with torch.device("meta"):
        return SLUModel(arch, num_classes)


@functools.lru_cache(maxsize=8)
def _gmacs(model_cfg: ModelConfig, frames: int, cache_dir: str, num_classes: int) -> float:
    return count_macs(meta_model(model_cfg, frames, cache_dir, num_classes), frames)[0] / 1e9


def planned_bits(cfg: RunConfig, model: SLUModel) -> dict[str, int]:
    """Every quantizable weight's width under `cfg.quantization.bits`."""
    bits = cfg.quantization.bits
    return resolve_bits(quantizable_weights(model), bits["default"], {k: v for k, v in bits.items() if k != "default"})


def _student(cfg: RunConfig, num_classes: int) -> SLUModel:
    """`cfg`'s student with a `num_classes`-way head, on the meta device."""
    return meta_model(cfg.student, frames_for(cfg.dataset.seconds), cfg.cache_dir, num_classes)


def planned_costs(cfg: RunConfig, num_classes: int) -> dict[str, float]:
    """`size_mb`, `bits_avg` and `gmacs` of `cfg`'s trained student, as its final report will give them."""
    model = _student(cfg, num_classes)
    sizes = size_report(model, planned_bits(cfg, model), cfg.quantization.method)
    return {"size_mb": sizes["size_mb"], "bits_avg": sizes["bits_avg"],
            "gmacs": _gmacs(cfg.student, frames_for(cfg.dataset.seconds), cfg.cache_dir, num_classes)}


def planned_size_mb(cfg: RunConfig, num_classes: int) -> float:
    """Packed size (MiB) of `cfg`'s student with a `num_classes`-way head at `cfg.quantization`'s bits."""
    model = _student(cfg, num_classes)
    return size_report(model, planned_bits(cfg, model), cfg.quantization.method)["size_mb"]


def uniform_size_mb(cfg: RunConfig, bits: int, num_classes: int) -> float:
    """Packed size (MiB) of `cfg`'s student with every quantizable weight at `bits`: the yardstick that turns
    a budget stated in average bits into bytes."""
    model = _student(cfg, num_classes)
    return size_report(model, resolve_bits(quantizable_weights(model), bits, {}), cfg.quantization.method)["size_mb"]

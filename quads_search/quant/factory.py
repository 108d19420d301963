"""Config -> quantizer."""
from __future__ import annotations

from torch import nn

from quads_search.config import QuantizationConfig
from quads_search.quant.affine import AffineQuantizer
from quads_search.quant.base import Quantizer
from quads_search.quant.bits import quantizable_weights, resolve_bits
from quads_search.quant.kmeans import CodebookQuantizer


def make_quantizer(model: nn.Module, config: QuantizationConfig) -> Quantizer:
    """The configured quantizer over every quantizable weight, bits resolved from the overrides."""
    bits = resolve_bits(quantizable_weights(model), config.bits, config.overrides)
    if config.method == "kmeans":
        return CodebookQuantizer(model, bits, iters=config.kmeans_iters)
    return AffineQuantizer(model, bits, calibration=config.calibration)

"""The `quantization` section of a config -> a quantizer over the student's weights."""
from __future__ import annotations

from torch import nn

from quads_search.config import QuantizationConfig
from quads_search.quant import (
    AffineQuantizer,
    CodebookQuantizer,
    Quantizer,
    quantizable_weights,
    resolve_bits,
)


def make_quantizer(model: nn.Module, config: QuantizationConfig) -> Quantizer:
    """The configured quantizer over every quantizable weight, bits resolved from `config.bits`."""
    overrides = {k: v for k, v in config.bits.items() if k != "default"}
    bits = resolve_bits(quantizable_weights(model), config.bits["default"], overrides)
    if config.method == "kmeans":
        return CodebookQuantizer(model, bits, iters=config.kmeans_iters, update=config.kmeans_update,
                                 recluster_every=config.recluster_every)
    return AffineQuantizer(model, bits, calibration=config.calibration, scale=config.affine_scale)

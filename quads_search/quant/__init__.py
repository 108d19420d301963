"""Weight quantization for QUADS: tensor selection, k-means and affine quantizers, packed tensors.

Quantization-aware training runs through `torch.nn.utils.parametrize` (see `latent`): the
trainable tensors are latent weights or codebooks, and the model is plain again between stages.

A plain-PyTorch library: it knows nothing of the YAML config (`core.quantizer` builds a
quantizer from one) and nothing of files (`core.export` writes the packed form).
"""
from quads_search.quant.affine import AffineQuantizer, calibrate
from quads_search.quant.base import Quantizer
from quads_search.quant.bits import (
    VALID_BITS,
    quantizable_weights,
    readable_name,
    resolve_bits,
)
from quads_search.quant.kmeans import CodebookQuantizer, kmeans_1d
from quads_search.quant.packed import PackedTensor, affine_levels
from quads_search.quant.packing import pack_bits, unpack_bits
from quads_search.quant.size import size_report, stored_bytes

__all__ = [
    "AffineQuantizer",
    "CodebookQuantizer",
    "PackedTensor",
    "Quantizer",
    "VALID_BITS",
    "affine_levels",
    "calibrate",
    "kmeans_1d",
    "pack_bits",
    "quantizable_weights",
    "readable_name",
    "resolve_bits",
    "size_report",
    "stored_bytes",
    "unpack_bits",
]

"""Weight quantization for QUADS: tensor selection, k-means and affine quantizers, packed export."""
from quads_search.quant.affine import AffineQuantizer, calibrate
from quads_search.quant.base import Quantizer
from quads_search.quant.bits import quantizable_weights, readable_name, resolve_bits
from quads_search.quant.export import read_packed, read_packed_metadata, save_packed
from quads_search.quant.factory import make_quantizer
from quads_search.quant.kmeans import CodebookQuantizer, kmeans_1d
from quads_search.quant.packed import PackedTensor, affine_levels
from quads_search.quant.packing import pack_bits, unpack_bits
from quads_search.quant.size import size_report, stored_bytes

__all__ = [
    "AffineQuantizer",
    "CodebookQuantizer",
    "PackedTensor",
    "Quantizer",
    "affine_levels",
    "calibrate",
    "kmeans_1d",
    "make_quantizer",
    "pack_bits",
    "quantizable_weights",
    "read_packed",
    "read_packed_metadata",
    "readable_name",
    "resolve_bits",
    "save_packed",
    "size_report",
    "stored_bytes",
    "unpack_bits",
]

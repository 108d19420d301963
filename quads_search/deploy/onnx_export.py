"""A packed model file as one ONNX file that any ONNX runtime can run: `export_onnx(packed, out)`.

Opset 18, chosen as the lowest opset that holds every operator the graph needs (BitwiseAnd
arrived in 18, LayerNormalization in 17), so the file runs on ONNX Runtime 1.14 and later
and on the mobile and edge runtimes that lag the standard. Later opsets add nothing this
graph can use: the Gelu operator (20) is written out as Erf, which runtimes fuse back, and
DequantizeLinear on uint4 (21) and uint2 (25) covers only affine grids at 2 and 4 bits,
while k-means codebooks need a Gather and 3-, 5-, 6- and 7-bit codes straddle bytes; one
BitShift/BitwiseAnd unpacking serves every width from 1 to 8 bits with the packed file's own
layout (`deploy/weights.py`). The IR version is the lowest that opset 18 allows (8).

The graph is torch-free to build (safetensors' numpy reader, onnx.helper); the packed file's
metadata (architecture, label map, config, metrics, bits) travels in the ONNX file's
metadata under "quads_search", so `quads-search evaluate model.onnx` needs nothing else.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import onnx
from onnx import TensorProto, helper
from safetensors import SafetensorError, safe_open

from quads_search import __version__
from quads_search.config.schema import POOLINGS, arch_pooling
from quads_search.core.packed_header import packed_header
from quads_search.deploy.encoder import slu_graph
from quads_search.deploy.graph import Graph
from quads_search.deploy.weights import float_weight
from quads_search.errors import UserError
from quads_search.files import write_bytes

OPSET = 18
METADATA_KEY = "quads_search"
INPUT, OUTPUT = "features", "logits"
SUPPORTED_ACTIVATION = "gelu"
# What an export adds to the packed weights (`size_mb`): the graph (nodes, shapes, names) and the
# per-tensor headers. Measured: 12.6 KB for the default 2-layer student at 1.95 bits (k-means),
# 28.1 KB for a 4-layer whisper-tiny-shaped one at mixed 1–8 bits (affine, the larger graph). The metadata JSON
# (architecture, label map, config, metrics) comes on top; the packed file's header carries it too.
GRAPH_BYTES_BASE, GRAPH_BYTES_PER_LAYER = 4096, 8192


def graph_budget(layers: int) -> int:
    """The most bytes an export of a `layers`-layer student may add to its packed size, metadata aside."""
    return GRAPH_BYTES_BASE + GRAPH_BYTES_PER_LAYER * layers


def build_onnx(packed: str | Path) -> onnx.ModelProto:
    """The ONNX model of a packed file (see the module docstring); raises UserError on a file that is not one."""
    header = packed_header(packed)
    specs, metadata = json.loads(header["tensors"]), json.loads(header["metadata"])
    arch, num_classes = _architecture(packed, metadata)
    g = Graph()
    try:
        with safe_open(str(packed), framework="numpy") as f:
            cache: dict[str, str] = {}

            def weight(name: str) -> str | None:  # None: a bias the model does not have (k_proj's)
                if name not in specs:
                    if name.endswith(".bias"):
                        return None
                    raise UserError(f"{packed}: has no tensor {name!r}, which the student's graph needs")
                if name not in cache:
                    cache[name] = float_weight(g, f, name, specs[name])
                return cache[name]

            g.op("Identity", slu_graph(g, weight, arch, INPUT), out=OUTPUT)
    except SafetensorError as exc:
        raise UserError(f"{packed}: unreadable safetensors file: {exc}") from None
    unused = sorted(set(specs) - set(cache))
    if unused:
        raise UserError(f"{packed}: tensors the Whisper-encoder student does not have: {unused[:3]}")
    frames = 2 * int(arch["max_source_positions"])  # WhisperEncoder accepts exactly this many frames
    graph = helper.make_graph(
        g.nodes, "quads_search_student",
        [helper.make_tensor_value_info(INPUT, TensorProto.FLOAT, ["batch", int(arch["num_mel_bins"]), frames])],
        [helper.make_tensor_value_info(OUTPUT, TensorProto.FLOAT, ["batch", num_classes])],
        g.initializers)
    return _model(graph, metadata, _source(Path(packed)))


def _architecture(packed: str | Path, metadata: dict[str, Any]) -> tuple[dict, int]:
    try:
        arch, num_classes = metadata["arch"], int(metadata["num_classes"])
    except (KeyError, TypeError, ValueError):
        raise UserError(f"{packed}: its metadata has no architecture (arch, num_classes): "
                        "not a trained model") from None
    if arch_pooling(arch) not in POOLINGS:
        raise UserError(f"{packed}: pooling {arch_pooling(arch)!r}; the ONNX export writes {list(POOLINGS)} only")
    activation = arch.get("activation_function", SUPPORTED_ACTIVATION)
    if activation != SUPPORTED_ACTIVATION:
        raise UserError(f"{packed}: activation {activation!r}; the ONNX export writes {SUPPORTED_ACTIVATION!r} only")
    return arch, num_classes


def _source(packed: Path) -> dict[str, str]:
    """Where the packed model was and its sha256: `evaluate model.onnx` compares with it when unchanged."""
    return {"path": str(packed.resolve()), "sha256": hashlib.sha256(packed.read_bytes()).hexdigest()}


def _model(graph: onnx.GraphProto, metadata: dict[str, Any], source: dict[str, str]) -> onnx.ModelProto:
    opsets = [helper.make_opsetid("", OPSET)]
    model = helper.make_model(graph, opset_imports=opsets, producer_name="quads-search",
                              producer_version=__version__, ir_version=helper.find_min_ir_version_for(opsets),
                              doc_string="QUADS student: log-mel features -> intent logits (weights packed)")
    helper.set_model_props(model, {METADATA_KEY: json.dumps({**metadata, "source": source})})
    onnx.checker.check_model(model)
    return model


def export_onnx(packed: str | Path, out: str | Path) -> dict[str, Any]:
    """Write `packed` as ONNX to `out` atomically; returns what was written (bytes, opset, sizes)."""
    model = build_onnx(packed)
    data = model.SerializeToString()
    write_atomic(Path(out), data)
    weights = sum(len(t.raw_data) for t in model.graph.initializer)
    metadata = sum(len(p.key) + len(p.value) for p in model.metadata_props)
    size_mb = json.loads(model.metadata_props[0].value).get("metrics", {}).get("size_mb")
    return {"path": str(out), "bytes": len(data), "initializer_bytes": weights, "metadata_bytes": metadata,
            "graph_bytes": len(data) - weights - metadata, "size_mb": size_mb, "opset": OPSET,
            "nodes": len(model.graph.node)}


def write_atomic(path: Path, data: bytes) -> None:
    """Write `data` to `path` by temp file beside it, fsync and os.replace (`quads_search.files`)."""
    if path.is_dir():
        raise UserError(f"{path}: is a directory; give the file to write, e.g. {path / 'model.onnx'}")
    if any(parent.exists() and not parent.is_dir() for parent in path.parents):
        raise UserError(f"{path}: cannot write there (a parent is a file, not a directory)")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_bytes(path, data)
    except OSError as exc:
        raise UserError(f"{path}: cannot write it ({exc.strerror or exc})") from None

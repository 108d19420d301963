"""`quads-search export MODEL --format onnx OUT`: a packed model as a file a device runtime can run.

The ONNX file maps log-mel features [batch, 80, frames] to intent logits [batch, classes] and
stores every weight at its packed size (bit-packed codes plus codebooks or scale and zero
point, unpacked in-graph); `quads-search evaluate OUT` runs it with ONNX Runtime.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

FORMATS = ("onnx",)


def add_parser(subparsers: argparse._SubParsersAction, summary: str) -> None:
    p = subparsers.add_parser("export", help=summary, description=__doc__.splitlines()[0])
    p.add_argument("model", type=Path, help="packed model file (model.safetensors from train, run or pareto --export)")
    p.add_argument("out", type=Path, help="the file to write, e.g. model.onnx (written atomically)")
    p.add_argument("--format", choices=FORMATS, default="onnx", help="output format (default onnx, opset 18)")
    p.add_argument("--json", action="store_true", help="print what was written as one JSON object")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from quads_search.deploy.onnx_export import export_onnx

    report = export_onnx(args.model, args.out)
    if args.json:
        print(json.dumps(report))
    else:
        packed = f"; packed size_mb {report['size_mb']:.4f} MiB" if report["size_mb"] is not None else ""
        print(f"wrote {report['path']}: {report['bytes']:,} bytes (weights {report['initializer_bytes']:,}, "
              f"graph {report['graph_bytes']:,}, metadata {report['metadata_bytes']:,}{packed}), "
              f"opset {report['opset']}")
    return 0

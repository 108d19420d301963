"""The packed student for devices: ONNX export (opset 18) and running it with ONNX Runtime.

`onnx` and `onnxruntime` (the `onnx` extra) are imported only on first use of this package's
names, so `quads-search --help` and `pareto` without `--onnx` never load them, and a process
that only runs a model (`runtime`) loads ONNX Runtime without the `onnx` package.
"""
from __future__ import annotations

__all__ = ["OPSET", "build_onnx", "export_onnx"]


def __getattr__(name: str):
    if name in __all__:
        from quads_search.deploy import onnx_export

        return getattr(onnx_export, name)
    raise AttributeError(f"module 'quads_search.deploy' has no attribute {name!r}")

"""A small ONNX graph builder: nodes, initializers and shared constants, with short unique names.

Value names are short (`v12`) and nodes are unnamed, so the graph itself costs a few KiB in
the file; initializers keep the model's tensor names, which makes an exported file readable
in Netron or `onnx.printer`.
"""
from __future__ import annotations

import numpy as np
from onnx import NodeProto, TensorProto, numpy_helper
from onnx.helper import make_node


class Graph:
    """Collects the nodes and initializers of one graph in execution order."""

    def __init__(self) -> None:
        self.nodes: list[NodeProto] = []
        self.initializers: list[TensorProto] = []
        self._constants: dict[tuple, str] = {}
        self._count = 0

    def op(self, op_type: str, *inputs: str, out: str | None = None, **attributes: object) -> str:
        """Append one single-output node (its output named `out`, or a fresh name); returns that name."""
        self._count += 1
        output = out or f"v{self._count}"
        self.nodes.append(make_node(op_type, list(inputs), [output], **attributes))
        return output

    def initializer(self, name: str, value: np.ndarray) -> str:
        """A named initializer holding `value` byte for byte (raw data, its own dtype)."""
        value = np.asarray(value, order="C")  # (np.ascontiguousarray would make a scalar 1-D)
        self.initializers.append(numpy_helper.from_array(value, name))
        return name

    def const(self, value: object, dtype: type = np.int64) -> str:
        """A small constant, stored once however often it is used (shapes, axes, shifts, masks)."""
        array = np.asarray(value, dtype=dtype)
        key = (array.dtype.str, array.shape, array.tobytes())
        if key not in self._constants:
            self._constants[key] = self.initializer(f"c{len(self._constants)}", array)
        return self._constants[key]

    def scalar(self, value: float) -> str:
        """A float32 scalar constant."""
        return self.const(value, np.float32)

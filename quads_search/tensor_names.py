"""Weight-tensor names as users write them in `quantization.bits` (torch-free: `pareto` uses it)."""
from __future__ import annotations


def readable_name(param_name: str) -> str:
    """`encoder.layers.0.fc1.weight` -> `layers.0.fc1`."""
    name = param_name.removeprefix("encoder.")
    return name.removesuffix(".weight")

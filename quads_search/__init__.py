"""quads-search: multi-objective sweeps over QUADS (joint distillation + low-bit quantization) for SLU."""
from __future__ import annotations

__all__ = ["load_packed"]
__version__ = "0.1.0"


def __getattr__(name: str):
    # Imported on first use, so `quads-search --help` and config validation stay fast.
    if name == "load_packed":
        from quads_search.core.export import load_packed

        return load_packed
    raise AttributeError(f"module 'quads_search' has no attribute {name!r}")

"""quads-search: multi-objective sweeps over QUADS (joint distillation + low-bit quantization) for SLU."""
from quads_search.export import load_packed

__all__ = ["load_packed"]
__version__ = "0.1.0"

"""Where the Ray Tune trainables live: a re-export of `quads_search.sweep.trainable`.

`quads_trial(params, base=..., experiment_dir=...)` is the function trainable every sweep
trial runs; it adapts a sampled config to the Ray-free QUADS core (`quads_search.core`).
"""
from quads_search.sweep.trainable import quads_trial

__all__ = ["quads_trial"]

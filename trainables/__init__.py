"""Ray Tune trainables: thin adapters from a sampled config to the Ray-free QUADS core."""
from trainables.quads import quads_trial

__all__ = ["quads_trial"]

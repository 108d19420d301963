"""Trials the searcher runs before it samples: the uniform-bit references, and any allocation
written as parameter values the space can hold (`space_values`, also used by seeding)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from quads_search.config import SweepConfig, to_dict
from quads_search.sweep.params import REFERENCE_BITS_KEY, config_key, extreme_values, in_space

@dataclass(frozen=True)
class Enqueued:
    """A trial the searcher runs before sampling: its parameters and its Optuna user attributes."""

    params: dict[str, Any]
    attrs: dict[str, Any]


def reference_trials(config: SweepConfig) -> list[Enqueued]:
    """One trial per `search.references` bit width: every tensor at that width, the rest at the base config.

    They anchor the front (what full precision and uniform low bits reach under the same
    schedule and loss weights). A reference the space cannot express is marked so that the
    searcher does not teach its sampler with it.
    """
    out = []
    for bits in config.search.references:
        params, expressible = space_values(config, {n: bits for n in config.space if n.startswith("bits.")})
        out.append(Enqueued(params, {"kind": "reference", REFERENCE_BITS_KEY: bits, "expressible": expressible}))
    return out


def space_values(config: SweepConfig, wanted: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """Every searched parameter at `wanted[name]`, else at the base config's value, and whether all
    of them lie in the space (one that does not takes its first choice or low end instead)."""
    base, params, inside_all = to_dict(config.run_config()), {}, True
    for name, param in config.space.items():
        value = wanted[name] if name in wanted else _lookup(base, config_key(name))
        inside = value is not None and in_space(param, value)
        params[name] = value if inside else extreme_values(param)[0]
        inside_all &= inside
    return params, inside_all


def _lookup(raw: dict, dotted: str) -> Any:
    for prefix in ("quantization.bits.",):
        if dotted.startswith(prefix):
            return raw["quantization"]["bits"].get(dotted[len(prefix):])
    value: Any = raw
    for part in dotted.split("."):
        if isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        elif isinstance(value, dict) and part in value:
            value = value[part]
        else:
            return None
    return value

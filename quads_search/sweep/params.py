"""The searched parameters: names, distributions, and how a sample becomes a run config.

A parameter name is a dotted config key (`training.alpha`, `student.layers`,
`training.schedule.cycles`) or a bit allocation `bits.<key>`, short for
`quantization.bits.<key>` (`default`, a tensor name or `re:<regex>`).
"""
from __future__ import annotations

from typing import Any

import optuna

from quads_search.config import ParamSpace, RunConfig, build, set_dotted, to_dict
from quads_search.results import NOT_PARAMS

RUN_SECTIONS = ("dataset", "teacher", "student", "training", "quantization")
REFERENCE_BITS_KEY = "reference_bits"  # a reference trial's uniform bit width, beside its sampled params


def config_key(name: str) -> str:
    """The dotted config key a parameter sets: `bits.<key>` is `quantization.bits.<key>`."""
    return "quantization." + name if name.startswith("bits.") else name


def apply_params(base: RunConfig, params: dict[str, Any], source: str = "<trial>") -> RunConfig:
    """`base` with every sampled parameter set, validated.

    A trial's kind and budget mark (`NOT_PARAMS`) are no parameters; a reference trial's uniform bit width
    (`REFERENCE_BITS_KEY`) replaces the whole bit allocation.
    """
    params = {k: v for k, v in params.items() if k not in NOT_PARAMS}
    uniform = params.pop(REFERENCE_BITS_KEY, None)
    if uniform is not None:  # the uniform width replaces the allocation; bits.* may be left missing (None)
        params = {k: v for k, v in params.items() if not k.startswith("bits.")}
    raw = to_dict(base)
    for name, value in params.items():
        set_dotted(raw, config_key(name), value, source)
    if uniform is not None:
        raw["quantization"]["bits"] = {"default": uniform}
    return build(RunConfig, raw, source)


def in_space(param: ParamSpace, value: Any) -> bool:
    """Whether the sampler could draw `value` for `param` (one of its choices, or inside its range)."""
    if param.choice is not None:
        return any(value == c for c in param.choice)  # as Optuna's categorical compares (1 == 1.0)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    low, high = param.int or param.uniform or param.loguniform
    return low <= value <= high and (param.int is None or float(value).is_integer())


def extreme_values(param: ParamSpace) -> list[Any]:
    """Every choice, or both ends of a range."""
    if param.choice is not None:
        return list(param.choice)
    return list(param.uniform or param.loguniform or param.int)


def distributions(space: dict[str, ParamSpace]) -> dict[str, optuna.distributions.BaseDistribution]:
    """The space as Optuna distributions, one per parameter name."""
    return {name: _distribution(param) for name, param in space.items()}


def _distribution(param: ParamSpace) -> optuna.distributions.BaseDistribution:
    if param.choice is not None:
        return optuna.distributions.CategoricalDistribution(param.choice)
    if param.int is not None:
        return optuna.distributions.IntDistribution(*param.int)
    low, high = param.uniform or param.loguniform
    return optuna.distributions.FloatDistribution(low, high, log=param.loguniform is not None)

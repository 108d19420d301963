"""The searched parameters: names, distributions, and how a sample becomes a run config.

A parameter name is a dotted config key (`training.alpha`, `student.layers`,
`training.schedule.cycles`) or a bit allocation `bits.<key>`, short for
`quantization.bits.<key>` (`default`, a tensor name or `re:<regex>`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import optuna

from quads_search.config import (
    ParamSpace,
    RunConfig,
    SearchConfig,
    SweepConfig,
    build,
    load_sweep_config,
    set_dotted,
    to_dict,
)
from quads_search.config.units import frames_for
from quads_search.errors import ConfigError, UserError
from quads_search.results import NOT_PARAMS
from quads_search.sweep.search_checks import bit_widths, search_problems

RUN_SECTIONS = ("dataset", "teacher", "student", "training", "quantization")
REFERENCE_BITS_KEY = "reference_bits"  # a reference trial's uniform bit width, beside its sampled params


def load_sweep(path, overrides: list[str] = (), smoke: bool = False) -> SweepConfig:
    """A search-space YAML, schema-checked and with every searched parameter tried on its base config."""
    config = load_sweep_config(path, overrides, smoke)
    problems = check_space(config)
    if problems:
        raise ConfigError(str(path), problems)
    return config


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


MAX_CHECKED_INTS = 256  # an int range up to this long has every value checked up front


def checked_values(param: ParamSpace) -> list[Any]:
    """The values validated before a sweep starts: every choice, every value of an int range (up to
    MAX_CHECKED_INTS of them: a rule such as `heads` dividing `d_model` can fail inside a range
    whose ends pass), the ends of a float range."""
    if param.int is not None and param.int[1] - param.int[0] < MAX_CHECKED_INTS:
        return list(range(param.int[0], param.int[1] + 1))
    return extreme_values(param)


def check_space(config: SweepConfig) -> list[str]:
    """Problems with `space`: unknown targets, values the config rejects, bits that match nothing."""
    problems = []
    base = config.run_config()
    for name, param in config.space.items():
        section = config_key(name).split(".")[0]
        if section not in RUN_SECTIONS:
            problems.append(f"space.{name}: must set a key under {list(RUN_SECTIONS)} or bits.*")
            continue
        if name.startswith("bits."):
            try:
                bit_widths(name, param)  # every width the sampler may draw, named together if some are none
            except UserError as exc:
                problems.append(str(exc))
                continue
        for value in checked_values(param):
            try:
                apply_params(base, {name: value}, f"space.{name}")
            except ConfigError as exc:
                problems += [f"space.{name}={value!r}: {p}" for p in exc.problems]
            except UserError as exc:
                problems.append(f"space.{name}={value!r}: {exc}")
    if not problems and not any(n.startswith("student.") for n in config.space):
        # With a searched student shape a tensor may exist in some shapes only; a trial whose
        # shape an override misses then fails with that override named.
        problems += _check_bit_targets(base, [n for n in config.space if n.startswith("bits.")])
    return problems + search_problems(config)  # search.warm_start, search.early_stop (#19)




def _check_bit_targets(base: RunConfig, searched: list[str]) -> list[str]:
    """Every override and searched `bits.*` name must match a weight of the base student."""
    from quads_search.core.planned import meta_model
    from quads_search.quant import quantizable_weights, resolve_bits

    names = list(quantizable_weights(meta_model(base.student, frames_for(base.dataset.seconds), base.cache_dir, 2)))
    problems = []
    targets = {f"quantization.bits.{k}": k for k in base.quantization.bits if k != "default"}
    targets.update({f"space.{n}": n[len("bits."):] for n in searched if n != "bits.default"})
    for where, key in targets.items():
        try:
            resolve_bits(names, 32, {key: 4})
        except UserError as exc:
            problems.append(f"{where}: {exc}")
    return problems


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


def _constraints_func(trial: optuna.trial.FrozenTrial) -> list[float]:
    return trial.user_attrs.get("constraints", [])


def make_sampler(search: SearchConfig, constrained: bool = False) -> optuna.samplers.BaseSampler:
    """The seeded sampler `search.sampler` names, sized to the trial budget.

    NSGA-II's population and TPE's random start-up are a third of the budget (capped), so a
    short sweep still gets generations / model-guided trials. With `constrained`, the
    sampler reads each trial's constraint values from its `constraints` user attribute.
    """
    kwargs = {"seed": search.seed, "constraints_func": _constraints_func if constrained else None}
    if search.sampler == "nsga2":
        return optuna.samplers.NSGAIISampler(population_size=max(4, min(20, search.num_samples // 3)), **kwargs)
    if search.sampler == "tpe":
        return optuna.samplers.TPESampler(n_startup_trials=max(2, min(10, search.num_samples // 3)), **kwargs)
    if search.sampler == "gp":  # multi-objective with constraints since Optuna 4.5; needs scipy
        return optuna.samplers.GPSampler(n_startup_trials=max(2, min(10, search.num_samples // 3)), **kwargs)
    if search.sampler == "random":
        return optuna.samplers.RandomSampler(seed=search.seed)
    raise ValueError(f"search.sampler: unknown sampler {search.sampler!r}")

"""The searched parameters: names, distributions, and how a sample becomes a run config.

A parameter name is a dotted config key (`training.alpha`, `student.layers`,
`training.schedule.cycles`) or a bit allocation: `bits.default` sets
`quantization.bits`, `bits.<tensor or re:regex>` adds a `quantization.overrides` entry.
"""
from __future__ import annotations

from typing import Any

import optuna
import torch

from quads_search.config import ParamSpace, RunConfig, SearchConfig, SweepConfig, build, set_dotted, to_dict
from quads_search.errors import ConfigError, UserError

RUN_SECTIONS = ("dataset", "teacher", "student", "training", "quantization")


def config_key(name: str) -> str:
    """The dotted config key a parameter sets."""
    if name == "bits.default":
        return "quantization.bits"
    if name.startswith("bits."):
        return "quantization.overrides." + name[len("bits."):]
    return name


def apply_params(base: RunConfig, params: dict[str, Any], source: str = "<trial>") -> RunConfig:
    """`base` with every sampled parameter set, validated."""
    raw = to_dict(base)
    for name, value in params.items():
        set_dotted(raw, config_key(name), value, source)
    return build(RunConfig, raw, source)


def extreme_values(param: ParamSpace) -> list[Any]:
    """Every choice, or both ends of a range: the values worth validating up front."""
    if param.choice is not None:
        return list(param.choice)
    return list(param.uniform or param.loguniform or param.int)


def check_space(config: SweepConfig) -> list[str]:
    """Problems with `space`: unknown targets, values the config rejects, bits that match nothing."""
    problems = []
    base = config.run_config()
    for name, param in config.space.items():
        section = config_key(name).split(".")[0]
        if section not in RUN_SECTIONS:
            problems.append(f"space.{name}: must set a key under {list(RUN_SECTIONS)} or bits.*")
            continue
        for value in extreme_values(param):
            try:
                apply_params(base, {name: value}, f"space.{name}")
            except ConfigError as exc:
                problems += [f"space.{name}={value!r}: {p}" for p in exc.problems]
            except UserError as exc:
                problems.append(f"space.{name}={value!r}: {exc}")
    if not problems and not any(config_key(n).startswith("student.") for n in config.space):
        # With a searched student shape a tensor may exist in some shapes only; a trial whose
        # shape an override misses then fails with that override named.
        problems += _check_bit_targets(base, [n for n in config.space if n.startswith("bits.")])
    return problems


def _check_bit_targets(base: RunConfig, searched: list[str]) -> list[str]:
    """Every override and searched `bits.*` name must match a weight of the base student."""
    from quads_search.models import SLUModel, encoder_arch
    from quads_search.quant import quantizable_weights, resolve_bits

    arch = encoder_arch(base.student, round(base.dataset.seconds * 100), base.cache_dir)  # may convert: not on meta
    with torch.device("meta"):
        model = SLUModel(arch, 2)
    names = list(quantizable_weights(model))
    problems = []
    targets = {f"quantization.overrides.{k}": k for k in base.quantization.overrides}
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
    if search.sampler == "random":
        return optuna.samplers.RandomSampler(seed=search.seed)
    raise ValueError(f"search.sampler: unknown sampler {search.sampler!r}")

"""A search space loaded and checked before anything runs: every searched value is tried on the
base config, every bit target must match a weight, and the search settings must fit the space.

The parameters themselves (names, distributions, applying a sample) are `sweep.params`.
"""
from __future__ import annotations

from typing import Any

from quads_search.config import ParamSpace, RunConfig, SweepConfig, load_sweep_config
from quads_search.config.units import frames_for
from quads_search.errors import ConfigError, UserError
from quads_search.sweep.params import RUN_SECTIONS, apply_params, config_key, extreme_values
from quads_search.sweep.search_checks import bit_widths, search_problems

def load_sweep(path, overrides: list[str] = (), smoke: bool = False) -> SweepConfig:
    """A search-space YAML, schema-checked and with every searched parameter tried on its base config."""
    config = load_sweep_config(path, overrides, smoke)
    problems = check_space(config)
    if problems:
        raise ConfigError(str(path), problems)
    return config


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

"""Optuna samplers from `search`: seeded, sized to the trial budget, optionally constrained."""
from __future__ import annotations

import optuna

from quads_search.config import SearchConfig

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

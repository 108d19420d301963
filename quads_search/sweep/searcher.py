"""Optuna through Ray Tune: a searcher that fails (rather than loses) incomplete trials,
feeds constraint values to the sampler, and runs enqueued trials (references, seeds) first.

An enqueued trial carries its kind (`reference`, `seeded`) in its Optuna user attributes;
`suggest` hands it to the trial as `KIND_KEY`, beside a uniform bit width for references
(`REFERENCE_BITS_KEY`). A reference whose configuration the space cannot express (the fp32
student, when 32 bits is no choice) is told to Optuna as failed, so its sampler never
models parameters that were not what ran. A trial stopped early (`search.early_stop`) is told
to Optuna as PRUNED.
"""
from __future__ import annotations

import math
import time
from pathlib import Path

import optuna
from ray.tune.search import ConcurrencyLimiter
from ray.tune.search.optuna import OptunaSearch

from quads_search.config import SweepConfig
from quads_search.results import KIND_KEY
from quads_search.sweep.space import REFERENCE_BITS_KEY, Enqueued, distributions, make_sampler
from quads_search.sweep.stopping import was_stopped


class QuadsOptunaSearch(OptunaSearch):
    def __init__(self, *args, constraints: dict[str, float], enqueue: list[Enqueued] = (), **kwargs):
        super().__init__(*args, **kwargs)
        self._constraints = constraints
        for item in enqueue:
            self._ot_study.enqueue_trial(item.params, user_attrs=item.attrs)

    def suggest(self, trial_id: str) -> dict | None:
        params = super().suggest(trial_id)
        attrs = self._ot_trials[trial_id].user_attrs
        params[KIND_KEY] = attrs.get("kind", "searched")
        if REFERENCE_BITS_KEY in attrs:
            params[REFERENCE_BITS_KEY] = attrs[REFERENCE_BITS_KEY]
        return params

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        if not error and was_stopped(result):
            # Stopped after a stage by search.early_stop: PRUNED, so the sampler neither learns
            # made-up objective values nor takes the trial for a failed configuration.
            self._ot_trials[trial_id].set_user_attr("stopped_after_stage", result["stage"])
            super().on_trial_complete(trial_id, None, error=False)
            return
        values = [(result or {}).get(m) for m in self.metric]
        complete = all(isinstance(v, (int, float)) and math.isfinite(v) for v in values)
        ot_trial = self._ot_trials.get(trial_id)
        if ot_trial is not None and not ot_trial.user_attrs.get("expressible", True):
            complete = False  # what ran is outside the space: the sampler must not learn from it
        if ot_trial is not None and complete and self._constraints:
            ot_trial.set_user_attr("constraints", [result[m] - bound for m, bound in self._constraints.items()])
        super().on_trial_complete(trial_id, result if complete else None, error=error or not complete)


def make_searcher(config: SweepConfig, experiment_dir: Path, enqueue: list[Enqueued]) -> ConcurrencyLimiter:
    """Seeded multi-objective OptunaSearch whose study lives in a journal beside the results."""
    search = config.search
    constraints = dict(search.constraints)
    storage = optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(experiment_dir / "optuna.journal")))
    searcher = QuadsOptunaSearch(
        space=distributions(config.space), metric=list(search.objectives), mode=list(search.objectives.values()),
        sampler=make_sampler(search, constrained=bool(constraints)), storage=storage, constraints=constraints,
        study_name=f"{config.name}-{time.strftime('%Y%m%d-%H%M%S')}", enqueue=enqueue)
    return ConcurrencyLimiter(searcher, max_concurrent=search.max_concurrent)

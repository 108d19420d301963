"""Optuna through Ray Tune: a searcher that fails (rather than loses) incomplete trials,
feeds constraint values to the sampler, and runs enqueued trials (references, seeds) first.

An enqueued trial carries its kind (`reference`, `seeded`) in its Optuna user attributes;
`suggest` hands it to the trial as `KIND_KEY`, beside a uniform bit width for references
(`REFERENCE_BITS_KEY`). A reference whose configuration the space cannot express (the fp32
student, when 32 bits is no choice) is told to Optuna as failed, so its sampler never
models parameters that were not what ran (its `bits.*` reach Ray as missing, not as the
placeholder widths Optuna holds). A trial stopped early (`search.early_stop`) is told to Optuna
as PRUNED.

With `search.budget`, every suggestion is drawn by `budget.ask_within_budget`: a draw over
budget is told to Optuna as PRUNED with its constraint values and never reaches Ray; a reference
over budget runs, marked (`OVER_BUDGET_KEY`). The rejected draws are counted in `budget.json`
beside the results, rewritten as the count grows; if the redraws run out, the searcher writes
the reason there and tells Ray Tune it has finished.
"""
from __future__ import annotations

import math
import time
from pathlib import Path

import optuna
from ray.tune.search import ConcurrencyLimiter, Searcher
from ray.tune.search.optuna import OptunaSearch

from quads_search.config import SweepConfig
from quads_search.files import write_json
from quads_search.results import KIND_KEY, OVER_BUDGET_KEY
from quads_search.sweep.budget import BUDGET_FILE, BudgetCheck, BudgetExhausted, ask_within_budget
from quads_search.sweep.params import REFERENCE_BITS_KEY, distributions
from quads_search.sweep.references import Enqueued
from quads_search.sweep.samplers import make_sampler
from quads_search.sweep.stopping import was_stopped


class QuadsOptunaSearch(OptunaSearch):
    def __init__(self, *args, constraints: dict[str, float], enqueue: list[Enqueued] = (),
                 budget: BudgetCheck | None = None, budget_file: Path | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self._constraints = constraints
        self._budget, self._budget_file = budget, budget_file
        self.budget_record = {"budget": budget.budget.bounds() if budget else None, "rejected_draws": 0,
                              "random_redraws": 0, "references_over_budget": [], "stopped": None}
        if budget_file is not None:
            write_json(budget_file, self.budget_record)
        for item in enqueue:
            self._ot_study.enqueue_trial(item.params, user_attrs=item.attrs)

    def suggest(self, trial_id: str) -> dict | None:
        over = None
        if self._budget is not None and trial_id not in self._ot_trials:
            try:
                draw = ask_within_budget(self._ot_study, self._space, self._budget)
            except BudgetExhausted as exc:
                self._note_budget(exc.rejected, stopped=str(exc))
                return Searcher.FINISHED
            self._ot_trials[trial_id], over = draw.trial, draw.over_budget
            self._note_budget(draw.rejected, random=draw.random_redraws,
                              reference=draw.trial.user_attrs.get(REFERENCE_BITS_KEY) if over else None)
        params = super().suggest(trial_id)
        attrs = self._ot_trials[trial_id].user_attrs
        params[KIND_KEY] = attrs.get("kind", "searched")
        if over is not None:
            params[OVER_BUDGET_KEY] = over
        if REFERENCE_BITS_KEY in attrs:
            width = params[REFERENCE_BITS_KEY] = attrs[REFERENCE_BITS_KEY]
            # The uniform width ran everywhere: a bits.* placeholder the space could not express is missing.
            params.update({name: None for name, value in params.items() if name.startswith("bits.") and value != width})
        return params

    def _note_budget(self, rejected: int, random: bool = False, reference: int | None = None,
                     stopped: str | None = None) -> None:
        """Count what the budget did and rewrite budget.json when that changed."""
        record = self.budget_record
        record["rejected_draws"] += rejected
        record["random_redraws"] += int(random)
        if reference is not None:
            record["references_over_budget"].append(reference)
        record["stopped"] = stopped or record["stopped"]
        if self._budget_file is not None and (rejected or random or reference is not None or stopped):
            write_json(self._budget_file, record)

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


def make_searcher(config: SweepConfig, experiment_dir: Path, enqueue: list[Enqueued],
                  num_classes: int | None = None) -> ConcurrencyLimiter:
    """Seeded multi-objective OptunaSearch whose study lives in a journal beside the results.

    With `search.budget`, `num_classes` (the prepared data's intents) sizes the planned head."""
    search = config.search
    constraints = dict(search.constraints)
    storage = optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(experiment_dir / "optuna.journal")))
    budget = None
    if search.hard_budget() is not None:
        if num_classes is None:
            raise ValueError("search.budget needs num_classes to plan a trial's costs")
        budget = BudgetCheck(search.hard_budget(), config.run_config(), num_classes)
    searcher = QuadsOptunaSearch(
        space=distributions(config.space), metric=list(search.objectives), mode=list(search.objectives.values()),
        sampler=make_sampler(search, constrained=bool(constraints)), storage=storage, constraints=constraints,
        study_name=f"{config.name}-{time.strftime('%Y%m%d-%H%M%S')}", enqueue=enqueue, budget=budget,
        budget_file=experiment_dir / BUDGET_FILE if budget else None)
    return ConcurrencyLimiter(searcher, max_concurrent=search.max_concurrent)

"""Hard budgets (`search.budget`): a trial's costs known before it trains, and draws that respect them.

A trial's packed size (MiB), average bits and GMACs follow from its configuration alone
(`core.planned.planned_costs`: the student on the meta device, counted with the functions a
run's end counts with, so a planned cost is the metric the trial would report). `ask_within_budget` asks the
study for a trial, records cost − bound for every budgeted key with Optuna's public
`Trial.set_constraint` (> 0: infeasible), and trains nothing over budget: such a draw is told
PRUNED, without objective values, and the study is asked again. Reference trials are the
exception: they run over budget (the caller marks them), carrying their constraint values.

What a rejected draw teaches each sampler (Optuna 5.1, read in its source):
  TPE       reads COMPLETE and PRUNED trials, and sorts any with a positive constraint into an
            infeasible group it splits last (`_tpe/sampler.py: _split_trials`): the draw joins
            the "above" density, so TPE draws less like it.
  NSGA-II   builds its generations from COMPLETE trials only (`_ga/_base.py`): a rejected draw is
            invisible to it, and redrawing is rejection sampling from its proposal (random in
            the first generation, crossover and mutation after). Trained trials carry their
            constraints, so its constrained domination ranks an over-budget reference last.
  GP        fits its objective and constraint models on COMPLETE trials only, so a rejected draw
            is invisible to it too; its feasibility model learns from the trained trials'
            constraint values (an over-budget reference among them). Its acquisition optimum can
            sit over budget until new trials train, so after STALL_AFTER rejected proposals in a
            row the suggestion is redrawn at random (`Draw.random_redraws`).
  random    ignores constraints: rejection sampling.
Ray-free: the sweep's searcher and the benches share it.
"""
from __future__ import annotations

import contextlib
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import optuna

from quads_search.config import RunConfig, SweepConfig
from quads_search.config.schema import BudgetConfig
from quads_search.core.planned import planned_costs
from quads_search.errors import UserError
from quads_search.results import TRIALS_FILE
from quads_search.sweep.search_checks import bit_widths
from quads_search.sweep.params import REFERENCE_BITS_KEY, apply_params

BUDGET_FILE = "budget.json"  # beside trials.parquet: the budget and how many draws it rejected
MAX_REDRAWS = 5000  # draws in a row over budget before a sweep gives up on the budget
STALL_AFTER = 10  # proposals in a row over budget from a sampler that cannot see them, then random redraws


class BudgetExhausted(UserError):
    """The sampler kept drawing over budget: the space may hold nothing within it."""

    def __init__(self, message: str, rejected: int):
        super().__init__(message)
        self.rejected = rejected

    def __reduce__(self):
        return type(self), (str(self), self.rejected)


def budget_text(budget: BudgetConfig) -> str:
    """`size_mb <= 0.05, bits_avg <= 2` (for messages)."""
    return ", ".join(f"{k} <= {v:g}" for k, v in budget.bounds().items())


@dataclass(frozen=True)
class BudgetCheck:
    """A budget with what it needs to plan a trial's costs: the base config and the number of classes."""

    budget: BudgetConfig
    base: RunConfig
    num_classes: int

    def constraints(self, params: dict[str, Any]) -> dict[str, float] | None:
        """cost − bound per budgeted key (> 0: over); None when `params` make no valid config (the
        trial then fails in training as it would without a budget)."""
        try:
            costs = planned_costs(apply_params(self.base, params), self.num_classes)
        except UserError:
            return None
        return {key: costs[key] - bound for key, bound in self.budget.bounds().items()}


def trial_params(trial: optuna.trial.Trial | optuna.trial.FrozenTrial) -> dict[str, Any]:
    """A trial's parameters as `apply_params` takes them: a reference's uniform width rides in its user attrs."""
    return {**trial.params, **{k: v for k, v in trial.user_attrs.items() if k == REFERENCE_BITS_KEY}}


def is_over(constraints: dict[str, float] | None) -> bool:
    return constraints is not None and any(v > 0 for v in constraints.values())


@dataclass(frozen=True)
class Draw:
    """A trial to train, the draws over budget rejected before it, and whether it is itself over (a reference)."""

    trial: optuna.trial.Trial
    rejected: int
    over_budget: bool
    random_redraws: bool  # the sampler kept proposing over budget, so this one came from a random redraw


def _stalls_on_rejections(sampler: optuna.samplers.BaseSampler) -> bool:
    """Whether `sampler` may propose the same over-budget region again and again. GPSampler fits its
    models to COMPLETE trials only and optimises its acquisition afresh each time: a rejected draw
    changes nothing it sees, so it can keep landing there. TPE learns from the rejection; NSGA-II
    and random draw with fresh randomness (and NSGA-II must keep drawing its own trials, which
    carry its generation bookkeeping)."""
    return isinstance(sampler, optuna.samplers.GPSampler)


@contextlib.contextmanager
def _drawing_with(study: optuna.Study, sampler: optuna.samplers.BaseSampler) -> Iterator[None]:
    """`study` draws from `sampler` inside the block (`Study.sampler` is public)."""
    original = study.sampler
    study.sampler = sampler
    try:
        yield
    finally:
        study.sampler = original


def ask_within_budget(study: optuna.Study, space: dict[str, optuna.distributions.BaseDistribution],
                      check: BudgetCheck, max_redraws: int | None = None) -> Draw:
    """The next trial that fits the budget (or a reference, which runs regardless), with how many
    draws before it were over budget and told PRUNED with their constraints. Every returned trial
    carries its constraint values too. A sampler that stalls on rejections (`_stalls_on_rejections`)
    gets STALL_AFTER proposals, then the suggestion is redrawn at random. Raises BudgetExhausted
    after `max_redraws` (default MAX_REDRAWS) rejected draws in a row."""
    max_redraws = max_redraws or MAX_REDRAWS
    rejected, least, stalls, fallback = 0, {}, _stalls_on_rejections(study.sampler), None
    while True:
        with _drawing_with(study, fallback) if fallback else contextlib.nullcontext():
            trial = study.ask(space)
        constraints = check.constraints(trial_params(trial))
        for key, value in (constraints or {}).items():
            trial.set_constraint(key, value)
        if trial.user_attrs.get("kind") == "reference" or not is_over(constraints):
            return Draw(trial, rejected, is_over(constraints), fallback is not None)
        study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        rejected += 1
        if stalls and rejected == STALL_AFTER:  # seeded by the trial number: another stream for each suggestion
            fallback = optuna.samplers.RandomSampler(seed=trial.number)
        least = {k: min(v, least.get(k, math.inf)) for k, v in constraints.items()}
        if rejected >= max_redraws:
            closest = ", ".join(f"{k} {check.budget.bounds()[k] + v:.4g}" for k, v in least.items())
            raise BudgetExhausted(f"search.budget ({budget_text(check.budget)}): {rejected} draws in a row were over "
                                  f"it; the space may hold nothing within it (least planned: {closest})", rejected)


COST_SECTIONS = ("student.", "dataset.", "quantization.")  # searched keys that move a trial's costs besides bits.*


def check_reachable(config: SweepConfig, num_classes: int) -> None:
    """A UserError, before Ray starts, when even the space's narrowest allocation (every `bits.*` at
    its narrowest width, the rest at the base config) is over `search.budget`. Checked where only
    the bits move the costs; where the space also searches the student's shape, the dataset or
    the quantizer, the redraw cap ends a hopeless search instead."""
    budget = config.search.hard_budget()
    if budget is None or any(name.startswith(COST_SECTIONS) for name in config.space):
        return
    narrowest = {n: min(bit_widths(n, p)) for n, p in config.space.items() if n.startswith("bits.")}
    over = BudgetCheck(budget, config.run_config(), num_classes).constraints(narrowest) or {}
    bounds = budget.bounds()
    for key, excess in over.items():
        if excess > 0:
            raise UserError(f"search.budget.{key}={bounds[key]:g}: even the space's narrowest allocation (every bits.* "
                            f"at its narrowest width) plans {key} {bounds[key] + excess:.4g}; nothing fits")


def read_record(experiment_dir: Path) -> dict | None:
    """What the budget did in a sweep (`BUDGET_FILE`), or None without a budget."""
    path = Path(experiment_dir) / BUDGET_FILE
    return json.loads(path.read_text()) if path.is_file() else None


def record_line(record: dict) -> str:
    """One line for the sweep's log: the budget, the draws it rejected, the references that ran over it."""
    bounds = ", ".join(f"{k} <= {v:g}" for k, v in record["budget"].items())
    refs = record["references_over_budget"]
    return (f"search.budget ({bounds}): {record['rejected_draws']} draws over budget rejected, never trained"
            + (f" ({record['random_redraws']} suggestions redrawn at random)" if record["random_redraws"] else "")
            + (f"; references over budget that ran anyway (over_budget in {TRIALS_FILE}): "
               f"{', '.join(f'{b} bits' for b in refs)}" if refs else "")
            + f"; see {BUDGET_FILE}")

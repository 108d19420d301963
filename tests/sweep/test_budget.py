"""Hard budgets (#29): settings, planned costs against what a run reports, draws over budget told to
Optuna as infeasible and redrawn (counted), references over budget marked, and one real smoke sweep
(the shared one) that trains nothing over its budget."""
import dataclasses
import json
import warnings

import optuna
import pandas as pd
import pytest
import torch

from quads_search.config.schema import BudgetConfig
from quads_search.core.allocation import Option
from quads_search.core.models import build_model
from quads_search.core.profile import cost_report
from quads_search.core.quantizer import make_quantizer
from quads_search.config.units import frames_for
from quads_search.errors import ConfigError, UserError
from quads_search.core.planned import planned_costs
from quads_search.pareto.front import select
from quads_search.results import OVER_BUDGET_KEY, to_frame, trial_row
from quads_search.sweep import budget as budget_module
from quads_search.sweep.budget import (
    BUDGET_FILE,
    BudgetCheck,
    BudgetExhausted,
    ask_within_budget,
    check_reachable,
    trial_params,
)
from quads_search.sweep.searcher import make_searcher
from quads_search.sweep.seeding import capped_budgets
from quads_search.sweep.params import apply_params, distributions
from quads_search.sweep.references import reference_trials
from quads_search.sweep.samplers import make_sampler
from quads_search.sweep.space import load_sweep
from tests.conftest import SMOKE_CLASSES, SPACE, smoke_budget_mb, uniform_size
from tests.runner import run_cli
from tests.sweep.common import study_trials

CLASSES = SMOKE_CLASSES


@pytest.fixture(scope="module")
def config(tmp_path_factory):
    return load_sweep(SPACE, [f"cache_dir={tmp_path_factory.mktemp('cache')}"], smoke=True)


def study(config, sampler: str, seed: int = 0):
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    search = dataclasses.replace(config.search, sampler=sampler, seed=seed, num_samples=6)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # GPSampler: experimental-argument warnings
        return optuna.create_study(sampler=make_sampler(search), directions=["maximize", "minimize"])


# -- settings -------------------------------------------------------------------------------------
@pytest.mark.parametrize("override, named", [
    ("search.budget.size_mb=-1", "search.budget.size_mb (line"),
    ("search.budget.bits_avg=0", "search.budget.bits_avg (line"),
    ("search.budget.gmacs=.nan", "search.budget.gmacs (line"),
    ("search.budget.params_m=3", "search.budget.params_m (line"),
])
def test_a_budget_key_or_value_out_of_place_is_a_config_error_naming_it(override, named):
    with pytest.raises(ConfigError, match=named.replace("(", r"\(")):
        load_sweep(SPACE, [override])


def test_a_budget_is_any_subset_of_its_keys_and_an_empty_one_bounds_nothing():
    search = load_sweep(SPACE, ["search.budget={size_mb: 0.05, gmacs: 1}"]).search
    assert search.budget == BudgetConfig(size_mb=0.05, gmacs=1.0) and search.hard_budget().bounds() == {
        "size_mb": 0.05, "gmacs": 1.0}
    assert load_sweep(SPACE, ["search.budget={}"]).search.hard_budget() is None
    assert load_sweep(SPACE).search.budget is None


def test_a_bad_budget_exits_2_with_one_line_before_anything_starts(tmp_path):
    out = run_cli("run", SPACE, "--smoke", "--results-dir", tmp_path, "--set", "search.budget.size_mb=-0.5")
    assert out.returncode == 2 and "search.budget.size_mb" in out.stderr and "-0.5" in out.stderr, out.stderr
    assert len(out.stderr.strip().splitlines()) == 1 and "preparing shared data" not in out.stdout


# -- planned costs: what the run will report, and what `pareto --max-size-mb` bounds ----------------
@pytest.mark.parametrize("params", [{}, {"bits.conv1": 2, "bits.re:layers\\.1\\.fc[12]": 1, "bits.head": 8},
                                    {"quantization.method": "affine", "bits.conv2": 8}, {"reference_bits": 32}])
def test_planned_costs_equal_the_costs_a_run_reports(config, params):
    run_config = apply_params(config.run_config(), params)
    torch.manual_seed(0)
    frames = frames_for(run_config.dataset.seconds)
    model = build_model(run_config.student, CLASSES, frames)
    quantizer = make_quantizer(model, run_config.quantization)
    reported = cost_report(model, quantizer.bits, frames, run_config.quantization.activation_bits, quantizer.method)
    planned = planned_costs(run_config, CLASSES)
    assert planned == {key: reported[key] for key in ("size_mb", "bits_avg", "gmacs")}


# -- drawing within a budget ------------------------------------------------------------------------
@pytest.mark.parametrize("sampler", ["tpe", "nsga2", "random"])
def test_a_draw_over_budget_is_told_pruned_with_its_constraint_and_redrawn_and_counted(config, sampler):
    bound = uniform_size(config, 2)  # ~2 % of the space's allocations fit: random draws miss it often
    check = BudgetCheck(BudgetConfig(size_mb=bound), config.run_config(), CLASSES)
    the_study, space, rejected = study(config, sampler), distributions(config.space), 0
    for _ in range(5):
        draw = ask_within_budget(the_study, space, check)
        assert not draw.over_budget and draw.trial.constraints["size_mb"] <= 0
        assert planned_costs(apply_params(config.run_config(), draw.trial.params), CLASSES)["size_mb"] <= bound
        rejected += draw.rejected
        the_study.tell(draw.trial, [0.5, 0.03])
    pruned = [t for t in the_study.trials if t.state == optuna.trial.TrialState.PRUNED]
    assert rejected > 0 and len(pruned) == rejected  # every rejected draw reached Optuna, none was invented
    assert all(t.values is None and t.constraints["size_mb"] > 0 for t in pruned)


def test_tpe_learns_from_rejected_draws_and_stops_drawing_over_budget(config):
    check = BudgetCheck(BudgetConfig(size_mb=uniform_size(config, 2)), config.run_config(), CLASSES)
    the_study, space = study(config, "tpe", seed=1), distributions(config.space)
    counts = []
    for _ in range(8):
        draw = ask_within_budget(the_study, space, check)
        counts.append(draw.rejected)
        the_study.tell(draw.trial, [0.5, 0.03])
    assert sum(counts[-4:]) * 4 < sum(counts[:4]), counts  # after its random start-up it rarely misses


class OverBudgetGP(optuna.samplers.GPSampler):
    """A GPSampler whose model always proposes the widest allocation: what a stalled acquisition does."""

    def sample_relative(self, study, trial, search_space):
        return {n: max(d.choices) for n, d in search_space.items() if n.startswith("bits.")}


def test_a_sampler_that_stalls_over_budget_is_redrawn_at_random_after_a_few_proposals(config):
    check = BudgetCheck(BudgetConfig(size_mb=uniform_size(config, 4)), config.run_config(), CLASSES)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        the_study = optuna.create_study(sampler=OverBudgetGP(seed=0, n_startup_trials=0),
                                        directions=["maximize", "minimize"])
    space = distributions(config.space)
    the_study.enqueue_trial({n: 2 for n in space if n.startswith("bits.")} | {"training.alpha": 0.01,
                                                                              "training.gamma": 0.99})
    the_study.tell(ask_within_budget(the_study, space, check).trial, [0.5, 0.03])  # the search space is known now
    draw = ask_within_budget(the_study, space, check)
    assert draw.random_redraws and draw.rejected >= budget_module.STALL_AFTER
    assert draw.trial.constraints["size_mb"] <= 0


def test_a_reference_runs_over_budget_marked_and_a_hopeless_budget_ends_with_one_line(config):
    check = BudgetCheck(BudgetConfig(size_mb=0.001), config.run_config(), CLASSES)
    the_study, space = study(config, "tpe"), distributions(config.space)
    for item in reference_trials(config):
        the_study.enqueue_trial(item.params, user_attrs=item.attrs)
    draw = ask_within_budget(the_study, space, check)
    assert draw.over_budget and draw.rejected == 0 and trial_params(draw.trial)["reference_bits"] == 32
    the_study.tell(draw.trial, state=optuna.trial.TrialState.FAIL)
    with pytest.raises(BudgetExhausted, match=r"search.budget \(size_mb <= 0.001\): 20 draws in a row") as exc:
        ask_within_budget(the_study, space, check, max_redraws=20)
    assert exc.value.rejected == 20 and "(least planned: size_mb 0.0" in str(exc.value)


def test_a_budget_below_the_narrowest_allocation_is_a_user_error_before_ray(config):
    tight = dataclasses.replace(config, search=dataclasses.replace(config.search, budget=BudgetConfig(size_mb=0.01)))
    with pytest.raises(UserError, match=r"search.budget.size_mb=0.01: even the space's narrowest allocation"):
        check_reachable(tight, CLASSES)
    check_reachable(config, CLASSES)  # no budget: nothing to check


def test_seed_budgets_spread_up_to_the_size_budget():
    options = {"a": [Option(1, 10, 1.0), Option(8, 80, 0.0)], "b": [Option(2, 20, 1.0), Option(4, 40, 0.0)]}
    assert max(capped_budgets(options, 5, 3, 60)) <= 60 and min(capped_budgets(options, 5, 3, 60)) >= 35
    assert capped_budgets(options, 5, 3, None) == capped_budgets(options, 5, 3, 10_000)


# -- the searcher and the rows ----------------------------------------------------------------------
def test_the_searcher_marks_references_over_budget_counts_rejections_and_leaves_fp32_bits_missing(config, tmp_path):
    budgeted = load_sweep(SPACE, [f"cache_dir={config.cache_dir}", "search.budget.size_mb=0.04",
                                  "search.references=[32, 2]"], smoke=True)
    searcher = make_searcher(budgeted, tmp_path, enqueue=reference_trials(budgeted), num_classes=CLASSES).searcher
    suggested = []
    for index in range(4):
        suggested.append(searcher.suggest(f"t{index}"))
        searcher.on_trial_complete(f"t{index}", {"valid_accuracy": 0.5, "size_mb": 0.03})
    fp32, two, *searched = suggested
    assert fp32[OVER_BUDGET_KEY] is True and all(fp32[n] is None for n in fp32 if n.startswith("bits."))
    assert two[OVER_BUDGET_KEY] is False and all(two[n] == 2 for n in two if n.startswith("bits."))
    assert all(s[OVER_BUDGET_KEY] is False and s["trial_kind"] == "searched" for s in searched)
    record = json.loads((tmp_path / BUDGET_FILE).read_text())
    pruned = [t for t in searcher._ot_study.trials if t.state == optuna.trial.TrialState.PRUNED]
    assert record["rejected_draws"] == len(pruned) > 0 and record["references_over_budget"] == [32]
    rows = [trial_row(f"t{i}", "e", config, {"status": "finished"}) for i, config in enumerate(suggested)]
    frame = to_frame(rows)
    assert list(frame["over_budget"]) == [True, False, False, False]
    assert frame["param.bits.conv1"].dtype == "Int64" and pd.isna(frame["param.bits.conv1"][0])
    assert "param.over_budget" not in frame and "param.trial_kind" not in frame


def test_when_the_redraws_run_out_the_searcher_finishes_and_records_why(config, tmp_path, monkeypatch):
    from ray.tune.search import Searcher

    monkeypatch.setattr(budget_module, "MAX_REDRAWS", 5)
    hopeless = load_sweep(SPACE, [f"cache_dir={config.cache_dir}", "search.budget.gmacs=0.001",
                                  "search.references=[]"], smoke=True)
    searcher = make_searcher(hopeless, tmp_path, enqueue=[], num_classes=CLASSES).searcher
    assert searcher.suggest("t0") == Searcher.FINISHED
    record = json.loads((tmp_path / BUDGET_FILE).read_text())
    assert record["rejected_draws"] == 5 and record["stopped"].startswith("search.budget (gmacs <= 0.001): 5 draws")


# -- the shared smoke sweep runs under a size budget ------------------------------------------------
@pytest.mark.slow
def test_the_budgeted_smoke_sweep_trains_nothing_over_budget_but_the_marked_reference_and_counts_rejections(
        smoke_sweep, prepared):
    assert len(prepared.data.intents) == SMOKE_CLASSES
    bound = smoke_budget_mb()  # uniform 2 bits: ~2 % of the space fits
    output = (smoke_sweep / "run-output.txt").read_text()
    experiment = smoke_sweep / "mixed_precision"
    record = json.loads((experiment / BUDGET_FILE).read_text())
    assert f"search.budget (size_mb <= {bound:g}): {record['rejected_draws']} draws over budget rejected" in output
    trials = pd.read_parquet(experiment / "trials.parquet")
    assert len(trials) == 3 and (trials["status"] == "finished").all(), trials[["status", "error"]]
    reference = trials[trials["kind"] == "reference"]
    assert len(reference) == 1 and reference["over_budget"].all() and reference["size_mb"].iloc[0] > bound
    assert reference[[c for c in trials.columns if c.startswith("param.bits.")]].isna().all(axis=None)
    others = trials[trials["kind"] != "reference"]
    assert not others["over_budget"].any() and (others["size_mb"] <= bound).all()
    # the budget and `pareto --max-size-mb` mean the same size: the chosen trial is one of the budgeted ones
    assert set(select(trials, max_size_mb=bound)["trial_id"]) <= set(others["trial_id"])
    optuna_trials = study_trials(experiment)
    rejected = [t for t in optuna_trials if t.state == optuna.trial.TrialState.PRUNED]
    assert record["rejected_draws"] == len(rejected) > 0 and record["references_over_budget"] == [32]
    assert all(t.values is None and t.constraints["size_mb"] > 0 for t in rejected)
    trained = [t for t in optuna_trials if t.state != optuna.trial.TrialState.PRUNED]
    assert len(trained) == 3 and all(t.constraints["size_mb"] <= 0 for t in trained if t.number > 0)

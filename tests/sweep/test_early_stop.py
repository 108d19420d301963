"""Early stopping and warm-start settings (#19): the rule on constructed histories, the scheduler,
how the searcher and the recorder treat a stopped trial, the planned size, and config checks."""
from types import SimpleNamespace

import optuna
import pandas as pd
import pytest
import torch
from ray.tune.schedulers import TrialScheduler

from quads_search.config.units import frames_for
from quads_search.config.schema import EarlyStopConfig
from quads_search.core.models import build_model
from quads_search.core.planned import planned_size_mb
from quads_search.core.quantizer import make_quantizer
from quads_search.errors import ConfigError
from quads_search.pareto.front import finished
from quads_search.quant import size_report
from quads_search.results import KIND_KEY, TrialTable
from quads_search.sweep.progress import TrialRecorder
from quads_search.sweep.scheduler import EarlyStopScheduler
from quads_search.sweep.searcher import QuadsOptunaSearch
from quads_search.sweep.params import apply_params
from quads_search.sweep.space import load_sweep
from quads_search.sweep.stopping import StageScore, dominating_witness, was_stopped
from tests.conftest import SPACE

RULE = EarlyStopConfig(after_stage=2, margin=0.1, grace=2)


def score(trial_id, size, accuracy):
    return StageScore(trial_id, size, accuracy)


# -- the rule ------------------------------------------------------------------------------------
def test_a_trial_is_stopped_only_once_grace_trials_reported_and_one_is_no_larger_and_margin_better():
    me = score("me", 1.0, 0.30)
    witness = score("w", 0.9, 0.45)
    assert dominating_witness(me, [witness], RULE) is None  # one other trial: below the grace of 2
    assert dominating_witness(me, [witness, score("x", 2.0, 0.1)], RULE) == witness
    assert dominating_witness(me, [score("a", 0.5, 0.39), score("b", 2.0, 0.9)], RULE) is None  # too close; larger
    assert dominating_witness(me, [score("a", 1.01, 0.5), score("b", 3.0, 0.0)], RULE).trial_id == "a"  # within 1 %
    assert dominating_witness(me, [score("a", 1.02, 0.5), score("b", 3.0, 0.0)], RULE) is None  # 2 % larger
    assert dominating_witness(me, [score("a", 1.0, 0.40), score("b", 3.0, 0.0)], RULE).trial_id == "a"  # exactly M


def test_the_trial_itself_is_no_witness_and_the_most_accurate_witness_is_named():
    me = score("me", 1.0, 0.2)
    assert dominating_witness(me, [me, score("x", 5.0, 0.0)], RULE) is None  # only one other
    witnesses = [score("a", 0.9, 0.5), score("b", 1.0, 0.7), score("c", 0.1, 0.35)]
    assert dominating_witness(me, witnesses, RULE).trial_id == "b"


def test_margin_zero_stops_an_equal_duplicate_and_a_stage_report_is_what_marks_a_stop():
    rule = EarlyStopConfig(after_stage=1, margin=0.0, grace=1)
    assert dominating_witness(score("me", 1.0, 0.5), [score("twin", 1.0, 0.5)], rule).trial_id == "twin"
    assert was_stopped({"stage": 2, "stage_valid_accuracy": 0.3})
    assert not was_stopped({"stage": 2, "status": "finished"}) and not was_stopped({}) and not was_stopped(None)


# -- the scheduler -------------------------------------------------------------------------------
def trial(trial_id, kind="searched"):
    return SimpleNamespace(trial_id=trial_id, config={KIND_KEY: kind})


def report(stage, accuracy, size):
    return {"stage": stage, "stage_valid_accuracy": accuracy, "planned_size_mb": size}


def test_the_scheduler_stops_a_hopeless_trial_at_stage_k_only_and_never_a_reference():
    scheduler = EarlyStopScheduler(RULE)
    go, stop = TrialScheduler.CONTINUE, TrialScheduler.STOP
    assert scheduler.on_trial_result(None, trial("good"), report(2, 0.8, 1.0)) == go
    assert scheduler.on_trial_result(None, trial("small", "reference"), report(2, 0.6, 0.5)) == go
    assert scheduler.on_trial_result(None, trial("bad"), report(1, 0.1, 1.0)) == go  # not stage K
    assert scheduler.on_trial_result(None, trial("ref", "reference"), report(2, 0.1, 1.0)) == go  # anchors stay
    assert scheduler.on_trial_result(None, trial("bad"), report(2, 0.1, 1.0)) == stop
    assert scheduler.on_trial_result(None, trial("seeded", "seeded"), report(2, 0.55, 0.5)) == go  # 0.6: < M better
    assert scheduler.on_trial_result(None, trial("poor seed", "seeded"), report(2, 0.5, 0.5)) == stop  # 0.6: M better
    assert scheduler.on_trial_result(None, trial("late"), {"status": "finished", "valid_accuracy": 0.1}) == go
    assert set(scheduler.reasons) == {"bad", "poor seed"} and "after stage 2" in scheduler.reasons["bad"]
    assert "trial good had 0.8000" in scheduler.reasons["bad"]


# -- the searcher: a stopped trial is PRUNED, not COMPLETE or FAIL -------------------------------
def test_the_searcher_tells_optuna_pruned_for_a_stopped_trial_and_complete_for_a_finished_one():
    searcher = QuadsOptunaSearch(space={"x": optuna.distributions.FloatDistribution(0, 1)},
                                 metric=["valid_accuracy", "size_mb"], mode=["max", "min"],
                                 sampler=optuna.samplers.RandomSampler(seed=0), constraints={})
    searcher.suggest("stopped")
    searcher.suggest("done")
    searcher.on_trial_complete("stopped", report(2, 0.1, 1.0))
    searcher.on_trial_complete("done", {"status": "finished", "valid_accuracy": 0.5, "size_mb": 1.0})
    stopped, done = searcher._ot_study.trials
    assert stopped.state == optuna.trial.TrialState.PRUNED and stopped.values is None
    assert stopped.user_attrs["stopped_after_stage"] == 2
    assert done.state == optuna.trial.TrialState.COMPLETE and done.values == [0.5, 1.0]


# -- the recorder and the front ------------------------------------------------------------------
def test_a_stopped_trial_is_recorded_as_stopped_with_its_reason_and_never_on_the_front(tmp_path):
    table = TrialTable(tmp_path)
    recorder = TrialRecorder(table, "exp", {"valid_accuracy": "max", "size_mb": "min"}, 2,
                             stop_reasons={"t1": "stopped after stage 2: because"})
    config = {KIND_KEY: "seeded", "bits.conv1": 2}
    recorder.on_trial_complete(0, [], SimpleNamespace(trial_id="t1", config=config, last_result=report(2, 0.1, 1.0)))
    done = {"status": "finished", "valid_accuracy": 0.5, "size_mb": 1.0, "accuracy": 0.5, "bits_avg": 4.0}
    recorder.on_trial_complete(0, [], SimpleNamespace(trial_id="t2", config=config, last_result=done))
    rows = {r["trial_id"]: r for r in table.rows()}
    assert rows["t1"]["status"] == "stopped" and rows["t1"]["error"] == "stopped after stage 2: because"
    assert rows["t1"]["kind"] == "seeded" and rows["t1"]["valid_accuracy"] is None
    frame = pd.read_parquet(tmp_path / "trials.parquet")
    frame.loc[frame["trial_id"] == "t1", ["valid_accuracy", "size_mb"]] = [0.9, 0.1]  # even if it had values
    assert list(finished(frame, [("valid_accuracy", "max"), ("size_mb", "min")], tmp_path)["trial_id"]) == ["t2"]


# -- the planned size is the size the run reports ------------------------------------------------
@pytest.mark.parametrize("params", [{}, {"bits.conv1": 2, "bits.re:layers\\.1\\.fc[12]": 1, "bits.head": 8},
                                    {"quantization.method": "affine", "bits.conv2": 8}])
def test_the_planned_size_equals_size_report_of_the_quantizer_a_run_builds(smoke_config, params):
    config = apply_params(smoke_config.run_config(), params)
    torch.manual_seed(0)
    model = build_model(config.student, 31, frames_for(config.dataset.seconds))
    quantizer = make_quantizer(model, config.quantization)
    assert planned_size_mb(config, 31) == size_report(model, quantizer.bits, quantizer.method)["size_mb"]


# -- settings --------------------------------------------------------------------------------------
def problems(*overrides):
    with pytest.raises(ConfigError) as exc:
        load_sweep(SPACE, list(overrides))
    return str(exc.value)


def test_warm_start_and_early_stop_settings_are_validated_with_their_keys():
    assert "search.warm_start" in problems("search.warm_start=always")
    assert "seeded trials do not fit in num_samples=14" in problems("search.warm_start=sensitivity", "search.seeds=11")
    assert "search.seeds" in problems("search.seeds=0")
    message = problems("search.early_stop={after_stage: 0, margin: 1.5, grace: 0}")
    assert all(k in message for k in ("early_stop.after_stage", "early_stop.margin", "early_stop.grace"))
    assert "early_stop.grace" in problems("search.early_stop={after_stage: 1, margin: 0.1}")
    assert "needs objectives" in problems("search.early_stop={after_stage: 1, margin: 0.1, grace: 1}",
                                          "search.objectives={valid_accuracy: max, gmacs: min}")
    assert "below the base schedule's 4 stages" in problems("search.early_stop={after_stage: 4, margin: 0.1, grace: 1}")
    assert "no bits.* parameter" in problems("search.warm_start=sensitivity", "space={training.alpha: {uniform: [0, 1]}}")
    config = load_sweep(SPACE, ["search.warm_start=sensitivity", "search.early_stop={after_stage: 3, margin: 0, grace: 1}"])
    assert config.search.early_stop == EarlyStopConfig(3, 0.0, 1) and config.search.seeds == 4
    assert load_sweep(SPACE).search.early_stop is None and load_sweep(SPACE).search.warm_start == "sensitivity"
    assert load_sweep(SPACE, smoke=True).search.warm_start == "none"

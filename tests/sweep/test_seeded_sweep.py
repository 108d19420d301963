"""Sensitivity, warm start and early stopping for real (#19): the command on the pre-tuned smoke
student, and tiny local Ray sweeps that seed allocations and stop a hopeless trial."""
import dataclasses
import itertools
import json

import optuna
import pandas as pd
import pytest

from quads_search.core.planned import planned_size_mb
from quads_search.core.sensitivity import sensitivity
from quads_search.pareto.front import finished, load_trials
from quads_search.sweep.seeding import make_plan
from quads_search.sweep.space import apply_params
from tests.conftest import SPACE, run_cli

pytestmark = pytest.mark.slow
OBJECTIVES = [("valid_accuracy", "max"), ("size_mb", "min")]


def study_trials(experiment):
    storage = optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(experiment / "optuna.journal")))
    (summary,) = optuna.get_all_study_summaries(storage)
    return optuna.load_study(study_name=summary.study_name, storage=storage).trials


def with_seeds(config, seeds):
    return dataclasses.replace(config, search=dataclasses.replace(config.search, seeds=seeds))


def test_the_sensitivity_command_reports_groups_allocations_and_a_plot_and_caches(smoke_config, prepared, smoke_cache):
    out = run_cli("sensitivity", SPACE, "--smoke", "--json", "--set", f"cache_dir={smoke_cache}",
                  "--set", "search.seeds=3")
    assert out.returncode == 0, out.stderr[-3000:]
    report = json.loads(out.stdout)
    assert [g["name"] for g in report["groups"]] == [n for n in smoke_config.space if n.startswith("bits.")]
    for group in report["groups"]:
        omega = [group["omega"][str(b)] for b in sorted(map(int, group["omega"]))]
        assert all(a > b for a, b in itertools.pairwise(omega)), group  # fewer bits, more damage
    assert len(report["allocations"]) == 3
    base = smoke_config.run_config()
    for item in report["allocations"]:
        exact, greedy = item["exact"], item["greedy"]
        assert exact["size_mb"] <= item["budget_mb"] and greedy["size_mb"] <= item["budget_mb"]
        assert exact["omega"] <= greedy["omega"] * (1 + 1e-12) and item["greedy_gap"] >= 0
        planned = planned_size_mb(apply_params(base, exact["bits"]), len(prepared.data.intents))
        assert exact["size_mb"] == pytest.approx(planned, rel=1e-12)  # sizes as the run will report them
    with open(report["plot"], "rb") as png:
        assert png.read(8) == b"\x89PNG\r\n\x1a\n"
    again = sensitivity(base, prepared, log=lambda m: None)  # from the cache, not recomputed
    assert str(again.directory) == report["cache"] and again.seconds == report["seconds"]


def test_warm_start_enqueues_seeded_allocations_after_the_references_and_the_sweep_records_them(
        smoke_config, prepared, smoke_cache, tmp_path):
    out = run_cli("run", SPACE, "--smoke", "--results-dir", tmp_path, "--num-samples", 4, "--set",
                  f"cache_dir={smoke_cache}", "--set", "search.warm_start=sensitivity", "--set", "search.seeds=2")
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "warm start: 2 sensitivity-budgeted allocations enqueued" in out.stdout
    experiment = tmp_path / "mixed_precision"
    kinds = [t.user_attrs.get("kind", "searched") for t in sorted(study_trials(experiment), key=lambda t: t.number)]
    assert kinds == ["reference", "seeded", "seeded", "searched"]
    trials = pd.read_parquet(experiment / "trials.parquet")
    assert sorted(trials["kind"]) == ["reference", "searched", "seeded", "seeded"]
    assert (trials["status"] == "finished").all()
    plan = make_plan(with_seeds(smoke_config, 2), prepared, 2, log=lambda m: None)
    wanted = sorted(tuple(sorted(b.exact.bits.items())) for b in plan.budgets)
    seeded = trials[trials["kind"] == "seeded"]
    got = sorted(tuple(sorted((c.removeprefix("param."), int(row[c])) for c in seeded.columns
                              if c.startswith("param.bits."))) for _, row in seeded.iterrows())
    assert got == wanted
    assert (seeded["param.training.alpha"] == smoke_config.training.alpha).all()  # the rest at base values


def test_early_stop_stops_a_hopeless_trial_records_it_and_optuna_holds_it_as_pruned(smoke_cache, prepared, tmp_path):
    # The reference trains at lr 3e-4; a searched trial at lr 0.3 wrecks the student in its first stage and,
    # at the same size, trails the reference by far more than the margin. Random seed 0 draws 0.3, then 3e-4.
    out = run_cli("run", SPACE, "--smoke", "--results-dir", tmp_path, "--num-samples", 3, "--max-concurrent", 1,
                  "--set", f"cache_dir={smoke_cache}",
                  "--set", "training.schedule=[{stage: distill, epochs: 1, lr: 0.0003}, {stage: quantize, epochs: 1}]",
                  "--set", "space={training.schedule.0.lr: {choice: [0.0003, 0.3]}}", "--set", "search.references=[8]",
                  "--set", "search.sampler=random", "--set", "search.seed=0",
                  "--set", "search.early_stop={after_stage: 1, margin: 0.05, grace: 1}")
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "1 stopped early" in out.stdout
    experiment = tmp_path / "mixed_precision"
    trials = pd.read_parquet(experiment / "trials.parquet").set_index("trial_id")
    lr = trials["param.training.schedule.0.lr"]
    assert sorted(lr) == [0.0003, 0.0003, 0.3]
    hopeless = trials[lr == 0.3].iloc[0]
    assert hopeless["status"] == "stopped" and pd.isna(hopeless["valid_accuracy"])
    assert hopeless["error"].startswith("stopped after stage 1:")
    assert (trials.loc[lr == 0.0003, "status"] == "finished").all()
    states = {t.number: t.state for t in study_trials(experiment)}
    assert states == {0: optuna.trial.TrialState.COMPLETE, 1: optuna.trial.TrialState.PRUNED,
                      2: optuna.trial.TrialState.COMPLETE}
    on_front = finished(load_trials(tmp_path), OBJECTIVES, tmp_path)
    assert hopeless.name not in set(on_front["trial_id"]) and len(on_front) == 2
    for path in experiment.glob("quads_trial_*/result.json"):  # every stage report carried the final size
        lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        planned = {line["planned_size_mb"] for line in lines if "stage" in line}
        final = {line["size_mb"] for line in lines if "status" in line}
        assert len(planned) == 1 and (not final or final == planned)

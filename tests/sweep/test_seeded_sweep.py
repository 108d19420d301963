"""One real sweep (local Ray, Optuna) on an FSC directory that warm-starts from sensitivity-budgeted
allocations and stops a hopeless trial early (#19): its results are checked for each of the three.

Trials run one at a time, in Optuna's order: the 8-bit reference (inside the space, so Optuna learns from
it), the two seeded allocations, then one trial the random sampler draws at lr 0.3, which wrecks the
student in its first stage: a seeded trial no larger than it leads it by far more than the margin after
stage 1, so it is stopped there."""
import dataclasses
import json

import optuna
import pandas as pd
import pytest
import yaml

from quads_search.data.datasets import synthetic_dir_name
from quads_search.pareto.front import finished
from quads_search.results import load_trials
from quads_search.sweep.seeding import make_plan
from tests.conftest import SPACE
from tests.runner import run_cli
from tests.sweep.common import study_trials

pytestmark = pytest.mark.slow
OBJECTIVES = [("valid_accuracy", "max"), ("size_mb", "min")]
SEED = 3  # search.seed: the random sampler draws lr 0.3 (and wide bits) for the one searched trial


def test_one_sweep_on_an_fsc_directory_warm_starts_and_stops_a_hopeless_trial(smoke_cache, smoke_config, prepared,
                                                                              tmp_path):
    results = tmp_path / "results"
    fsc_root = smoke_cache / synthetic_dir_name(smoke_config.dataset)  # the synthetic corpus, in FSC's layout
    assert (fsc_root / "data" / "train_data.csv").is_file()
    out = run_cli("run", SPACE, "--smoke", "--results-dir", results, "--num-samples", 4, "--max-concurrent", 1,
                  "--set", f"cache_dir={smoke_cache}", "--set", "dataset.kind=fsc", "--set", f"dataset.root={fsc_root}",
                  "--set", "search.references=[8]", "--set", "search.warm_start=sensitivity", "--set", "search.seeds=2",
                  "--set", "training.schedule=[{stage: distill, epochs: 1, lr: 0.0003}, {stage: quantize, epochs: 1}]",
                  "--set", "space.training.schedule.0.lr={choice: [0.0003, 0.3]}",
                  "--set", "search.sampler=random", "--set", f"search.seed={SEED}",
                  "--set", "search.early_stop={after_stage: 1, margin: 0.05, grace: 1}", entry_point=True)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    experiment = results / "mixed_precision"
    trials = pd.read_parquet(experiment / "trials.parquet").set_index("trial_id")
    check_it_ran_on_the_fsc_directory(experiment, trials, fsc_root)
    check_warm_start(experiment, out.stdout, trials, smoke_config, prepared)
    check_early_stop(results, experiment, out.stdout, trials)


def check_it_ran_on_the_fsc_directory(experiment, trials, fsc_root):
    config = yaml.safe_load((experiment / "config.yaml").read_text())
    assert config["dataset"]["kind"] == "fsc" and config["dataset"]["root"] == str(fsc_root)
    assert len(trials) == 4 and (trials["status"] != "failed").all() and (trials["status"] != "error").all()


def check_warm_start(experiment, stdout, trials, smoke_config, prepared):
    """Seeded allocations are enqueued after the references and the sweep records them."""
    assert "warm start: 2 sensitivity-budgeted allocations enqueued" in stdout
    kinds = [t.user_attrs.get("kind", "searched") for t in sorted(study_trials(experiment), key=lambda t: t.number)]
    assert kinds == ["reference", "seeded", "seeded", "searched"]
    assert sorted(trials["kind"]) == ["reference", "searched", "seeded", "seeded"]
    seeded = trials[trials["kind"] == "seeded"]
    assert (seeded["status"] == "finished").all() and (trials.loc[trials["kind"] == "reference", "status"] == "finished").all()
    config = dataclasses.replace(smoke_config, search=dataclasses.replace(smoke_config.search, seeds=2))
    plan = make_plan(config, prepared, 2)
    wanted = sorted(tuple(sorted(b.exact.bits.items())) for b in plan.budgets)
    got = sorted(tuple(sorted((c.removeprefix("param."), int(row[c])) for c in seeded.columns
                              if c.startswith("param.bits."))) for _, row in seeded.iterrows())
    assert len(got) == 2 and got == wanted
    assert (seeded["param.training.alpha"] == smoke_config.training.alpha).all()  # the rest at base values
    assert (seeded["param.training.schedule.0.lr"] == 0.0003).all()


def check_early_stop(results, experiment, stdout, trials):
    """The hopeless trial is stopped, recorded as stopped, held by Optuna as pruned, and kept off the front."""
    assert "1 stopped early" in stdout
    lr = trials["param.training.schedule.0.lr"]
    assert sorted(lr) == [0.0003, 0.0003, 0.0003, 0.3]
    hopeless = trials[lr == 0.3].iloc[0]
    assert hopeless["kind"] == "searched" and hopeless["status"] == "stopped" and pd.isna(hopeless["valid_accuracy"])
    assert hopeless["error"].startswith("stopped after stage 1:")
    assert (trials.loc[lr == 0.0003, "status"] == "finished").all()
    states = {t.number: t.state for t in study_trials(experiment)}
    complete, pruned = optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED
    assert states == {0: complete, 1: complete, 2: complete, 3: pruned}
    on_front = finished(load_trials(results), OBJECTIVES, results)
    assert len(on_front) >= 1 and hopeless.name not in set(on_front["trial_id"])
    reports = sorted(experiment.glob("quads_trial_*/result.json"))
    assert len(reports) == 4
    finals = 0
    for path in reports:  # every stage report carried the size the trial ends with
        lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        planned = {line["planned_size_mb"] for line in lines if "stage" in line}
        final = {line["size_mb"] for line in lines if "status" in line}
        assert len(planned) == 1 and (not final or final == planned), path
        finals += bool(final)
    assert finals == 3  # the stopped trial never reported a final size

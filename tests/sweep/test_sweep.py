"""The shared smoke sweep (local Ray, real Optuna, tiny QUADS trials on the synthetic corpus)."""
import json
import os

import optuna
import pandas as pd
import pytest
import yaml

from quads_search.results import BASE_COLUMNS
from quads_search.sweep.budget import BUDGET_FILE
from tests.conftest import SPACE
from tests.runner import run_cli

pytestmark = pytest.mark.slow


def test_smoke_sweep_writes_a_row_per_trial_with_differing_bit_allocations(smoke_sweep):
    experiment = smoke_sweep / "mixed_precision"
    trials = pd.read_parquet(experiment / "trials.parquet")
    assert len(trials) == 3 and trials["trial_id"].is_unique
    assert set(BASE_COLUMNS) <= set(trials.columns)
    assert (trials["status"] == "finished").all(), trials[["status", "error"]]
    bits = trials[[c for c in trials.columns if c.startswith("param.bits.")]]
    assert len(bits.columns) == 7 and len(bits.drop_duplicates()) > 1
    assert trials["size_mb"].nunique() > 1 and trials["accuracy"].between(0, 1).all()
    for path in trials["model_path"]:  # relative to the experiment, so that results can move
        assert not os.path.isabs(path) and os.path.isfile(experiment / path)
    resolved = yaml.safe_load((experiment / "config.yaml").read_text())
    assert resolved["search"]["num_samples"] == 3 and resolved["dataset"]["size"] == "small"
    storage = optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(experiment / "optuna.journal")))
    (study,) = optuna.get_all_study_summaries(storage)
    rejected = json.loads((experiment / BUDGET_FILE).read_text())["rejected_draws"]  # draws over search.budget
    assert study.study_name.startswith("mixed_precision-") and study.n_trials == 3 + rejected


def test_existing_results_are_not_overwritten(smoke_sweep, smoke_cache):
    before = (smoke_sweep / "mixed_precision" / "trials.parquet").read_bytes()
    out = run_cli("run", SPACE, "--smoke", "--results-dir", smoke_sweep, "--set", f"cache_dir={smoke_cache}")
    assert out.returncode == 2 and "--resume" in out.stderr
    assert (smoke_sweep / "mixed_precision" / "trials.parquet").read_bytes() == before

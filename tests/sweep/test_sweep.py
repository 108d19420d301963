"""Real sweeps: local Ray, real Optuna, tiny QUADS trials on the synthetic corpus."""
import os
import signal
import subprocess
import sys
import time

import optuna
import pandas as pd
import pytest
import yaml

from quads_search.results import BASE_COLUMNS
from tests.conftest import SPACE, run_cli

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
    assert study.study_name.startswith("mixed_precision-") and study.n_trials == 3


def test_existing_results_are_not_overwritten(smoke_sweep, smoke_cache):
    before = (smoke_sweep / "mixed_precision" / "trials.parquet").read_bytes()
    out = run_cli("run", SPACE, "--smoke", "--results-dir", smoke_sweep, "--set", f"cache_dir={smoke_cache}")
    assert out.returncode == 2 and "--resume" in out.stderr
    assert (smoke_sweep / "mixed_precision" / "trials.parquet").read_bytes() == before


def test_sigkill_then_resume_keeps_every_trial_exactly_once(smoke_cache, smoke_sweep, tmp_path):
    args = [sys.executable, "-m", "quads_search.cli", "run", str(SPACE), "--smoke", "--results-dir", str(tmp_path),
            "--num-samples", "4", "--max-concurrent", "1", "--set", f"cache_dir={smoke_cache}"]
    driver = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    rows = tmp_path / "mixed_precision" / "rows"
    deadline = time.time() + 400
    while not (rows.is_dir() and any(rows.glob("*.json"))) and time.time() < deadline and driver.poll() is None:
        time.sleep(0.5)
    assert driver.poll() is None, "the sweep ended before it could be killed"
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    first = {p.stem for p in rows.glob("*.json")}
    assert 1 <= len(first) < 4
    out = run_cli("run", SPACE, "--smoke", "--results-dir", tmp_path, "--resume", "--num-samples", "4",
                  "--max-concurrent", "1", "--set", f"cache_dir={smoke_cache}")
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    trials = pd.read_parquet(tmp_path / "mixed_precision" / "trials.parquet")
    assert len(trials) == 4 and trials["trial_id"].is_unique
    assert first <= set(trials["trial_id"])
    assert (trials["status"] == "finished").all()


def test_the_same_sweep_runs_on_an_fsc_directory(smoke_cache, smoke_sweep, tmp_path):
    fsc_root = smoke_cache / "corpus-small-0"  # the synthetic corpus is written in FSC's layout
    assert (fsc_root / "data" / "train_data.csv").is_file()
    out = run_cli("run", SPACE, "--smoke", "--results-dir", tmp_path, "--num-samples", "1",
                  "--set", f"cache_dir={smoke_cache}", "--set", "dataset.kind=fsc", "--set", f"dataset.root={fsc_root}")
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    trials = pd.read_parquet(tmp_path / "mixed_precision" / "trials.parquet")
    assert list(trials["status"]) == ["finished"]
    config = yaml.safe_load((tmp_path / "mixed_precision" / "config.yaml").read_text())
    assert config["dataset"]["kind"] == "fsc"

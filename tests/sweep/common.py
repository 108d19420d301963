"""Helpers of the sweep tests: short smoke sweeps, waiting on a running one, reading its Optuna study."""
from __future__ import annotations

import time
from pathlib import Path

import optuna

from tests.conftest import SPACE

SHORT = "training.schedule=[{stage: distill, epochs: 1}, {stage: quantize, epochs: 1}]"


def sweep_args(results, cache, *extra) -> list:
    """A smoke sweep of short trials and no reference trials (the sampler alone decides the params)."""
    return ["run", SPACE, "--smoke", "--results-dir", results, "--set", f"cache_dir={cache}", "--set", SHORT,
            "--set", "search.references=[]", *extra]


def wait_for(probe, process, seconds: float):
    """`probe()`'s first truthy value, polled while `process` runs; fails if it ends or time runs out."""
    deadline = time.time() + seconds
    while time.time() < deadline:
        assert process.poll() is None, "the sweep ended early"
        value = probe()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError("timed out")


def study_trials(experiment: Path) -> list[optuna.trial.FrozenTrial]:
    """The trials of the one Optuna study in the experiment's journal."""
    storage = optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(experiment / "optuna.journal")))
    (summary,) = optuna.get_all_study_summaries(storage)
    return optuna.load_study(study_name=summary.study_name, storage=storage).trials

"""`quads-search run`'s exit codes and last words, from the sweep's outcome (the sweep itself replaced:
tests/sweep runs real ones)."""
from pathlib import Path

import pytest

from quads_search.log import show_progress
from quads_search.results import TrialTable
from quads_search.sweep import driver
from quads_search.sweep.driver import SweepOutcome
from quads_search.sweep.progress import summary
from tests.conftest import SPACE
from tests.runner import run_cli


@pytest.fixture
def outcome(monkeypatch, tmp_path):
    """Makes `run_sweep` end with the outcome given; returns the calls it got."""
    calls = []

    def set_outcome(**kwargs):
        def fake_run_sweep(config, results_dir, **options):
            calls.append((config, results_dir, options))
            return SweepOutcome(Path(results_dir) / config.name, **kwargs)

        monkeypatch.setattr(driver, "run_sweep", fake_run_sweep)
        return calls

    return set_outcome


def test_a_sweep_where_no_trial_finished_exits_1_with_the_causes(outcome, tmp_path):
    calls = outcome(finished=0, failures={"NonFiniteLoss": 2})
    out = run_cli("run", SPACE, "--smoke", "--results-dir", tmp_path, "--num-samples", 2)
    assert out.returncode == 1, out.stderr
    experiment = tmp_path / "mixed_precision"
    assert out.stderr == (f"quads-search: 2 of 2 trials did not finish: 2 x NonFiniteLoss; no trial finished "
                          f"(train.log per trial under {experiment / 'models'})\n")
    assert "interrupted" not in out.stdout + out.stderr
    ((config, results_dir, options),) = calls
    assert config.search.num_samples == 2 and results_dir == tmp_path and options["resume"] is False


def test_some_failed_trials_exit_1_and_keep_the_finished_the_causes_most_frequent_first(outcome, tmp_path):
    outcome(finished=3, failures={"RuntimeError": 1, "NonFiniteLoss": 2}, stopped=1)
    out = run_cli("run", SPACE, "--smoke", "--results-dir", tmp_path)
    assert out.returncode == 1
    assert out.stderr.startswith("quads-search: 3 of 7 trials did not finish: 2 x NonFiniteLoss, 1 x RuntimeError; "
                                 "the 3 finished ones are kept (train.log")


def test_a_sweep_whose_trials_all_finished_or_stopped_exits_0_quietly(outcome, tmp_path):
    outcome(finished=2, failures={}, stopped=1)
    out = run_cli("run", SPACE, "--smoke", "--results-dir", tmp_path)
    assert (out.returncode, out.stderr) == (0, "")


def test_the_summary_of_a_sweep_where_no_trial_finished(tmp_path, capsys, quads_logger):
    table = TrialTable(tmp_path)
    for n in range(2):
        table.record({"trial_id": f"t{n}", "experiment": "e", "status": "failed", "error": "NonFiniteLoss: nan"})
    show_progress()
    summary(table, tmp_path)
    assert capsys.readouterr().out.splitlines() == [f"done: 0 finished, 2 failed; results in {tmp_path / 'trials.parquet'}",
                     f"next: quads-search pareto {tmp_path.parent}"]

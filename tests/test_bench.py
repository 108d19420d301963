"""The analysis the benches report: pairing by seed, hypervolume curves, trials to reach a target."""
import numpy as np
import pytest

from bench.samplers import hypervolume_curve, trials_to_reach
from bench.schedules import paired, summarize

OBJECTIVES = [("valid_accuracy", "max"), ("size_mb", "min")]


def run(schedule, seed, accuracy, bits=2, method="kmeans"):
    return {"schedule": schedule, "bits": bits, "method": method, "seed": seed, "test_accuracy": accuracy}


def test_paired_differences_match_seed_with_seed():
    runs = [run("quads", 0, 0.5), run("quads", 1, 0.7), run("sequential", 0, 0.4), run("sequential", 1, 0.8)]
    (cell,) = paired(runs, "quads", "sequential")
    assert cell["difference"]["mean"] == pytest.approx(0.0)  # +0.1 and -0.1
    assert cell["difference"]["std"] == pytest.approx(np.std([0.1, -0.1], ddof=1))
    assert cell["wins"] == 1


def test_summary_is_mean_and_sample_std_over_seeds():
    (row,) = summarize([run("ptq", s, a) for s, a in enumerate([0.2, 0.4, 0.6])])
    assert row["test_accuracy"] == {"mean": pytest.approx(0.4), "std": pytest.approx(0.2), "n": 3}


def test_hypervolume_curve_grows_only_when_a_trial_extends_the_front():
    rows = [{"valid_accuracy": 0.5, "size_mb": 1.0}, {"valid_accuracy": 0.4, "size_mb": 1.5},
            {"valid_accuracy": 0.8, "size_mb": 1.0}]
    curve = hypervolume_curve(rows, OBJECTIVES, np.array([0.0, 2.0]))
    assert curve == pytest.approx([0.5 * 1.0, 0.5 * 1.0, 0.8 * 1.0])


def test_trials_to_reach_counts_from_one_and_says_never():
    assert trials_to_reach([0.1, 0.3, 0.3, 0.5], 0.3) == 2
    assert trials_to_reach([0.1, 0.2], 0.3) is None

"""The wall-clock bench's analysis (#19): hypervolume over time, time to plain TPE's final value
paired by seed, the median with searches that never get there, rank correlation."""
import numpy as np
import pytest

from bench.search_wallclock import analyse, hypervolume_curve, median_or_none, replay, spearman, time_to_reach
from quads_search.config.schema import EarlyStopConfig
from quads_search.sweep.stopping import StageScore

REFERENCE = [0.0, 2.0]  # 0 accuracy, 2 MiB


def row(accuracy, size, end, status="finished"):
    return {"status": status, "valid_accuracy": accuracy if status == "finished" else None,
            "size_mb": size if status == "finished" else None, "end_s": end, "end_cpu_s": end / 2}


def test_a_stopped_trial_adds_time_but_no_hypervolume():
    rows = [row(0.5, 1.0, 10), row(0.9, 1.0, 15, "stopped"), row(0.8, 1.0, 30), row(0.2, 0.5, 40)]
    curve = hypervolume_curve(rows, np.array([0.0, 2.0]))
    expected = [(10, 0.5), (15, 0.5), (30, 0.8), (40, 0.8 + 0.2 * 0.5)]
    assert len(curve) == len(expected)  # pytest.approx takes flat sequences only (a TypeError on pytest >= 9.1)
    assert all(point == pytest.approx(want) for point, want in zip(curve, expected))
    assert time_to_reach(curve, 0.8) == 30 and time_to_reach(curve, 0.95) is None


def test_median_counts_never_as_latest():
    assert median_or_none([3.0, None, 1.0]) == 3.0
    assert median_or_none([None, None, 1.0]) is None
    assert median_or_none([4.0, 2.0]) == 3.0


def test_spearman_is_rank_correlation_and_none_when_undefined():
    assert spearman([1, 2, 3, 4], [10, 20, 40, 30]) == pytest.approx(0.8)
    assert spearman([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert spearman([1, 2], [1, 2]) is None and spearman([1, 2, 3], [5, 5, 5]) is None


def test_each_search_is_timed_to_plain_tpes_final_hypervolume_of_the_same_seed():
    def study(search, seed, rows):
        return {"search": search, "seed": seed, "start_s": 0.0, "trials": rows}

    studies = [study("tpe", 0, [row(0.5, 1.0, 10), row(0.6, 1.0, 20)]),
               study("tpe", 1, [row(0.3, 1.0, 10), row(0.4, 1.0, 20)]),
               study("tpe+seeded", 0, [row(0.6, 1.0, 12), row(0.1, 1.0, 30)]),
               study("tpe+seeded", 1, [row(0.35, 1.0, 12), row(0.38, 1.0, 30)]),  # never reaches seed 1's 0.4
               study("tpe+early-stop", 0, [row(0.5, 1.0, 10), row(0.0, 0.0, 12, "stopped"), row(0.7, 1.0, 16)]),
               study("tpe+early-stop", 1, [row(0.4, 1.0, 8), row(0.0, 0.0, 9, "stopped")])]
    result = analyse(studies, REFERENCE)
    assert result["tpe"]["wall_s_to_tpe_final"] == {"0": 20, "1": 20}
    assert result["tpe+seeded"]["wall_s_to_tpe_final"] == {"0": 12, "1": None}
    assert result["tpe+seeded"]["median_wall_s_to_tpe_final"] is None  # one of two never: the median is never
    assert result["tpe+early-stop"]["wall_s_to_tpe_final"] == {"0": 16, "1": 8}
    assert result["tpe+early-stop"]["cpu_s_to_tpe_final"] == {"0": 8, "1": 4}
    assert result["tpe+early-stop"]["stopped_trials"]["mean"] == 1
    assert result["tpe+early-stop"]["wall_s_total"]["mean"] == pytest.approx((16 + 9) / 2)
    assert "tpe+seeded+early-stop" not in result
    assert result["tpe"]["final_hypervolume"]["mean"] == pytest.approx(1.0 * (0.6 + 0.4) / 2)


def test_a_replayed_reference_costs_its_measured_seconds_and_joins_the_early_stop_history():
    measured_row = {"number": 0, "kind": "reference", "status": "finished", "valid_accuracy": 0.5, "size_mb": 1.0,
                    "planned_size_mb": 1.1, "stage_valid": [0.2, 0.4, 0.45, 0.5]}
    measured = {"row": measured_row, "wall_s": 80.0, "cpu_s": 79.0}
    scores = []
    row, wall_s, cpu_s = replay(measured, 3, EarlyStopConfig(after_stage=2, margin=0.05, grace=3), scores)
    assert row == {**measured_row, "number": 3}
    assert (wall_s, cpu_s) == (80.0, 79.0)
    assert scores == [StageScore("3", 1.1, 0.4)]  # the score after stage 2, as a run would have reported it
    replay(measured, 0, None, scores)  # no rule: no history
    failed_early = {**measured, "row": {**measured_row, "stage_valid": [0.2]}}
    replay(failed_early, 1, EarlyStopConfig(after_stage=2, margin=0.05, grace=3), scores)
    assert len(scores) == 1  # failed before stage 2: nothing to report

"""The fixed-budget bench's analysis (#29): the choice on validation (test read only for it), the
log-size hypervolume, paired differences against the knapsack, and the budgets' sizes."""
import math

import numpy as np
import pytest

from bench.budget_search import analyse, budget_size, chosen, log_hypervolume, markdown, merge
from quads_search.core.planned import uniform_size_mb
from quads_search.sweep.space import load_sweep
from tests.conftest import SPACE


def row(valid, size, test=0.0, status="finished", rejected=0):
    return {"status": status, "valid_accuracy": valid, "test_accuracy": test, "size_mb": size,
            "rejected": rejected, "random_redraws": False}


def test_the_choice_is_the_best_on_validation_then_the_smaller_then_the_earlier():
    rows = [row(0.5, 0.03, test=0.9), row(0.6, 0.04, test=0.1), row(0.6, 0.03, test=0.2), row(0.6, 0.03, test=0.3),
            row(0.9, 0.01, status="failed")]
    assert chosen(rows)["test_accuracy"] == 0.2
    assert chosen([row(0.1, 0.1, status="failed")]) is None


def test_the_log_size_hypervolume_weighs_a_halving_of_size_alike_at_any_size():
    reference = 1.0
    small = log_hypervolume([row(0.5, 0.01)], reference)
    assert small == pytest.approx(0.5 * (math.log(1.0) - math.log(0.01)))
    both = log_hypervolume([row(0.5, 0.01), row(0.6, 0.02)], reference)
    assert both == pytest.approx(small + 0.1 * (math.log(1.0) - math.log(0.02)))
    halving = [log_hypervolume([row(0.5, s / 2)], reference) - log_hypervolume([row(0.5, s)], reference)
               for s in (0.4, 0.04)]
    assert np.allclose(halving, 0.5 * math.log(2))
    assert log_hypervolume([row(0.5, 0.01, status="failed")], reference) == 0.0


def test_methods_are_paired_with_the_knapsack_by_seed_and_test_is_the_chosen_trials():
    budget = {"bits": 2.0, "size_mb": 0.05}

    def study(method, seed, rows):
        return {"method": method, "seed": seed, "bits": 2.0, "trials": rows}

    studies = [study("knapsack", 0, [row(0.50, 0.04, test=0.40), row(0.52, 0.04, test=0.41)]),
               study("knapsack", 1, [row(0.48, 0.04, test=0.45)]),
               study("tpe", 0, [row(0.55, 0.03, test=0.30, rejected=3), row(0.10, 0.02, test=0.99)]),
               study("tpe", 1, [row(0.47, 0.05, test=0.50, rejected=1)])]
    result = analyse(studies, [budget], reference_mb=0.5)["2.0"]
    assert result["knapsack"]["best_valid"]["mean"] == pytest.approx(0.50)
    assert result["tpe"]["chosen_test"]["mean"] == pytest.approx(0.40)  # 0.30 and 0.50: never the 0.99 one
    assert result["tpe"]["minus_knapsack_valid"]["mean"] == pytest.approx((0.03 - 0.01) / 2)
    assert result["tpe"]["minus_knapsack_valid"]["wins"] == 1
    assert result["tpe"]["minus_knapsack_test"]["mean"] == pytest.approx((-0.11 + 0.05) / 2)
    assert result["tpe"]["rejected_draws"]["mean"] == 2 and result["tpe"]["over_budget_trained"] == 0
    assert "minus_knapsack_valid" not in result["knapsack"]
    table = markdown({"budgets": [budget], "analysis": {"2.0": result}})
    assert "| 2.0 bits (0.0500 MiB) | tpe |" in table


def test_a_budget_of_b_bits_weighs_the_student_at_b_bits_interpolated_between_widths(tmp_path):
    config = load_sweep(SPACE, [f"cache_dir={tmp_path}"], smoke=True)
    run = config.run_config()
    two, three = uniform_size_mb(run, 2, 31), uniform_size_mb(run, 3, 31)
    assert budget_size(config, 2.0, 31) == two and budget_size(config, 3.0, 31) == three
    assert budget_size(config, 2.5, 31) == pytest.approx((two + three) / 2)
    assert uniform_size_mb(run, 1, 31) < budget_size(config, 1.5, 31) < two


def test_runs_of_distinct_budgets_merge_into_one_analysis_and_nothing_else_merges():
    def output(bits, wall_s, trials=12):
        settings = {"trials": trials, "seeds": 3, "seeded_allocations": 4, "methods": ["tpe"], "space": "s",
                    "wall_clock_s": wall_s, "fixed_trials": 2}
        return {"settings": settings, "reference_mb": 0.5, "budgets": [{"bits": bits, "size_mb": bits / 50}],
                "studies": [{"method": "tpe", "seed": 0, "bits": bits, "trials": [row(0.5, bits / 60)]}]}

    settings, studies, budgets, reference_mb = merge([output(3.0, 10.0), output(1.5, 5.0)])
    assert [b["bits"] for b in budgets] == [1.5, 3.0] and len(studies) == 2 and reference_mb == 0.5
    assert settings["wall_clock_s"] == 15.0 and settings["fixed_trials"] == 4 and settings["pieces"] == 2
    assert set(analyse(studies, budgets, reference_mb)) == {"1.5", "3.0"}
    with pytest.raises(SystemExit, match="same budget"):
        merge([output(2.0, 1.0), output(2.0, 1.0)])
    with pytest.raises(SystemExit, match="settings"):
        merge([output(2.0, 1.0), output(3.0, 1.0, trials=4)])

"""Drops are stated against the teacher and the fp32 trial, relative, on validation and test."""
from __future__ import annotations

import pandas as pd
import pytest

from quads_search.pareto.cards import _drops
from quads_search.pareto.table import PAPER_BOUND, with_drops

REFS = {"exp": {"teacher_valid_accuracy": 0.9, "teacher_accuracy": 0.8}}


def _trials() -> pd.DataFrame:
    return pd.DataFrame([
        {"trial_id": "fp32", "experiment": "exp", "kind": "reference", "bits_avg": 32.0, "valid_accuracy": 0.85,
         "accuracy": 0.78},
        {"trial_id": "two", "experiment": "exp", "kind": "reference", "bits_avg": 2.4, "valid_accuracy": 0.80,
         "accuracy": 0.70},
        {"trial_id": "low", "experiment": "exp", "kind": "searched", "bits_avg": 1.9, "valid_accuracy": 0.855,
         "accuracy": 0.76}])


def test_drops_are_relative_to_the_teacher_and_to_the_fp32_reference_trial():
    out = with_drops(_trials(), _trials(), REFS).set_index("trial_id")
    assert out.loc["low", "teacher_gap_valid"] == pytest.approx((0.9 - 0.855) / 0.9)
    assert out.loc["low", "teacher_gap_test"] == pytest.approx((0.8 - 0.76) / 0.8)
    assert out.loc["low", "fp32_trial_gap_valid"] == pytest.approx((0.85 - 0.855) / 0.85)  # above it: negative
    assert out.loc["two", "fp32_trial_gap_test"] == pytest.approx((0.78 - 0.70) / 0.78)
    assert out.loc["fp32", "fp32_trial_gap_valid"] == 0


def test_without_a_fp32_trial_or_references_the_drops_are_missing_not_made_up():
    trials = _trials()[lambda t: t["trial_id"] != "fp32"]
    out = with_drops(trials, trials, {"exp": {}})
    assert out[["teacher_gap_valid", "fp32_trial_gap_test"]].isna().all().all()


def test_the_card_says_whether_the_papers_bound_holds_on_each_split():
    inside = _drops({"teacher_gap_valid": 0.05, "teacher_gap_test": 0.06, "fp32_trial_gap_valid": 0.01,
                     "fp32_trial_gap_test": 0.02})
    assert "5.00% below the teacher on validation, 6.00% on test" in inside
    assert f"at most {PAPER_BOUND:.2%} below the teacher: inside on valid" in inside
    assert "1.00% below the fp32 trial" in inside
    assert "outside on both splits" in _drops({"teacher_gap_valid": 0.3, "teacher_gap_test": 0.4})

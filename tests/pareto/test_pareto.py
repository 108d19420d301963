"""Pareto analysis: plain functions on arrays, then the CLI on a real smoke sweep."""
import json
import re

import numpy as np
import pandas as pd
import pytest

from quads_search.pareto.front import (
    hypervolume_2d,
    non_dominated,
    select,
    to_costs,
)
from tests.runner import run_cli

OBJECTIVES = [("valid_accuracy", "max"), ("size_mb", "min"), ("gmacs", "min")]


def brute_force_front(costs):
    return np.array([not any((costs[j] <= costs[i]).all() and (costs[j] < costs[i]).any()
                             for j in range(len(costs))) for i in range(len(costs))])


@pytest.mark.parametrize("seed", range(5))
def test_non_dominated_matches_brute_force(seed):
    costs = np.random.default_rng(seed).integers(0, 6, size=(40, 3)).astype(float)  # many ties
    assert (non_dominated(costs) == brute_force_front(costs)).all()


def test_hypervolume_of_a_staircase():
    costs = np.array([[1.0, 3.0], [2.0, 2.0], [3.0, 1.0], [3.5, 3.5]])  # the last is dominated
    assert hypervolume_2d(costs, np.array([4.0, 4.0])) == pytest.approx(3 * 1 + 2 * 1 + 1 * 1)
    assert hypervolume_2d(costs, np.array([0.5, 0.5])) == 0.0


def test_select_picks_the_most_accurate_model_within_budgets():
    frame = pd.DataFrame({"valid_accuracy": [0.9, 0.8, 0.85, 0.82], "size_mb": [3.0, 1.0, 2.0, 1.5],
                          "gmacs": [1.0, 1.0, 1.0, 0.5]})
    assert select(frame, max_size_mb=2.5)["valid_accuracy"].item() == 0.85
    assert select(frame, max_size_mb=2.5, max_gmacs=0.9)["valid_accuracy"].item() == 0.82
    assert select(frame, min_accuracy=0.95).empty


@pytest.mark.slow
def test_pareto_cli_reports_exactly_the_non_dominated_finished_trials(smoke_sweep):
    out = run_cli("pareto", smoke_sweep, "--json")
    assert out.returncode == 0, out.stderr
    reported = {row["trial_id"] for row in json.loads(out.stdout)}
    trials = pd.read_parquet(smoke_sweep / "mixed_precision" / "trials.parquet")
    done = trials[trials["status"] == "finished"].reset_index(drop=True)
    expected = set(done[brute_force_front(to_costs(done, OBJECTIVES))]["trial_id"])
    assert reported == expected
    assert set(pd.read_parquet(smoke_sweep / "pareto.parquet")["trial_id"]) == expected
    png, html = smoke_sweep / "pareto.png", smoke_sweep / "pareto.html"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    page = html.read_text()
    rows = set(re.findall(r'<tr class="front-row" data-trial="([^"]+)"', page))
    assert rows == expected  # the table holds exactly the front (the browser test checks the rendering)
    csv = run_cli("pareto", smoke_sweep, "--csv", "--no-plots")
    assert csv.returncode == 0 and len(csv.stdout.strip().splitlines()) == len(expected) + 1


@pytest.mark.slow
def test_budget_selection_and_export_load_with_evaluate(smoke_sweep, tmp_path):
    trials = pd.read_parquet(smoke_sweep / "mixed_precision" / "trials.parquet")
    budget = float(trials["size_mb"].median())
    out = run_cli("pareto", smoke_sweep, "--max-size-mb", budget, "--json", "--no-plots", "--export", tmp_path / "ship")
    assert out.returncode == 0, out.stderr
    (chosen,) = json.loads(out.stdout)
    fits = trials[(trials["size_mb"] <= budget) & (trials["status"] == "finished")]
    assert chosen["valid_accuracy"] == fits["valid_accuracy"].max()
    model = tmp_path / "ship" / chosen["trial_id"] / "model.safetensors"
    card = json.loads((model.parent / "model_card.json").read_text())
    assert card["metrics"]["accuracy"] == chosen["accuracy"] and card["bits"]
    assert "Bits per weight tensor" in (model.parent / "MODEL_CARD.md").read_text()
    evaluated = run_cli("evaluate", model, "--json")
    assert evaluated.returncode == 0, evaluated.stderr
    assert json.loads(evaluated.stdout)["accuracy"] == chosen["accuracy"]


def test_bad_inputs_exit_2_with_the_file_named(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    out = run_cli("pareto", empty)
    assert out.returncode == 2 and str(empty) in out.stderr and "no experiment" in out.stderr
    out = run_cli("pareto", tmp_path / "missing")
    assert out.returncode == 2 and "no such results directory" in out.stderr
    out = run_cli("pareto", empty, "--objectives", "accuracy:up")
    assert out.returncode == 2 and "metric:max" in out.stderr


@pytest.mark.slow
def test_truncated_parquet_falls_back_to_ray_tune_results_and_is_left_untouched(smoke_sweep, tmp_path):
    import shutil

    copy = tmp_path / "results"
    shutil.copytree(smoke_sweep, copy)
    parquet = copy / "mixed_precision" / "trials.parquet"
    parquet.write_bytes(parquet.read_bytes()[:100])
    damaged = parquet.read_bytes()
    out = run_cli("pareto", copy, "--json", "--no-plots")
    assert out.returncode == 0, out.stderr
    assert "trials.parquet is unreadable" in out.stderr and "Ray Tune's per-trial results" in out.stderr
    fallback = {r["trial_id"]: r["valid_accuracy"] for r in json.loads(out.stdout)}
    intact = run_cli("pareto", smoke_sweep, "--json", "--no-plots")
    assert fallback == {r["trial_id"]: r["valid_accuracy"] for r in json.loads(intact.stdout)}
    assert parquet.read_bytes() == damaged


@pytest.mark.slow
def test_unwritable_export_directory_exits_2(smoke_sweep, tmp_path):
    target = tmp_path / "file-not-dir"
    target.write_text("x")
    out = run_cli("pareto", smoke_sweep, "--no-plots", "--export", target / "sub")
    assert out.returncode == 2 and "--export" in out.stderr


def _write_constructed_sweep(root, rows):
    """A results directory whose trials are real (tiny) packed models with the given metrics."""
    from quads_search.config import ModelConfig
    from quads_search.core.export import save_model
    from quads_search.core.models import build_model
    from quads_search.results import TrialTable, trial_row

    table = TrialTable(root / "constructed")
    for trial_id, valid, test, size in rows:
        model = build_model(ModelConfig(d_model=8, layers=1, heads=2, ffn=16), 3, 20)
        metrics = {"valid_accuracy": valid, "accuracy": test, "f1_macro": test, "valid_f1_macro": valid,
                   "size_mb": size, "size_mb_nominal": size, "gmacs": 0.001, "gbitops": 1.0, "params_m": 0.001,
                   "bits_avg": 32.0}
        path = root / "models" / trial_id / "model.safetensors"
        path.parent.mkdir(parents=True)
        save_model(model, None, path, config={}, intents=["a", "b", "c"], metrics=metrics, dataset_key="x")
        table.record(trial_row(trial_id, "constructed", {}, {**metrics, "status": "finished",
                                                            "model_path": str(path)}))


# (trial, valid accuracy, test accuracy, size): on validation `valid_best` dominates `test_best`;
# on test it is the other way round.
DISAGREE = [("valid_best", 0.90, 0.50, 1.0), ("test_best", 0.50, 0.95, 1.0), ("small", 0.70, 0.40, 0.5)]


def test_default_pareto_never_ranks_selects_or_exports_on_test(tmp_path):
    _write_constructed_sweep(tmp_path, DISAGREE)
    out = run_cli("pareto", tmp_path, "--json", "--no-plots")
    assert out.returncode == 0, out.stderr
    assert {r["trial_id"] for r in json.loads(out.stdout)} == {"valid_best", "small"}
    out = run_cli("pareto", tmp_path, "--json", "--no-plots", "--max-size-mb", 1.0, "--export", tmp_path / "ship")
    assert [r["trial_id"] for r in json.loads(out.stdout)] == ["valid_best"]
    assert [p.name for p in (tmp_path / "ship").iterdir()] == ["valid_best"]
    card = (tmp_path / "ship" / "valid_best" / "MODEL_CARD.md").read_text()
    assert "validation accuracy 0.9000" in card and "Held-out test accuracy 0.5000" in card
    out = run_cli("pareto", tmp_path, "--json", "--no-plots", "--min-accuracy", 0.8)
    assert [r["trial_id"] for r in json.loads(out.stdout)] == ["valid_best"]  # 0.8 bounds validation
    table = run_cli("pareto", tmp_path, "--no-plots")
    assert "valid_acc" in table.stdout and "test_acc (held out)" in table.stdout
    assert "warning" not in table.stderr


def test_ranking_on_test_needs_explicit_objectives_and_warns(tmp_path):
    _write_constructed_sweep(tmp_path, DISAGREE)
    out = run_cli("pareto", tmp_path, "--json", "--no-plots", "--objectives", "accuracy:max,size_mb:min")
    assert out.returncode == 0, out.stderr
    assert {r["trial_id"] for r in json.loads(out.stdout)} == {"test_best", "small"}
    assert "warning: --objectives ranks on accuracy, measured on the test split" in out.stderr

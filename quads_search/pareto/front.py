"""Pareto analysis of sweep results: plain functions over arrays and DataFrames.

Objectives are (metric, mode) pairs; internally every objective is turned into one to
minimise (max-objectives are negated), so "dominates" has one meaning everywhere.
Models are chosen on the validation split; the test split (`accuracy`, `f1_macro`) is
held out: reported beside, never ranked, selected or exported on unless asked explicitly.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from quads_search.errors import UserError
from quads_search.metrics import METRICS
from quads_search.results import TrialStatus

Objectives = list[tuple[str, str]]
DEFAULT_OBJECTIVES: Objectives = [("valid_accuracy", "max"), ("size_mb", "min"), ("gmacs", "min")]


def parse_objectives(text: str) -> Objectives:
    """`valid_accuracy:max,size_mb:min` -> [("valid_accuracy", "max"), ("size_mb", "min")]."""
    out = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        metric, _, mode = part.partition(":")
        if mode not in ("max", "min"):
            raise UserError(f"--objectives: {part!r} must be metric:max or metric:min")
        if metric not in METRICS:
            raise UserError(f"--objectives: unknown metric {metric!r}; known: {sorted(METRICS)}")
        out.append((metric, mode))
    if not out:
        raise UserError("--objectives: name at least one metric:mode")
    return out


def non_dominated(costs: np.ndarray) -> np.ndarray:
    """Mask of the rows of `costs` (all minimised) that no other row dominates."""
    n = len(costs)
    keep = np.ones(n, dtype=bool)
    for i in range(n):
        no_worse = (costs <= costs[i]).all(axis=1)
        better = (costs < costs[i]).any(axis=1)
        keep[i] = not (no_worse & better).any()
    return keep


def to_costs(frame: pd.DataFrame, objectives: Objectives) -> np.ndarray:
    return np.column_stack([frame[m].to_numpy(float) * (-1 if mode == "max" else 1) for m, mode in objectives])


def hypervolume_2d(costs: np.ndarray, reference: np.ndarray) -> float:
    """Area dominated by the points (both minimised) and bounded by `reference`."""
    inside = costs[(costs < reference).all(axis=1)]
    if len(inside) == 0:
        return 0.0
    front = inside[non_dominated(inside)]
    front = front[np.argsort(front[:, 0])]
    area, previous_y = 0.0, reference[1]
    for x, y in front:
        area += (reference[0] - x) * (previous_y - y)
        previous_y = y
    return float(area)


def reference_point(frame: pd.DataFrame, objectives: Objectives) -> np.ndarray:
    """The documented reference: 0 for a max-metric (accuracy), 1.1 x the largest value for a min-metric."""
    return np.array([0.0 if mode == "max" else 1.1 * float(frame[m].max()) for m, mode in objectives])


def held_out(objectives: Objectives) -> list[str]:
    """The objectives measured on the test split: choosing on them spends the held-out estimate."""
    return [m for m, _ in objectives if METRICS[m].held_out]


def varying(frame: pd.DataFrame, objectives: Objectives) -> Objectives:
    """The objectives that are not constant over `frame` (a constant one decides nothing)."""
    return [(m, d) for m, d in objectives if frame[m].nunique(dropna=True) > 1] or objectives[:1]


def ranking_metric(objectives: Objectives) -> str:
    """The accuracy-like objective selections rank by: the first one maximised."""
    return next((m for m, d in objectives if d == "max"), objectives[0][0])


def front(frame: pd.DataFrame, objectives: Objectives) -> pd.DataFrame:
    """The non-dominated finished trials, best first by the first objective."""
    mask = non_dominated(to_costs(frame, objectives))
    first, mode = objectives[0]
    return frame[mask].sort_values(first, ascending=(mode == "min"))


def select(frame: pd.DataFrame, *, by: str = "valid_accuracy", max_size_mb: float | None = None,
           max_gmacs: float | None = None, min_accuracy: float | None = None) -> pd.DataFrame:
    """The trial best on `by` (validation accuracy) that fits every budget (empty if none does).

    `min_accuracy` bounds `by` as well: a budget never looks at the held-out test split
    unless `by` does.
    """
    fits = pd.Series(True, index=frame.index)
    if max_size_mb is not None:
        fits &= frame["size_mb"] <= max_size_mb
    if max_gmacs is not None:
        fits &= frame["gmacs"] <= max_gmacs
    if min_accuracy is not None:
        fits &= frame[by] >= min_accuracy
    return frame[fits].sort_values([by, "size_mb"], ascending=[False, True]).head(1)


def finished(frame: pd.DataFrame, objectives: Objectives, source: Path) -> pd.DataFrame:
    """Finished trials with every objective present; a clear error where there are none."""
    missing = [m for m, _ in objectives if m not in frame.columns]
    if missing:
        raise UserError(f"{source}: the results have no column {missing[0]!r} (objectives: {objectives})")
    done = frame[frame["status"] == TrialStatus.FINISHED].dropna(subset=[m for m, _ in objectives])
    if done.empty:
        raise UserError(f"{source}: no finished trials with {[m for m, _ in objectives]} to compare")
    return done.reset_index(drop=True)

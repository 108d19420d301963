"""Tidy sweep results: one row per trial in `<experiment>/trials.parquet`.

Each finished trial's row is first written as its own JSON file (atomically), then the
parquet is rebuilt from all rows and swapped in by rename. A killed sweep therefore loses
no finished trial, a re-run trial replaces its row (one row per trial id), and a damaged
parquet can always be rebuilt from the row files.

A row's `model_path` is relative to its experiment directory (`models/<trial>/model.safetensors`),
so a results folder can be moved or copied; readers resolve it with `resolve_model_path`.
`load_trials` reads every experiment under a folder (from Ray Tune's own records where a
parquet is missing or damaged).
"""
from __future__ import annotations

import json
import math
from enum import StrEnum
from pathlib import Path

import pandas as pd

from quads_search.errors import UserError
from quads_search.files import atomic_path, write_json
from quads_search.metrics import METRIC_NAMES

BASE_COLUMNS = ("trial_id", "experiment", "status", "kind", "node_id", "wall_s", *METRIC_NAMES, "error", "model_path",
                "reducer")
TRIALS_FILE = "trials.parquet"
REFERENCES_FILE = "references.json"  # the teacher's and the fp32 student's accuracy, written by the sweep
# A trial's config carries its kind beside the sampled parameters: `reference` (enqueued anchors),
# `seeded` (enqueued from the sensitivity analysis) or `searched` (drawn by the sampler).
KIND_KEY = "trial_kind"
# With `search.budget`, whether the trial's planned costs exceed it: only a reference runs over budget.
OVER_BUDGET_KEY = "over_budget"
NOT_PARAMS = (KIND_KEY, OVER_BUDGET_KEY)  # trial config keys that are no searched parameter


class TrialStatus(StrEnum):
    """How a trial ended (its row's `status`; equal to the plain strings that parquet stores)."""

    FINISHED = "finished"  # trained, measured and exported
    STOPPED = "stopped"  # search.early_stop ended it after a stage
    FAILED = "failed"  # a fault of its configuration: non-finite loss, out of memory, a user error
    ERROR = "error"  # anything else: a bug, reported with its traceback in the trial's train.log


class TrialTable:
    """The rows of one experiment directory."""

    def __init__(self, experiment_dir: Path):
        self.dir = Path(experiment_dir)
        self.rows_dir = self.dir / "rows"

    def record(self, row: dict) -> None:
        """Add or replace the row of `row['trial_id']`, then rewrite the parquet."""
        self.rows_dir.mkdir(parents=True, exist_ok=True)
        write_json(self.rows_dir / f"{row['trial_id']}.json", _clean(row))
        self.write_parquet()

    def rows(self) -> list[dict]:
        if not self.rows_dir.is_dir():
            return []
        return [json.loads(p.read_text()) for p in sorted(self.rows_dir.glob("*.json"))]

    def trial_ids(self) -> set[str]:
        return {p.stem for p in self.rows_dir.glob("*.json")} if self.rows_dir.is_dir() else set()

    def write_parquet(self) -> None:
        frame = to_frame(self.rows())
        with atomic_path(self.dir / TRIALS_FILE) as temp:
            frame.to_parquet(temp, index=False)


def stored_model_path(model_path: str | Path, experiment_dir: Path) -> str:
    """How a row stores a trial's model file: relative to the experiment directory (POSIX separators)."""
    return Path(model_path).resolve().relative_to(Path(experiment_dir).resolve()).as_posix()


def resolve_model_path(value: object, experiment_dir: Path) -> object:
    """A row's `model_path` as a path to read, for the experiment now at `experiment_dir`.

    A relative path is the experiment's. An absolute one (results written before paths were
    stored relative) that no longer exists is looked for at its place under this experiment's
    `models/`, where a moved or copied folder has it. Anything else (None, NaN) is returned as is.
    """
    if not isinstance(value, str):
        return value
    path = Path(value)
    if not path.is_absolute():
        return str(Path(experiment_dir) / path)
    moved = Path(experiment_dir) / "models" / path.parent.name / path.name
    return str(moved) if not path.exists() and moved.exists() else value


def to_frame(rows: list[dict]) -> pd.DataFrame:
    """Rows as a DataFrame with the base columns first, then `param.*` sorted."""
    frame = pd.DataFrame(rows)
    for column in BASE_COLUMNS:
        if column not in frame:
            frame[column] = None
    params = sorted(c for c in frame.columns if c.startswith("param."))
    rest = sorted(set(frame.columns) - set(BASE_COLUMNS) - set(params))
    for column in params:  # mixed types (e.g. a choice of ints and strings) would break parquet
        if frame[column].map(type).nunique() > 1:
            frame[column] = frame[column].map(lambda v: None if v is None else str(v))
        present = [row[column] for row in rows if row.get(column) is not None]
        if len(present) < len(rows) and present and all(type(v) is int for v in present):
            frame[column] = pd.array([row.get(column) for row in rows], dtype="Int64")  # ints, some missing
    return frame[list(BASE_COLUMNS) + params + rest]


def _clean(row: dict) -> dict:
    """JSON-safe: NaN/inf become None (parquet null), tuples become lists."""
    out = {}
    for key, value in row.items():
        if isinstance(value, float) and not math.isfinite(value):
            value = None
        out[key] = list(value) if isinstance(value, tuple) else value
    return out


def trial_row(trial_id: str, experiment: str, config: dict, result: dict, status: TrialStatus | None = None,
              error: str | None = None) -> dict:
    """One tidy row: identity, status, metrics, and every searched parameter as `param.<name>`."""
    status = TrialStatus(status or result.get("status", TrialStatus.ERROR))
    row = {"trial_id": trial_id, "experiment": experiment, "status": status.value,
           "kind": config.get(KIND_KEY, "searched"), "node_id": result.get("node_id"), "wall_s": result.get("wall_s"),
           "error": error if error is not None else result.get("error"), "model_path": result.get("model_path")}
    row.update({m: result.get(m) for m in METRIC_NAMES})
    row["reducer"] = result.get("reducer")  # how z_Ω reached the student's width (maxpool, linear, identity)
    row.update({k: v for k, v in result.items() if k.startswith("time_")})  # seconds per phase of the trial
    row["over_budget"] = bool(config.get(OVER_BUDGET_KEY, False))
    row.update({f"param.{name}": value for name, value in config.items() if name not in NOT_PARAMS})
    return row


def load_trials(root: Path, warn=print) -> pd.DataFrame:
    """Every trial of every experiment under `root` (or `root` itself as one experiment)."""
    root = Path(root)
    if not root.is_dir():
        raise UserError(f"{root}: no such results directory")
    experiments = sorted({p.parent for p in root.glob(f"*/{TRIALS_FILE}")} |
                         {p.parent for p in root.glob("*/experiment_state-*.json")} |
                         ({root} if (root / TRIALS_FILE).exists() or any(root.glob("experiment_state-*.json")) else set()))
    if not experiments:
        raise UserError(f"{root}: holds no experiment (no {TRIALS_FILE} and no Ray Tune experiment state)")
    frames = [_read_experiment(d, warn) for d in experiments]
    return pd.concat([f for f in frames if len(f)], ignore_index=True) if any(len(f) for f in frames) else frames[0]


def _read_experiment(directory: Path, warn) -> pd.DataFrame:
    path = directory / TRIALS_FILE
    try:
        frame = pd.read_parquet(path)
    except Exception as exc:  # noqa: BLE001 - any unreadable parquet: fall back to Tune's own records
        reason = "is missing" if not path.exists() else f"is unreadable ({type(exc).__name__})"
        warn(f"warning: {path} {reason}; reading Ray Tune's per-trial results in {directory} instead")
        frame = _from_tune_results(directory)
    if "experiment" not in frame or frame["experiment"].isna().all():
        frame["experiment"] = directory.name
    # Stored relative to the experiment (results.stored_model_path): resolved against where it is now.
    frame["model_path"] = [resolve_model_path(p, directory) for p in frame["model_path"]]
    return frame


def _from_tune_results(directory: Path) -> pd.DataFrame:
    rows = []
    for result_file in sorted(directory.glob("*/result.json")):
        lines = [json.loads(line) for line in result_file.read_text().splitlines() if line.strip()]
        final = [r for r in lines if "status" in r]
        if final:
            last = final[-1]
            rows.append(trial_row(last["trial_id"], directory.name, last.get("config", {}), last))
    return to_frame(rows)

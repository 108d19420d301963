"""Ray Tune callback that records each ended trial in trials.parquet (rows: `results.trial_row`) and shows live progress.

It keeps no state of its own (counts come from Tune's trial list, bests from the table),
so the copy Tune restores on `--resume` behaves exactly like the original.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from ray import tune

from quads_search.results import TrialTable, trial_row


class TrialRecorder(tune.Callback):
    def __init__(self, table: TrialTable, experiment: str, objectives: dict[str, str], num_samples: int,
                 log: Callable[[str], None] = print):
        self.table, self.experiment, self.objectives = table, experiment, objectives
        self.num_samples, self.log = num_samples, log

    def on_trial_start(self, iteration, trials, trial, **info) -> None:
        self.log(f"trial {trial.trial_id} started {self._params(trial.config)}  {self._counts(trials)}")

    def on_trial_complete(self, iteration, trials, trial, **info) -> None:
        row = trial_row(trial.trial_id, self.experiment, trial.config, trial.last_result or {})
        self.table.record(row)
        outcome = (f"valid acc {row['valid_accuracy']:.3f} (test {row['accuracy']:.3f}) size {row['size_mb']:.4f} MiB "
                   f"at {row['bits_avg']:.2f} bits" if row["status"] == "finished"
                   else f"{row['status'].upper()}: {row['error']}")
        if row["kind"] != "searched":
            outcome = f"({row['kind']}) {outcome}"
        self.log(f"trial {trial.trial_id} {outcome}  {self._counts(trials)}  {self._bests()}")

    def on_trial_error(self, iteration, trials, trial, **info) -> None:
        error = _error_text(trial)
        self.table.record(trial_row(trial.trial_id, self.experiment, trial.config, trial.last_result or {},
                                    status="error", error=error))
        self.log(f"trial {trial.trial_id} ERROR (after Ray's retries): {error}  {self._counts(trials)}")

    def _counts(self, trials) -> str:
        rows = {r["trial_id"]: r["status"] for r in self.table.rows()}
        finished = sum(1 for s in rows.values() if s == "finished")
        failed = len(rows) - finished
        running = sum(1 for t in trials if t.status == "RUNNING" and t.trial_id not in rows)
        return f"[{finished} finished, {failed} failed, {running} running of {self.num_samples}]"

    def _bests(self) -> str:
        rows = [r for r in self.table.rows() if r["status"] == "finished"]
        if not rows:
            return ""
        parts = []
        for metric, mode in self.objectives.items():
            values = [r[metric] for r in rows if r.get(metric) is not None]
            if values:
                parts.append(f"{metric} {(max if mode == 'max' else min)(values):.4g}")
        return "best: " + ", ".join(parts)

    @staticmethod
    def _params(config: dict) -> str:
        return " ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in config.items())


def _error_text(trial) -> str:
    path = getattr(trial, "error_file", None)
    if path and Path(path).is_file():
        lines = [line for line in Path(path).read_text().splitlines() if line.strip()]
        return lines[-1][:2000] if lines else "unknown error"
    return "unknown error"


def reconcile(grid, table: TrialTable, experiment: str) -> None:
    """Add any trial Tune knows as ended but the table lacks (e.g. a callback cut by a kill)."""
    known = table.trial_ids()
    for result in grid:
        trial_id = (result.metrics or {}).get("trial_id")
        if trial_id and trial_id not in known and "status" in result.metrics:
            table.record(trial_row(trial_id, experiment, result.config or {}, result.metrics))


def summary(table: TrialTable, experiment_dir: Path, log: Callable[[str], None] = print) -> None:
    rows = table.rows()
    finished = [r for r in rows if r["status"] == "finished"]
    log(f"done: {len(finished)} finished, {len(rows) - len(finished)} failed; "
        f"results in {experiment_dir / 'trials.parquet'}")
    log(f"next: quads-search pareto {experiment_dir.parent}")

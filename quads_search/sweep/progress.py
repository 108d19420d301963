"""Ray Tune callback that records each ended trial in trials.parquet (rows: `results.trial_row`) and shows live progress.

A trial that ended on a stage report (no final `status`) was stopped by `search.early_stop`:
its row has status `stopped` and the scheduler's reason in `error`.

It keeps no state of its own (counts come from Tune's trial list, bests from the table, stop
reasons from the early-stop scheduler), so the copy Tune restores on `--resume` behaves
exactly like the original.
"""
from __future__ import annotations

import logging
from pathlib import Path

from ray import tune

from quads_search.results import KIND_KEY, TrialStatus, TrialTable, trial_row
from quads_search.sweep.params import REFERENCE_BITS_KEY
from quads_search.sweep.stopping import was_stopped

logger = logging.getLogger(__name__)


class TrialRecorder(tune.Callback):
    def __init__(self, table: TrialTable, experiment: str, objectives: dict[str, str], num_samples: int,
                 stop_reasons: dict[str, str] | None = None):
        self.table, self.experiment, self.objectives = table, experiment, objectives
        self.num_samples = num_samples
        self.stop_reasons = {} if stop_reasons is None else stop_reasons  # the early-stop scheduler's, shared

    def on_trial_start(self, iteration, trials, trial, **info) -> None:
        logger.info(f"trial {trial.trial_id} started {self._params(trial.config)}  {self._counts(trials)}")

    def on_trial_complete(self, iteration, trials, trial, **info) -> None:
        result = trial.last_result or {}
        if was_stopped(result):  # ended on a stage report: search.early_stop stopped it
            reason = self.stop_reasons.get(trial.trial_id, f"stopped after stage {result['stage']}")
            row = trial_row(trial.trial_id, self.experiment, trial.config, result, status=TrialStatus.STOPPED, error=reason)
        else:
            row = trial_row(trial.trial_id, self.experiment, trial.config, result)
        self.table.record(row)
        outcome = (f"valid acc {row['valid_accuracy']:.3f} (test {row['accuracy']:.3f}) size {row['size_mb']:.4f} MiB "
                   f"at {row['bits_avg']:.2f} bits" if row["status"] == TrialStatus.FINISHED
                   else f"{row['status'].upper()}: {row['error']}")
        if row["kind"] != "searched":
            outcome = f"({row['kind']}) {outcome}"
        logger.info(f"trial {trial.trial_id} {outcome}  {self._counts(trials)}  {self._bests()}")

    def on_trial_error(self, iteration, trials, trial, **info) -> None:
        error = _error_text(trial)
        self.table.record(trial_row(trial.trial_id, self.experiment, trial.config, trial.last_result or {},
                                    status="error", error=error))
        logger.info(f"trial {trial.trial_id} ERROR (after Ray's retries): {error}  {self._counts(trials)}")

    def _counts(self, trials) -> str:
        rows = {r["trial_id"]: r["status"] for r in self.table.rows()}
        finished = sum(1 for s in rows.values() if s == TrialStatus.FINISHED)
        stopped = sum(1 for s in rows.values() if s == TrialStatus.STOPPED)
        failed = len(rows) - finished - stopped
        running = sum(1 for t in trials if t.status == "RUNNING" and t.trial_id not in rows)
        early = f"{stopped} stopped early, " if stopped else ""
        return f"[{finished} finished, {early}{failed} failed, {running} running of {self.num_samples}]"

    def _bests(self) -> str:
        rows = [r for r in self.table.rows() if r["status"] == TrialStatus.FINISHED]
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
        """The trial's parameters; a reference trial's uniform width replaces its `bits.*` placeholders."""
        uniform = config.get(REFERENCE_BITS_KEY)
        shown = {k: v for k, v in config.items()
                 if uniform is None or not (k.startswith("bits.") or k in (REFERENCE_BITS_KEY, KIND_KEY))}
        text = " ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in shown.items())
        return text if uniform is None else f"reference: every tensor at {uniform} bits, {text}"


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


def summary(table: TrialTable, experiment_dir: Path) -> None:
    rows = table.rows()
    finished = [r for r in rows if r["status"] == TrialStatus.FINISHED]
    stopped = [r for r in rows if r["status"] == TrialStatus.STOPPED]
    early = f"{len(stopped)} stopped early (search.early_stop), " if stopped else ""
    logger.info(f"done: {len(finished)} finished, {early}{len(rows) - len(finished) - len(stopped)} failed; "
                f"results in {experiment_dir / 'trials.parquet'}")
    logger.info(f"next: quads-search pareto {experiment_dir.parent}")

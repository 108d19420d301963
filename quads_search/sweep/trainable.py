"""The function trainable every sweep trial runs.

params (sampled by Optuna) + the base run config -> `run_quads` -> one final `tune.report`
holding every metric. Ray Tune reuses a worker for the next trial (`reuse_actors`), so a
worker imports torch once and keeps the shared cached data (features, teacher embeddings,
pre-tuned student) in memory for every trial with the same `prepare_key`.

A stage-end report carries a checkpoint only when `checkpoint_every_s` have passed since the
last one, so a restored trial continues after its last checkpointed stage without every
stage paying for a checkpoint. While a trial runs, the `quads_search` loggers' progress lines
go to its own `train.log` (`log.to_file`). What goes wrong inside training is classified:
  failed  a training fault (NaN/inf loss, out of memory, a sampled setting the model cannot
          take): the searcher learns of it and the sweep goes on;
  error   any other exception, i.e. a bug: recorded with its traceback in train.log and counted
          in the sweep's exit summary, never passed off as a training result.
A dying worker is Ray's to retry (`search.max_retries`).
"""
from __future__ import annotations

import contextlib
import logging
import tempfile
import time
import traceback
from pathlib import Path

import ray
from ray import tune

from quads_search.config import RunConfig, run_config_from_dict
from quads_search.core.epochs import is_training_fault
from quads_search.core.planned import planned_size_mb
from quads_search.core.prepare import Prepared, prepare, prepare_key
from quads_search.core.run import run_quads, timed
from quads_search.log import to_file
from quads_search.metrics import METRIC_NAMES
from quads_search.results import TrialStatus, stored_model_path
from quads_search.sweep.params import apply_params
from quads_search.sweep.stopping import PLANNED_SIZE_KEY

logger = logging.getLogger(__name__)

# Metrics that go into the final report (scalars only; bits per tensor stay in the model file).
FINAL_KEYS = (*METRIC_NAMES, "model_path", "reducer")
_WORKER: dict[str, Prepared] = {}  # this worker process's shared data, by prepare_key


def quads_trial(params: dict, *, base: dict, experiment_dir: str, checkpoint_every_s: float) -> None:
    start = time.perf_counter()
    trial_id = tune.get_context().get_trial_id()
    trial_dir = Path(experiment_dir) / "models" / trial_id
    trial_dir.mkdir(parents=True, exist_ok=True)
    common = {"trial_id": trial_id, "node_id": ray.get_runtime_context().get_node_id()}
    timings: dict[str, float] = {}
    with to_file(trial_dir / "train.log"):
        try:
            final = _train(params, base, trial_dir, checkpoint_every_s, timings)
            # relative to the experiment, so that the results folder can move (pareto resolves it)
            final.update(status=TrialStatus.FINISHED, error=None,
                         model_path=stored_model_path(final["model_path"], Path(experiment_dir)))
        except Exception as exc:  # noqa: BLE001 - classified, logged and reported; the sweep goes on
            logger.error(traceback.format_exc())
            status = TrialStatus.FAILED if is_training_fault(exc) else TrialStatus.ERROR
            final = {"status": status, "error": f"{type(exc).__name__}: {exc}"[:2000]}
    timings = {f"time_{k}_s": round(v, 3) for k, v in timings.items()}
    tune.report({**final, **common, **timings, "wall_s": time.perf_counter() - start})


def _shared(config: RunConfig) -> Prepared:
    """The prepared data for `config`, loaded once per worker (the last key only: memory stays flat)."""
    key = prepare_key(config)
    if key not in _WORKER:
        _WORKER.clear()
        _WORKER[key] = prepare(config)
    return _WORKER[key]


def _train(params: dict, base: dict, trial_dir: Path, checkpoint_every_s: float, timings: dict[str, float]) -> dict:
    config = apply_params(run_config_from_dict(base), params)
    checkpoint = tune.get_checkpoint()
    with timed(timings, "shared_data"):
        prepared = _shared(config)
    last_checkpoint = [time.perf_counter()]
    planned = planned_size_mb(config, len(prepared.data.intents))  # for search.early_stop, once per trial

    def on_stage_end(record: dict, save) -> None:
        progress = {"stage": record["stage"], "stage_valid_accuracy": record["valid_accuracy"],
                    PLANNED_SIZE_KEY: planned}
        if time.perf_counter() - last_checkpoint[0] < checkpoint_every_s:
            tune.report(progress)
            return
        with timed(timings, "checkpoint"), tempfile.TemporaryDirectory() as directory:
            save(Path(directory))
            tune.report(progress, checkpoint=tune.Checkpoint.from_directory(directory))
        last_checkpoint[0] = time.perf_counter()

    with checkpoint.as_directory() if checkpoint else contextlib.nullcontext() as resume_dir:
        metrics = run_quads(config, trial_dir, on_stage_end=on_stage_end, prepared=prepared,
                            resume_from=Path(resume_dir) if resume_dir else None, timings=timings)
    return {key: metrics[key] for key in FINAL_KEYS}

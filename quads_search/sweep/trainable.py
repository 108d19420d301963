"""The function trainable every sweep trial runs.

params (sampled by Optuna) + the base run config -> `run_quads` -> one final
`tune.report` holding every metric. Each stage end reports a checkpoint, so a restored
trial continues after its last finished stage. A failure inside training (an exception,
a NaN/inf loss, out of memory) is reported as a failed trial with its error, so the
searcher learns of it and the sweep goes on; a dying worker is Ray's to retry.
"""
from __future__ import annotations

import contextlib
import tempfile
import time
from pathlib import Path

import ray
from ray import tune

from quads_search.config import run_config_from_dict
from quads_search.core.run import run_quads
from quads_search.metrics import METRIC_NAMES
from quads_search.sweep.space import apply_params

# Metrics that go into the final report (scalars only; bits per tensor stay in the model file).
FINAL_KEYS = (*METRIC_NAMES, "model_path")


def quads_trial(params: dict, *, base: dict, experiment_dir: str) -> None:
    start = time.perf_counter()
    trial_id = tune.get_context().get_trial_id()
    trial_dir = Path(experiment_dir) / "models" / trial_id
    trial_dir.mkdir(parents=True, exist_ok=True)
    common = {"trial_id": trial_id, "node_id": ray.get_runtime_context().get_node_id()}
    with open(trial_dir / "train.log", "a") as log_file:
        def log(message: str) -> None:
            print(message, file=log_file, flush=True)

        try:
            final = _train(params, base, trial_dir, log)
            final.update(status="finished", error=None)
        except Exception as exc:  # noqa: BLE001 - any training failure fails this trial only
            log(f"failed: {type(exc).__name__}: {exc}")
            final = {"status": "failed", "error": f"{type(exc).__name__}: {exc}"[:2000]}
    tune.report({**final, **common, "wall_s": time.perf_counter() - start})


def _train(params: dict, base: dict, trial_dir: Path, log) -> dict:
    config = apply_params(run_config_from_dict(base), params)
    checkpoint = tune.get_checkpoint()

    def on_stage_end(record: dict, save) -> None:
        with tempfile.TemporaryDirectory() as directory:
            save(Path(directory))
            tune.report({"stage": record["stage"], "stage_valid_accuracy": record["valid_accuracy"]},
                        checkpoint=tune.Checkpoint.from_directory(directory))

    with checkpoint.as_directory() if checkpoint else contextlib.nullcontext() as resume_dir:
        metrics = run_quads(config, trial_dir, log=log, on_stage_end=on_stage_end,
                            resume_from=Path(resume_dir) if resume_dir else None)
    return {key: metrics[key] for key in FINAL_KEYS}

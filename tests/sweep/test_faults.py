"""Faults: failed trials are recorded and told to Optuna, the sweep goes on, a killed worker is retried
(one sweep carries all three)."""
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import optuna
import pandas as pd
import pytest

from tests.sweep.common import study_trials, sweep_args, wait_for


@pytest.mark.slow
def test_soak_faults_fail_alone_a_killed_worker_is_retried_and_the_sweep_goes_on(smoke_cache, smoke_sweep, tmp_path):
    # Two real faults. A learning rate of 1e30 makes the loss NaN within a few batches. A 2^40-wide
    # feed-forward layer asks the allocator for 2^48 bytes, more than a 64-bit process can address:
    # the allocation fails at once under any overcommit setting (1 TB could be granted, then killed).
    # And one infrastructure failure: the worker of the first trial to checkpoint a stage is killed;
    # Ray retries that trial (search.max_retries) from its last stage checkpoint.
    huge = 2 ** 40
    space = ("space={training.schedule.0.lr: {choice: [0.0003, 1.0e+30]}, training.gamma: {uniform: [0, 1]}, "
             f"student.ffn: {{choice: [256, {huge}]}}}}")
    longer = "training.schedule=[{stage: distill, epochs: 1}, {stage: distill, epochs: 1}, {stage: quantize, epochs: 2}]"
    args = sweep_args(tmp_path, smoke_cache, "--num-samples", 10, "--set", space, "--set", longer,
                      "--set", "search.sampler=random", "--set", "search.seed=7",  # 6 + 2 faults, 2 fine
                      "--set", "search.max_retries=1", "--set", "search.checkpoint_every_s=0")
    driver = subprocess.Popen([sys.executable, "-m", "quads_search.cli", *map(str, args)],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    experiment = tmp_path / "mixed_precision"
    os.kill(wait_for(lambda: _first_checkpointed_pid(experiment), driver, 300), signal.SIGKILL)
    output, _ = driver.communicate(timeout=600)
    trials = pd.read_parquet(experiment / "trials.parquet")
    assert len(trials) == 10 and trials["trial_id"].is_unique
    out_of_memory = trials["param.student.ffn"] == huge  # fails while building, whatever the learning rate
    diverged = (trials["param.training.schedule.0.lr"] > 1) & ~out_of_memory
    failed = out_of_memory | diverged
    assert out_of_memory.any() and diverged.any() and not failed.all(), "the seed must draw every case"
    assert (trials.loc[failed, "status"] == "failed").all() and (trials.loc[~failed, "status"] == "finished").all()
    assert driver.returncode == 1, output[-3000:]  # some failed: the finished are kept
    assert f"{failed.sum()} of 10 trials did not finish: " in output
    assert f"{diverged.sum()} x NonFiniteLoss" in output and f"{out_of_memory.sum()} x RuntimeError" in output
    assert f"the {(~failed).sum()} finished ones are kept" in output
    assert trials.loc[diverged, "error"].str.contains("NonFiniteLoss").all()
    assert trials.loc[out_of_memory, "error"].str.contains("allocate").all()
    assert trials.loc[failed, "accuracy"].isna().all()
    states = [t.state for t in study_trials(experiment)]
    assert states.count(optuna.trial.TrialState.FAIL) == failed.sum()
    assert states.count(optuna.trial.TrialState.COMPLETE) == 10 - failed.sum()
    resumed = [t for t in trials.itertuples() if re.search(r"resumed after stage [12] of 3",
                                                           (experiment / "models" / t.trial_id / "train.log").read_text())]
    assert len(resumed) == 1 and resumed[0].status == "finished"


def test_training_faults_are_told_apart_from_bugs():
    # A fault of the configuration being trained fails the trial; anything else is a bug, recorded as an error.
    from quads_search.core.epochs import NonFiniteLoss
    from quads_search.errors import UserError
    from quads_search.core.epochs import is_training_fault

    assert is_training_fault(UserError("quantization.bits: 'x' matches no weight tensor"))
    assert is_training_fault(NonFiniteLoss("nan")) and is_training_fault(RuntimeError("can't allocate memory"))
    assert not is_training_fault(TypeError("unsupported operand")) and not is_training_fault(KeyError("x"))


def _first_checkpointed_pid(experiment: Path):
    for result in experiment.glob("quads_trial_*/result.json"):
        lines = [json.loads(line) for line in result.read_text().splitlines() if line.strip()]
        if lines and list(result.parent.glob("checkpoint_*")):
            return lines[0]["pid"]
    return None

"""Faults, interruption and exposure: failed trials are recorded, nothing is lost, Ray stays on loopback."""
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pandas as pd
import pytest

from quads_search.sweep.driver import dashboard_warning
from tests.conftest import SPACE, run_cli

ROOT = Path(__file__).parents[1]
SHORT = "training.schedule=[{stage: distill, epochs: 1}, {stage: quantize, epochs: 1}]"


def sweep_args(results, cache, *extra):
    """A smoke sweep of short trials and no reference trials (the sampler alone decides the params)."""
    return ["run", SPACE, "--smoke", "--results-dir", results, "--set", f"cache_dir={cache}", "--set", SHORT,
            "--set", "search.references=[]", *extra]


@pytest.mark.slow
def test_soak_diverging_and_out_of_memory_trials_fail_alone_are_told_to_optuna_and_the_sweep_goes_on(
        smoke_cache, smoke_sweep, tmp_path):
    # Two real faults. A learning rate of 1e30 makes the loss NaN within a few batches. A 2^40-wide
    # feed-forward layer asks the allocator for 2^48 bytes, more than a 64-bit process can address:
    # the allocation fails at once under any overcommit setting (1 TB could be granted, then killed).
    huge = 2 ** 40
    space = ("space={training.schedule.0.lr: {choice: [0.0003, 1.0e+30]}, training.gamma: {uniform: [0, 1]}, "
             f"student.ffn: {{choice: [256, {huge}]}}}}")
    out = run_cli(*sweep_args(tmp_path, smoke_cache, "--num-samples", 10, "--set", space,
                              "--set", "search.sampler=random", "--set", "search.seed=7"))  # 6 + 2 faults, 2 fine
    trials = pd.read_parquet(tmp_path / "mixed_precision" / "trials.parquet")
    assert len(trials) == 10 and trials["trial_id"].is_unique
    out_of_memory = trials["param.student.ffn"] == huge  # fails while building, whatever the learning rate
    diverged = (trials["param.training.schedule.0.lr"] > 1) & ~out_of_memory
    failed = out_of_memory | diverged
    assert out_of_memory.any() and diverged.any() and not failed.all(), "the seed must draw every case"
    assert (trials.loc[failed, "status"] == "failed").all() and (trials.loc[~failed, "status"] == "finished").all()
    assert out.returncode == 1, out.stdout[-3000:] + out.stderr[-3000:]  # some failed: the finished are kept
    assert f"{failed.sum()} of 10 trials did not finish: " in out.stderr
    assert f"{diverged.sum()} x NonFiniteLoss" in out.stderr and f"{out_of_memory.sum()} x RuntimeError" in out.stderr
    assert trials.loc[diverged, "error"].str.contains("NonFiniteLoss").all()
    assert trials.loc[out_of_memory, "error"].str.contains("allocate").all()
    assert trials.loc[failed, "accuracy"].isna().all()
    storage = optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(tmp_path / "mixed_precision" / "optuna.journal")))
    (summary,) = optuna.get_all_study_summaries(storage)
    study = optuna.load_study(study_name=summary.study_name, storage=storage)
    states = [t.state for t in study.trials]
    assert states.count(optuna.trial.TrialState.FAIL) == failed.sum()
    assert states.count(optuna.trial.TrialState.COMPLETE) == 10 - failed.sum()


@pytest.mark.slow
def test_a_sweep_where_no_trial_finishes_exits_1_with_the_causes(smoke_cache, smoke_sweep, tmp_path):
    out = run_cli(*sweep_args(tmp_path, smoke_cache, "--num-samples", 2, "--set",
                              "space={training.schedule.0.lr: {choice: [1.0e+30, 1.0e+31]}}"))
    assert out.returncode == 1, out.stdout[-3000:] + out.stderr[-3000:]
    assert "2 of 2 trials did not finish: 2 x NonFiniteLoss; no trial finished" in out.stderr
    assert "interrupted" not in out.stdout + out.stderr


def test_training_faults_are_told_apart_from_bugs():
    # A fault of the configuration being trained fails the trial; anything else is a bug, recorded as an error.
    from quads_search.core.epochs import NonFiniteLoss
    from quads_search.errors import UserError
    from quads_search.core.epochs import is_training_fault

    assert is_training_fault(UserError("quantization.bits: 'x' matches no weight tensor"))
    assert is_training_fault(NonFiniteLoss("nan")) and is_training_fault(RuntimeError("can't allocate memory"))
    assert not is_training_fault(TypeError("unsupported operand")) and not is_training_fault(KeyError("x"))


@pytest.mark.slow
def test_a_killed_worker_is_retried_from_its_last_stage_checkpoint(smoke_cache, smoke_sweep, tmp_path):
    longer = "training.schedule=[{stage: distill, epochs: 1}, {stage: distill, epochs: 2}, {stage: quantize, epochs: 2}]"
    driver = subprocess.Popen([sys.executable, "-m", "quads_search.cli", *map(str, sweep_args(
        tmp_path, smoke_cache, "--num-samples", 1, "--set", longer, "--set", "search.max_retries=1",
        "--set", "search.checkpoint_every_s=0"))],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    experiment = tmp_path / "mixed_precision"
    pid = _wait_for(lambda: _first_checkpointed_pid(experiment), driver, 300)
    os.kill(pid, signal.SIGKILL)
    output, _ = driver.communicate(timeout=400)
    assert driver.returncode == 0, output[-3000:]
    (row,) = pd.read_parquet(experiment / "trials.parquet").to_dict("records")
    assert row["status"] == "finished"
    log = (experiment / "models" / row["trial_id"] / "train.log").read_text()
    assert "resumed after stage 1 of 3" in log


def _first_checkpointed_pid(experiment: Path):
    for result in experiment.glob("quads_trial_*/result.json"):
        lines = [json.loads(line) for line in result.read_text().splitlines() if line.strip()]
        if lines and list(result.parent.glob("checkpoint_*")):
            return lines[0]["pid"]
    return None


def _wait_for(probe, process, seconds):
    deadline = time.time() + seconds
    while time.time() < deadline:
        assert process.poll() is None, "the sweep ended early"
        value = probe()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError("timed out")


@pytest.mark.slow
def test_ctrl_c_stops_cleanly_and_resume_finishes(smoke_cache, smoke_sweep, tmp_path):
    args = sweep_args(tmp_path, smoke_cache, "--num-samples", 3, "--max-concurrent", 1)
    driver = subprocess.Popen([sys.executable, "-m", "quads_search.cli", *map(str, args)],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    rows = tmp_path / "mixed_precision" / "rows"
    _wait_for(lambda: rows.is_dir() and any(rows.glob("*.json")), driver, 300)
    driver.send_signal(signal.SIGINT)
    output, _ = driver.communicate(timeout=120)
    assert driver.returncode == 130, output[-3000:]
    assert "--resume" in output
    out = run_cli(*args, "--resume")
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    trials = pd.read_parquet(tmp_path / "mixed_precision" / "trials.parquet")
    assert len(trials) == 3 and trials["trial_id"].is_unique and (trials["status"] == "finished").all()


PROBE = """
import json, os, psutil, ray
from quads_search.sweep.driver import start_ray
messages = []
start_ray(None, messages.append)
me = psutil.Process()
listening = set()
for proc in [me] + me.children(recursive=True):
    try:
        listening |= {c.laddr.ip for c in proc.net_connections(kind="inet") if c.status == psutil.CONN_LISTEN}
    except psutil.Error:
        pass
nodes = {n["NodeManagerAddress"] for n in ray.nodes()}
print(json.dumps({"listening": sorted(listening), "nodes": sorted(nodes), "messages": messages,
                  "gcs": ray.get_runtime_context().gcs_address}))
ray.shutdown()
"""


@pytest.mark.slow
def test_a_local_ray_listens_only_on_loopback():
    env = dict(os.environ, RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0")
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=180, env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["listening"] and set(report["listening"]) <= {"127.0.0.1", "::1", "::ffff:127.0.0.1"}, report
    assert report["nodes"] == ["127.0.0.1"] and report["gcs"].startswith("127.0.0.1:")
    assert "Ray dashboard: http://127.0.0.1:" in report["messages"][0]
    assert "ray get-auth-token" in report["messages"][0]


def test_a_dashboard_bound_beyond_loopback_is_warned_about():
    assert dashboard_warning("127.0.0.1") is None
    assert "Jobs API" in dashboard_warning("0.0.0.0")


@pytest.mark.slow
def test_the_auth_token_is_neither_printed_nor_written_into_results(smoke_sweep, smoke_home):
    token_file = smoke_home / ".ray" / "auth_token"  # the sweep ran with this fresh HOME: its own token
    assert token_file.is_file(), "a local Ray with token authentication writes its token here"
    token = token_file.read_text().strip()
    assert len(token) >= 16
    printed = (smoke_sweep / "run-output.txt").read_text()
    assert "ray get-auth-token" in printed and token not in printed
    for path in smoke_sweep.rglob("*"):
        if path.is_file():
            assert token.encode() not in path.read_bytes(), path


def test_the_code_never_unpickles_evaluates_yaml_unsafely_or_builds_shell_commands():
    source = {p: p.read_text() for d in ("quads_search", "trainables") for p in (ROOT / d).rglob("*.py")}
    for path, text in source.items():
        assert not re.search(r"import pickle|pickle\.loads?\(|torch\.load\(|yaml\.(unsafe_)?load\(|shell=True|os\.system\(", text), path
        assert "eval(" not in text.replace("model.eval(", "").replace(".eval()", ""), path

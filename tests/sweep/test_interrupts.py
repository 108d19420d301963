"""Interrupted sweeps: a stop signal (Ctrl-C, SIGTERM, SIGUSR1) saves the state and exits 130, a SIGKILL
loses nothing written, and --resume finishes with every trial exactly once. One sweep takes Ctrl-C,
SIGTERM and the kill, each resumed run being the one the next signal stops; SIGUSR1 takes SIGTERM's
route (`driver._as_ctrl_c`), which the in-process test checks without a sweep."""
import os
import signal
import subprocess
import sys

import pandas as pd
import pytest

from tests.runner import run_cli
from tests.sweep.common import sweep_args, wait_for

TRIALS = 4
STOPS = (signal.SIGINT, signal.SIGTERM)  # SIGTERM: a scheduler's or `kill`'s (ray.init replaces its handler)


def test_sigterm_and_sigusr1_take_the_route_of_ctrl_c_and_the_old_handlers_come_back():
    from quads_search.sweep import driver

    calls, before = [], {s: signal.getsignal(s) for s in (signal.SIGINT, *driver.STOP_SIGNALS)}
    signal.signal(signal.SIGINT, lambda signum, frame: calls.append(signum))  # stands in for Tune's handler
    try:
        with driver._stop_signals_as_ctrl_c():
            for signum in (signal.SIGTERM, signal.SIGUSR1):
                assert signal.getsignal(signum) is driver._as_ctrl_c
                os.kill(os.getpid(), signum)
        assert calls == [signal.SIGINT, signal.SIGINT]
        assert all(signal.getsignal(s) is before[s] for s in driver.STOP_SIGNALS)
    finally:
        signal.signal(signal.SIGINT, before[signal.SIGINT])


@pytest.mark.slow
def test_stop_signals_save_the_state_a_kill_loses_nothing_and_resume_keeps_every_trial_once(
        smoke_cache, smoke_sweep, tmp_path):
    args = sweep_args(tmp_path, smoke_cache, "--num-samples", TRIALS, "--max-concurrent", 1)
    command = [sys.executable, "-m", "quads_search.cli", *map(str, args)]
    rows = tmp_path / "mixed_precision" / "rows"

    def recorded() -> set[str]:
        return {p.stem for p in rows.glob("*.json")} if rows.is_dir() else set()

    for done, signum in enumerate(STOPS):  # run 1 is new, runs 2 and 3 resume: each is stopped a trial later
        driver = subprocess.Popen(command + (["--resume"] if done else []), stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True)
        wait_for(lambda done=done: len(recorded()) > done, driver, 300)
        driver.send_signal(signum)
        output, _ = driver.communicate(timeout=120)
        assert driver.returncode == 130, (signum.name, output[-3000:])
        assert "--resume" in output and "without an interrupt" not in output, (signum.name, output[-3000:])
    assert len(recorded()) < TRIALS
    # SIGKILL: no handler runs, Tune's state is whatever it last saved (within a second)
    driver = subprocess.Popen(command + ["--resume"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)
    wait_for(lambda: len(recorded()) > len(STOPS), driver, 300)
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    before = recorded()
    assert len(STOPS) < len(before) < TRIALS, "killed while its last trial ran"
    out = run_cli(*args, "--resume", entry_point=True)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    trials = pd.read_parquet(tmp_path / "mixed_precision" / "trials.parquet")
    assert len(trials) == TRIALS and trials["trial_id"].is_unique and (trials["status"] == "finished").all()
    assert before <= set(trials["trial_id"])

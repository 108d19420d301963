"""The sweep: validated SweepConfig -> Optuna (through Ray Tune's OptunaSearch) -> trials -> results/.

Ray is imported in this package (`quads_search.sweep`) only, and only by its driver,
progress callback, searcher and trainable; `space` is Ray-free. The driver builds every shared
cache (corpus, features, pre-tuned teacher and student) before Ray starts, so trials only load,
and writes the reference accuracies (teacher, fp32 student) beside the results.
"""
from __future__ import annotations

import collections
import contextlib
import logging
import os
import signal
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import ray
import yaml
from filelock import FileLock, Timeout
from ray import tune

from quads_search.config import SweepConfig, to_dict
from quads_search.errors import UserError
from quads_search.files import write_json, write_text
from quads_search.results import REFERENCES_FILE, TRIALS_FILE, TrialStatus, TrialTable
from quads_search.sweep.budget import check_reachable, read_record, record_line
from quads_search.sweep.progress import TrialRecorder, reconcile, summary
from quads_search.sweep.scheduler import EarlyStopScheduler
from quads_search.sweep.searcher import make_searcher
from quads_search.sweep.seeding import warm_start_trials
from quads_search.sweep.references import Enqueued, reference_trials
from quads_search.sweep.trainable import quads_trial

logger = logging.getLogger(__name__)

LOOPBACK = ("127.0.0.1", "localhost", "::1")
LOCK_FILE = ".run.lock"  # held by the one `run` writing into an experiment directory
# Besides SIGINT, what stops a sweep as Ctrl-C does (Tune saves its state; exit 130, --resume
# continues): SIGTERM (a scheduler's or `kill`'s) and SIGUSR1 (which Ray Tune handles while trials run).
STOP_SIGNALS = (signal.SIGTERM, signal.SIGUSR1)


def dashboard_warning(host: str) -> str | None:
    """The warning owed when the dashboard listens beyond loopback, else None."""
    if host in LOOPBACK:
        return None
    return (f"WARNING: the Ray dashboard will listen on {host}: anyone who can reach it and holds the token "
            f"can run code on this machine through Ray's Jobs API")


def start_ray(address: str | None, dashboard_host: str = "127.0.0.1") -> None:
    """Join `address` (else RAY_ADDRESS, as Ray's own tools read it), or start a local Ray of this
    sweep's own whose every process stays on 127.0.0.1.

    A bare `ray.init()` would instead join the cluster that `ray start` (or Ray's Cluster
    helper) last started on this machine, so that another job's shutdown kills the sweep's
    trials; `address="local"` always starts a new one. The dashboard binds to `dashboard_host`
    (loopback unless asked otherwise): Ray's Jobs API behind it runs arbitrary code, so
    binding it wider is warned about.
    """
    address = address or os.environ.get("RAY_ADDRESS") or None
    if address:
        ray.init(address=address, log_to_driver=False)
        logger.info(f"joined the Ray cluster at {address}; its dashboard shows the trials")
        return
    from ray._private import ray_constants  # read once, when Ray is imported

    if ray_constants.ENABLE_RAY_CLUSTER:
        raise RuntimeError("a local sweep must keep Ray on 127.0.0.1: set RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 "
                           "in the environment before Ray is imported (the CLI does)")
    warning = dashboard_warning(dashboard_host)
    if warning:
        logger.warning(warning)
    context = ray.init(address="local", include_dashboard=True, dashboard_host=dashboard_host,
                       log_to_driver=False, configure_logging=False)
    url = context.dashboard_url or "(dashboard unavailable)"
    logger.info(f"Ray dashboard: http://{url}  (sign in with the token from `ray get-auth-token`)")


def trainable(config: SweepConfig, experiment_dir: Path):
    resources = {"cpu": config.search.cpus_per_trial, "gpu": config.search.gpus_per_trial}
    base = to_dict(config.run_config())
    fn = tune.with_parameters(quads_trial, base=base, experiment_dir=str(experiment_dir),
                              checkpoint_every_s=config.search.checkpoint_every_s)
    return tune.with_resources(fn, resources)


@dataclass(frozen=True)
class SweepOutcome:
    """What a sweep ended with: the CLI's exit code follows from it."""

    experiment_dir: Path
    finished: int
    failures: dict[str, int]  # error type -> trials that ended with it (failed or error)
    stopped: int = 0  # stopped early by search.early_stop: by design, no failure

    def failure_summary(self) -> str:
        causes = ", ".join(f"{n} x {cause}" for cause, n in sorted(self.failures.items(), key=lambda kv: -kv[1]))
        total = self.finished + self.stopped + sum(self.failures.values())
        return f"{sum(self.failures.values())} of {total} trials did not finish: {causes}"


def run_sweep(config: SweepConfig, results_dir: Path, *, address: str | None = None, resume: bool = False,
              dashboard_host: str = "127.0.0.1") -> SweepOutcome:
    """Run (or resume) the sweep into `<results_dir>/<name>/`; KeyboardInterrupt if interrupted
    (Ctrl-C, SIGTERM or SIGUSR1). The experiment directory is locked while it runs."""
    results_dir = results_dir.resolve()
    experiment_dir = results_dir / config.name
    if resume and not experiment_dir.is_dir():
        raise UserError(f"--resume: {experiment_dir} holds no sweep to resume")
    with _locked(experiment_dir), _stop_signals_as_ctrl_c():
        _check_experiment_dir(experiment_dir, config, resume)
        return _run_locked(config, results_dir, experiment_dir, address, resume, dashboard_host)


def _run_locked(config: SweepConfig, results_dir: Path, experiment_dir: Path, address: str | None, resume: bool,
                dashboard_host: str) -> SweepOutcome:
    if not resume:
        write_text(experiment_dir / "config.yaml", yaml.safe_dump(to_dict(config), sort_keys=False))
    from quads_search.core.prepare import prepare

    logger.info("preparing shared data and pre-tuned models (cached after the first run)")
    prepared = prepare(config.run_config())
    write_json(experiment_dir / REFERENCES_FILE, prepared.references)
    num_classes = len(prepared.data.intents)
    check_reachable(config, num_classes)  # search.budget (#29): a budget nothing fits stops here
    seeded = [] if resume else warm_start_trials(config, prepared)  # search.warm_start (#19)
    scheduler = EarlyStopScheduler(config.search.early_stop) if config.search.early_stop else None  # (#19)
    os.environ.setdefault("TUNE_GLOBAL_CHECKPOINT_S", "1")  # experiment state on disk within a second
    # Stage reports carry no objectives; the final one always does, and QuadsOptunaSearch fails
    # (rather than silently drops) any trial whose final report lacks one.
    os.environ["TUNE_DISABLE_STRICT_METRIC_CHECKING"] = "1"
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")  # stage checkpoints are small
    start_ray(address, dashboard_host)
    _handle_stop_signals()  # again: ray.init replaced the SIGTERM handler
    try:
        table = TrialTable(experiment_dir)
        recorder = TrialRecorder(table, config.name, config.search.objectives, config.search.num_samples,
                                 stop_reasons=scheduler.reasons if scheduler else None)
        tuner = _tuner(config, experiment_dir, recorder, resume, seeded, scheduler, num_classes)
        grid, interrupted = _fit(tuner)
        reconcile(grid, table, config.name)
    finally:
        ray.shutdown()
    rows = table.rows()
    budget = read_record(experiment_dir)  # search.budget (#29): what it rejected
    if budget is not None:
        logger.info(record_line(budget))
    if interrupted:
        logger.info(f"interrupted after {len(rows)} of {config.search.num_samples} trials; the state is saved: "
                    f"continue with the same command plus --resume")
        raise KeyboardInterrupt
    if len(rows) < config.search.num_samples and budget is not None and budget["stopped"]:
        raise UserError(f"{budget['stopped']}; {len(rows)} of {config.search.num_samples} trials ran (kept)")
    if len(rows) < config.search.num_samples:
        raise RuntimeError(f"Ray Tune returned after {len(rows)} of {config.search.num_samples} trials without "
                           f"an interrupt; see {experiment_dir} (continue with --resume)")
    summary(table, experiment_dir)
    failures = collections.Counter(str(r.get("error") or r["status"]).split(":")[0] for r in rows
                                   if r["status"] not in (TrialStatus.FINISHED, TrialStatus.STOPPED))
    stopped = sum(1 for r in rows if r["status"] == TrialStatus.STOPPED)
    return SweepOutcome(experiment_dir, len(rows) - sum(failures.values()) - stopped, dict(failures), stopped)


def _fit(tuner: tune.Tuner) -> tuple[tune.ResultGrid, bool]:
    """Run the tuner; (results, whether SIGINT, SIGTERM or SIGUSR1 stopped it).

    Ray Tune catches SIGINT and SIGUSR1 itself and returns normally; SIGTERM reaches Tune's
    SIGINT handler through `_as_ctrl_c`. That handler puts back the SIGINT handler
    it replaced when (and only when) it receives a signal, so a marker handler installed
    before `fit` is in place again afterwards exactly when Tune was stopped.
    """
    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, *STOP_SIGNALS)}

    def marker(signum, frame):  # only reachable on a second stop signal, after Tune gave the handler back
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, marker)
    try:
        grid = tuner.fit()
        return grid, signal.getsignal(signal.SIGINT) is marker
    finally:
        for signum, handler in previous.items():  # Tune leaves its SIGUSR1 handler installed
            if handler is not None:
                signal.signal(signum, handler)


def _as_ctrl_c(signum, frame) -> None:
    """Handle a stop signal as whatever handles SIGINT at that moment: Ray Tune's handler while trials
    run (it saves the state and ends the sweep), else Python's KeyboardInterrupt."""
    handler = signal.getsignal(signal.SIGINT)
    if not callable(handler):  # SIGINT ignored or at the OS default: stop all the same
        raise KeyboardInterrupt
    handler(signal.SIGINT, frame)


def _handle_stop_signals() -> dict:
    """Route STOP_SIGNALS to `_as_ctrl_c` (main thread only); the handlers they had before.

    Called again once Ray is up: `ray.init` installs its own SIGTERM handler, which exits at once."""
    if threading.current_thread() is not threading.main_thread():  # only the main thread may set handlers
        return {}
    return {s: signal.signal(s, _as_ctrl_c) for s in STOP_SIGNALS}


@contextlib.contextmanager
def _stop_signals_as_ctrl_c() -> Iterator[None]:
    """SIGTERM and SIGUSR1 do what Ctrl-C does for the whole sweep; the handlers from before come back after."""
    previous = _handle_stop_signals()
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


@contextlib.contextmanager
def _locked(experiment_dir: Path) -> Iterator[None]:
    """Hold the experiment directory's lock, or refuse (a UserError) while another run holds it."""
    experiment_dir.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(experiment_dir / LOCK_FILE))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise UserError(f"{experiment_dir}: another `quads-search run` is writing into it ({LOCK_FILE} is locked); "
                        f"wait for it to end, or choose another --results-dir or --set name=...") from None
    try:
        yield
    finally:
        lock.release()


def _tuner(config: SweepConfig, experiment_dir: Path, recorder, resume: bool, seeded: list[Enqueued],
           scheduler: EarlyStopScheduler | None, num_classes: int) -> tune.Tuner:
    """A new Tune run into `experiment_dir` (`<results>/<name>`, Tune's layout), or the one there resumed."""
    fn = trainable(config, experiment_dir)
    if resume:
        return tune.Tuner.restore(str(experiment_dir), fn, resume_unfinished=True, resume_errored=False)
    run_config = tune.RunConfig(
        name=experiment_dir.name, storage_path=str(experiment_dir.parent), callbacks=[recorder], verbose=0,
        failure_config=tune.FailureConfig(max_failures=config.search.max_retries),
        checkpoint_config=tune.CheckpointConfig(num_to_keep=1))
    searcher = make_searcher(config, experiment_dir, enqueue=reference_trials(config) + seeded, num_classes=num_classes)
    tune_config = tune.TuneConfig(search_alg=searcher, num_samples=config.search.num_samples, reuse_actors=True,
                                  scheduler=scheduler)
    return tune.Tuner(fn, tune_config=tune_config, run_config=run_config)


def _check_experiment_dir(experiment_dir: Path, config: SweepConfig, resume: bool) -> None:
    """Refuse to overwrite a sweep, to resume nothing, or to resume with a different config."""
    has_state = any(experiment_dir.glob("experiment_state-*.json")) if experiment_dir.is_dir() else False
    if resume and not has_state:
        raise UserError(f"--resume: {experiment_dir} holds no sweep to resume")
    if not resume and has_state:
        raise UserError(f"{experiment_dir} already holds results: pass --resume to continue that sweep, "
                        f"or choose another --results-dir or --set name=...")
    rows = experiment_dir / "rows"
    earlier = [p.name for p in (rows, experiment_dir / TRIALS_FILE)
               if p.is_file() or (p.is_dir() and any(p.glob("*.json")))]
    if not resume and earlier:
        raise UserError(f"{experiment_dir} holds the trials of an earlier sweep ({' and '.join(earlier)}) but no "
                        f"Ray Tune state to resume them from; a new sweep would mix them into its {TRIALS_FILE}: "
                        f"remove them, or choose another --results-dir or --set name=...")
    saved = experiment_dir / "config.yaml"
    if resume and not saved.is_file():
        raise UserError(f"--resume: {saved} is missing, so the sweep's config cannot be checked; "
                        f"start a new sweep (another --results-dir or --set name=...)")
    if resume:
        before, now = yaml.safe_load(saved.read_text()), to_dict(config)
        changed = sorted(k for k in set(before) | set(now) if before.get(k) != now.get(k))
        if changed:
            raise UserError(f"--resume: the config differs from the interrupted sweep's ({saved}) in "
                            f"{', '.join(changed)}; resume with the same YAML, --set and --smoke")

"""The sweep: validated SweepConfig -> Optuna (through Ray Tune's OptunaSearch) -> trials -> results/.

Ray is imported in this package (`quads_search.sweep`) only, and only by its driver,
progress callback, searcher and trainable; `space` is Ray-free. The driver builds every shared
cache (corpus, features, pre-tuned teacher and student) before Ray starts, so trials only load,
and writes the reference accuracies (teacher, fp32 student) beside the results.
"""
from __future__ import annotations

import collections
import os
import signal
from dataclasses import dataclass
from pathlib import Path

import ray
import yaml
from ray import tune

from quads_search.cache import write_json
from quads_search.config import SweepConfig, to_dict
from quads_search.errors import UserError
from quads_search.results import REFERENCES_FILE, TrialTable
from quads_search.sweep.progress import TrialRecorder, reconcile, summary
from quads_search.sweep.scheduler import EarlyStopScheduler
from quads_search.sweep.searcher import make_searcher
from quads_search.sweep.seeding import warm_start_trials
from quads_search.sweep.space import Enqueued, reference_trials
from quads_search.sweep.trainable import quads_trial

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def dashboard_warning(host: str) -> str | None:
    """The warning owed when the dashboard listens beyond loopback, else None."""
    if host in LOOPBACK:
        return None
    return (f"WARNING: the Ray dashboard will listen on {host}: anyone who can reach it and holds the token "
            f"can run code on this machine through Ray's Jobs API")


def start_ray(address: str | None, log, dashboard_host: str = "127.0.0.1") -> None:
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
        log(f"joined the Ray cluster at {address}; its dashboard shows the trials")
        return
    from ray._private import ray_constants  # read once, when Ray is imported

    if ray_constants.ENABLE_RAY_CLUSTER:
        raise RuntimeError("a local sweep must keep Ray on 127.0.0.1: set RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 "
                           "in the environment before Ray is imported (the CLI does)")
    warning = dashboard_warning(dashboard_host)
    if warning:
        log(warning)
    context = ray.init(address="local", include_dashboard=True, dashboard_host=dashboard_host,
                       log_to_driver=False, configure_logging=False)
    url = context.dashboard_url or "(dashboard unavailable)"
    log(f"Ray dashboard: http://{url}  (sign in with the token from `ray get-auth-token`)")


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
              dashboard_host: str = "127.0.0.1", log=print) -> SweepOutcome:
    """Run (or resume) the sweep into `<results_dir>/<name>/`; KeyboardInterrupt if interrupted."""
    results_dir = results_dir.resolve()
    experiment_dir = results_dir / config.name
    _check_experiment_dir(experiment_dir, config, resume)
    experiment_dir.mkdir(parents=True, exist_ok=True)
    if not resume:
        (experiment_dir / "config.yaml").write_text(yaml.safe_dump(to_dict(config), sort_keys=False))
    from quads_search.core.run import prepare

    log("preparing shared data and pre-tuned models (cached after the first run)")
    prepared = prepare(config.run_config(), log)
    write_json(experiment_dir / REFERENCES_FILE, prepared.references)
    seeded = [] if resume else warm_start_trials(config, prepared, log)  # search.warm_start (#19)
    scheduler = EarlyStopScheduler(config.search.early_stop) if config.search.early_stop else None  # (#19)
    os.environ.setdefault("TUNE_GLOBAL_CHECKPOINT_S", "1")  # experiment state on disk within a second
    # Stage reports carry no objectives; the final one always does, and QuadsOptunaSearch fails
    # (rather than silently drops) any trial whose final report lacks one.
    os.environ["TUNE_DISABLE_STRICT_METRIC_CHECKING"] = "1"
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")  # stage checkpoints are small
    start_ray(address, log, dashboard_host)
    try:
        table = TrialTable(experiment_dir)
        recorder = TrialRecorder(table, config.name, config.search.objectives, config.search.num_samples, log,
                                 stop_reasons=scheduler.reasons if scheduler else None)
        tuner = _tuner(config, results_dir, experiment_dir, recorder, resume, seeded, scheduler)
        grid, interrupted = _fit(tuner)
        reconcile(grid, table, config.name)
    finally:
        ray.shutdown()
    rows = table.rows()
    if interrupted:
        log(f"interrupted after {len(rows)} of {config.search.num_samples} trials; the state is saved: "
            f"continue with the same command plus --resume")
        raise KeyboardInterrupt
    if len(rows) < config.search.num_samples:
        raise RuntimeError(f"Ray Tune returned after {len(rows)} of {config.search.num_samples} trials without "
                           f"an interrupt; see {experiment_dir} (continue with --resume)")
    summary(table, experiment_dir, log)
    failures = collections.Counter(str(r.get("error") or r["status"]).split(":")[0] for r in rows
                                   if r["status"] not in ("finished", "stopped"))
    stopped = sum(1 for r in rows if r["status"] == "stopped")
    return SweepOutcome(experiment_dir, len(rows) - sum(failures.values()) - stopped, dict(failures), stopped)


def _fit(tuner: tune.Tuner) -> tuple[tune.ResultGrid, bool]:
    """Run the tuner; (results, whether a SIGINT/SIGUSR1 stopped it).

    Ray Tune catches SIGINT itself and returns normally. Its handler puts back the handler it
    replaced when (and only when) it receives the signal, so a marker handler installed
    before `fit` is in place again afterwards exactly when Tune was interrupted.
    """
    previous = signal.getsignal(signal.SIGINT)

    def marker(signum, frame):  # only reachable on a second Ctrl-C, after Tune gave the handler back
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, marker)
    try:
        grid = tuner.fit()
        return grid, signal.getsignal(signal.SIGINT) is marker
    finally:
        signal.signal(signal.SIGINT, previous)


def _tuner(config: SweepConfig, results_dir: Path, experiment_dir: Path, recorder, resume: bool,
           seeded: list[Enqueued], scheduler: EarlyStopScheduler | None) -> tune.Tuner:
    fn = trainable(config, experiment_dir)
    if resume:
        return tune.Tuner.restore(str(experiment_dir), fn, resume_unfinished=True, resume_errored=False)
    run_config = tune.RunConfig(
        name=config.name, storage_path=str(results_dir), callbacks=[recorder], verbose=0,
        failure_config=tune.FailureConfig(max_failures=config.search.max_retries),
        checkpoint_config=tune.CheckpointConfig(num_to_keep=1))
    searcher = make_searcher(config, experiment_dir, enqueue=reference_trials(config) + seeded)
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

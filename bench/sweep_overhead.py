"""Ray Tune's cost per trial: the same trials in-process and through Ray, and where a trial's time goes.

Run from the repository root:
    python -m bench.sweep_overhead [--smoke] [--trials N] [--cache-dir DIR]   (CPU)

The shipped default space (`--smoke`: its smoke settings), caches built before any timing,
sampled by a seeded random sampler, no reference or seeded trials: the same N trials run
  (a) one after another in this process through `run_quads` (the data prepared once, as a
      worker keeps it; torch limited to `cpus_per_trial` threads, as Ray limits a trial), and
  (b) as a Ray Tune sweep with 1 trial at a time, then with 2 (Ray's start-up inside, as a
      user pays it; measured on its own too).
Per-trial overhead = (sweep - Ray start-up - in-process) / N, at one trial at a time; beside
it, Ray's time outside the trials' own reported time, (sweep - start-up - sum of trial time) / N.
The sweep's trial rows give each phase of a trial (shared data, build, stages, checkpoint,
finish). Prints one JSON object.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # before Ray is imported: loopback only

import optuna  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402

from bench.common import space_config  # noqa: E402
from quads_search.core.prepare import prepare
from quads_search.core.run import run_quads  # noqa: E402
from quads_search.sweep.driver import run_sweep  # noqa: E402
from quads_search.sweep.params import apply_params, distributions  # noqa: E402


def sampled_params(config, count: int) -> list[dict]:
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=config.search.seed))
    return [study.ask(distributions(config.space)).params for _ in range(count)]


def in_process(config, params: list[dict], out: Path) -> float:
    """The trials one after another here, with the threads a Ray trial gets (`cpus_per_trial`)."""
    prepared = prepare(config.run_config())
    threads = torch.get_num_threads()
    torch.set_num_threads(max(1, int(config.search.cpus_per_trial)))  # a float in the config (e.g. 0.5)
    try:
        start = time.perf_counter()
        for i, p in enumerate(params):
            run_quads(apply_params(config.run_config(), p), out / str(i), prepared=prepared)
        return time.perf_counter() - start
    finally:
        torch.set_num_threads(threads)


def with_ray(config, count: int, concurrent: int, out: Path) -> tuple[float, pd.DataFrame]:
    search = dataclasses.replace(config.search, sampler="random", num_samples=count, max_concurrent=concurrent,
                                 references=[], warm_start="none")  # exactly the sampled trials, nothing enqueued
    start = time.perf_counter()
    outcome = run_sweep(dataclasses.replace(config, search=search), out)
    return time.perf_counter() - start, pd.read_parquet(outcome.experiment_dir / "trials.parquet")


def ray_startup() -> float:
    import ray

    start = time.perf_counter()
    ray.init(address="local", include_dashboard=True, dashboard_host="127.0.0.1", log_to_driver=False,
             configure_logging=False)
    ray.shutdown()
    return time.perf_counter() - start


def phases(trials: pd.DataFrame) -> dict:
    """Median seconds of each phase of a trial, as the trials recorded them."""
    columns = sorted(c for c in trials.columns if c.startswith("time_"))
    out = {c.removeprefix("time_").removesuffix("_s"): round(float(trials[c].fillna(0).median()), 3) for c in columns}
    out["trial_wall"] = round(float(trials["wall_s"].median()), 3)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="the smoke settings instead of the default sweep's")
    parser.add_argument("--trials", type=int, default=6)
    parser.add_argument("--cache-dir", default="~/.cache/quads-search")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    config = space_config("mixed_precision", args.cache_dir, smoke=args.smoke)
    prepare(config.run_config())  # caches first: not part of any timing
    params = sampled_params(config, args.trials)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        startup = ray_startup()
        local = in_process(config, params, tmp / "local")
        one, rows_one = with_ray(config, args.trials, 1, tmp / "ray1")
        two, _ = with_ray(config, args.trials, 2, tmp / "ray2")
    per_trial = (one - startup - local) / args.trials
    outside = (one - startup - float(rows_one["time_total_s"].sum())) / args.trials  # Ray's own share
    print(json.dumps({
        "settings": "smoke" if args.smoke else "default", "trials": args.trials,
        "in_process_s": round(local, 1), "ray_startup_s": round(startup, 1), "ray_1_concurrent_s": round(one, 1),
        "ray_2_concurrent_s": round(two, 1), "ray_overhead_per_trial_s": round(per_trial, 2),
        "ray_time_outside_trials_per_trial_s": round(outside, 2),
        "ray_2_throughput_vs_in_process": round(local / two, 3),
        "ray_throughput_vs_in_process": round(local / (one - startup), 3),
        "ray_throughput_vs_in_process_startup_included": round(local / one, 3),
        "trial_phases_median_s": phases(rows_one),
        "in_process_per_trial_s": round(local / args.trials, 2)}, indent=1))


if __name__ == "__main__":
    main()

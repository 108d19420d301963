"""Ray Tune's overhead per trial and sweep throughput at 1 and 2 concurrent trials.

Run from the repository root:  python -m bench.sweep_overhead [--quick] [--cache-dir DIR]   (CPU)
The shipped space under --smoke (caches built on first use in --cache-dir, before timing),
sampled by a seeded random sampler: the same K trials run (a) one after another in this
process through `run_quads`, (b) as a Ray Tune sweep with 1 trial at a time, (c) with 2.
Ray's start-up is inside (b) and (c), as a user pays it. Prints one JSON object.
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

from bench.common import quiet, space_config  # noqa: E402
from quads_search.core.run import prepare, run_quads  # noqa: E402
from quads_search.sweep.driver import run_sweep  # noqa: E402
from quads_search.sweep.space import apply_params, distributions  # noqa: E402


def sampled_params(config, count: int) -> list[dict]:
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=config.search.seed))
    return [study.ask(distributions(config.space)).params for _ in range(count)]


def in_process(config, params: list[dict], out: Path) -> float:
    start = time.perf_counter()
    for i, p in enumerate(params):
        run_quads(apply_params(config.run_config(), p), out / str(i), log=quiet)
    return time.perf_counter() - start


def with_ray(config, count: int, concurrent: int, out: Path) -> float:
    search = dataclasses.replace(config.search, sampler="random", num_samples=count, max_concurrent=concurrent)
    start = time.perf_counter()
    run_sweep(dataclasses.replace(config, search=search), out, log=quiet)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="4 trials instead of 8")
    parser.add_argument("--cache-dir", default="~/.cache/quads-search")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    config = space_config("mixed_precision", args.cache_dir, smoke=True)
    prepare(config.run_config(), log=quiet)  # caches first: not part of any timing
    count = 4 if args.quick else 8
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        local = in_process(config, sampled_params(config, count), tmp / "local")
        one = with_ray(config, count, 1, tmp / "ray1")
        two = with_ray(config, count, 2, tmp / "ray2")
    print(json.dumps({
        "trials": count, "in_process_s": round(local, 1), "ray_1_concurrent_s": round(one, 1),
        "ray_2_concurrent_s": round(two, 1), "ray_overhead_per_trial_s": round((one - local) / count, 2),
        "trials_per_hour": {"in_process": round(3600 * count / local), "ray_1": round(3600 * count / one),
                            "ray_2": round(3600 * count / two)}}, indent=1))


if __name__ == "__main__":
    main()

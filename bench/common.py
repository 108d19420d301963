"""What the benches share: shipped spaces, per-seed statistics, and a process pool that loses nothing."""
from __future__ import annotations

import concurrent.futures
import json
import multiprocessing
import statistics
import sys
from pathlib import Path
from typing import Any, Callable

import torch
from tqdm import tqdm

from quads_search.config import SweepConfig
from quads_search.sweep.space import load_sweep

SPACES = Path(__file__).parents[1] / "search_spaces"


def space_config(name: str, cache_dir: str, smoke: bool, overrides: tuple[str, ...] = ()) -> SweepConfig:
    """A shipped space (`search_spaces/<name>.yaml`) with the bench's cache directory."""
    return load_sweep(SPACES / f"{name}.yaml", [f"cache_dir={cache_dir}", *overrides], smoke=smoke)


def mean_std(values: list[float]) -> dict:
    """Mean and sample std (None below two values: one seed has no spread to report)."""
    return {"mean": statistics.fmean(values), "std": statistics.stdev(values) if len(values) > 1 else None,
            "n": len(values)}


# Two-sided 95 % critical values of Student's t, t(0.975, df); past the table the next lower df
# is used, which widens the interval a little rather than narrowing it.
T975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228,
        11: 2.201, 12: 2.179, 13: 2.160, 14: 2.145, 15: 2.131, 16: 2.120, 17: 2.110, 18: 2.101, 19: 2.093,
        20: 2.086, 21: 2.080, 22: 2.074, 23: 2.069, 24: 2.064, 25: 2.060, 26: 2.056, 27: 2.052, 28: 2.048,
        29: 2.045, 30: 2.042, 40: 2.021, 60: 2.000, 120: 1.980}


def t_critical(df: int) -> float:
    """t(0.975, df): the half-width of a 95 % interval is this many standard errors."""
    if df < 1:
        raise ValueError(f"a t interval needs df >= 1, got {df=}")
    return T975[max(k for k in T975 if k <= df)]


def t_interval(values: list[float]) -> dict:
    """Mean, sample std, n, median, range and a 95 % Student's t interval of the mean (None for one value)."""
    out = {**mean_std(values), "median": statistics.median(values), "range": [min(values), max(values)]}
    if out["std"] is None:
        return {**out, "ci95": None}
    half = t_critical(len(values) - 1) * out["std"] / len(values) ** 0.5
    return {**out, "ci95": [out["mean"] - half, out["mean"] + half]}


def paired_t(a: list[float], b: list[float]) -> dict:
    """The t interval of the paired differences a - b (equal seeds pair), and how many are > 0."""
    if len(a) != len(b):
        raise ValueError(f"paired values need equal lengths, got {len(a)} and {len(b)}")
    diffs = [x - y for x, y in zip(a, b)]
    return {**t_interval(diffs), "wins": sum(d > 0 for d in diffs)}


def _one_thread() -> None:
    torch.set_num_threads(1)


def run_in_processes(calls: list[tuple[Callable, tuple]], workers: int, desc: str) -> list[Any]:
    """`function(*args)` for every call in `workers` spawned one-thread processes, with a progress
    bar; the results in the order of `calls`.

    On the first failure the calls not yet started are cancelled and every finished result is
    printed to stderr as JSON before the error propagates: a long bench loses nothing.
    """
    context = multiprocessing.get_context("spawn")
    results: dict[int, Any] = {}
    with concurrent.futures.ProcessPoolExecutor(workers, mp_context=context, initializer=_one_thread) as pool:
        futures = {pool.submit(function, *args): index for index, (function, args) in enumerate(calls)}
        try:
            for future in tqdm(concurrent.futures.as_completed(futures), total=len(futures), desc=desc,
                               file=sys.stderr):
                results[futures[future]] = future.result()
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            print(json.dumps({"finished_before_the_failure": list(results.values())}), file=sys.stderr)
            raise
    return [results[index] for index in range(len(calls))]

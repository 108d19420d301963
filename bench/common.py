"""What the benches share: quiet logging, per-seed statistics, and a process pool that loses nothing."""
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


def quiet(message: str) -> None:
    pass


def to_stderr(message: str) -> None:
    print(message, file=sys.stderr)


def mean_std(values: list[float]) -> dict:
    """Mean and sample std (None below two values: one seed has no spread to report)."""
    return {"mean": statistics.fmean(values), "std": statistics.stdev(values) if len(values) > 1 else None,
            "n": len(values)}


def mean_ci95(values: list[float]) -> dict:
    """Mean with a normal-approximation 95 % interval (1.96 standard errors)."""
    out = mean_std(values)
    half = 1.96 * out["std"] / len(values) ** 0.5 if out["std"] is not None else None
    return {**out, "ci95": None if half is None else [out["mean"] - half, out["mean"] + half]}


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

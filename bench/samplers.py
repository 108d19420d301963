"""Hypervolume against trials for NSGA-II, TPE and random sampling on the shipped mixed-precision space.

Run from the repository root:
    python -m bench.samplers [--quick] [--trials N] [--seeds N] [--workers N] [--cache-dir DIR] [--plot PNG]
                             [--reanalyse JSON]   (CPU)

The space and objectives of search_spaces/mixed_precision.yaml (validation accuracy up, size
down) under its smoke settings: small corpus, one distill/quantize cycle, a few seconds a
trial. Each (sampler, seed) study asks and tells one trial at a time, in-process: the sampler
alone is measured (a Ray sweep with concurrent trials gives it slightly older information).
Every trial trains with the same training seed, so a parameter set scores the same whichever
sampler proposed it. One hypervolume reference serves every study: 0 accuracy and 1.1 x the
largest size any trial reached. Prints one JSON object; `--plot` draws the curves.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import optuna
import pandas as pd

from bench.common import mean_std, run_in_processes, space_config
from quads_search.config import SweepConfig
from quads_search.core.prepare import prepare
from quads_search.core.run import run_quads
from quads_search.log import show_progress
from quads_search.pareto.front import hypervolume_2d, reference_point, to_costs
from quads_search.sweep.params import apply_params, distributions
from quads_search.sweep.samplers import make_sampler

SAMPLERS = ("nsga2", "tpe", "random")


def run_study(config: SweepConfig, sampler: str, seed: int, trials: int) -> dict:
    """`trials` QUADS runs proposed one at a time by the seeded `sampler`; their objective values."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    search = dataclasses.replace(config.search, sampler=sampler, seed=seed, num_samples=trials)
    objectives = search.objectives
    study = optuna.create_study(sampler=make_sampler(search),
                                directions=["maximize" if mode == "max" else "minimize" for mode in objectives.values()])
    space, base, rows = distributions(config.space), config.run_config(), []
    with tempfile.TemporaryDirectory() as tmp:
        for index in range(trials):
            trial = study.ask(space)
            metrics = run_quads(apply_params(base, trial.params), Path(tmp) / str(index))
            study.tell(trial, [metrics[name] for name in objectives])
            rows.append({name: metrics[name] for name in objectives})
    return {"sampler": sampler, "seed": seed, "trials": rows}


def hypervolume_curve(rows: list[dict], objectives: list[tuple[str, str]], reference: np.ndarray) -> list[float]:
    """Hypervolume of the first n trials, for n = 1 .. len(rows)."""
    costs = to_costs(pd.DataFrame(rows), objectives)
    return [hypervolume_2d(costs[:n], reference) for n in range(1, len(costs) + 1)]


def trials_to_reach(curve: list[float], target: float) -> int | None:
    """The first trial count whose hypervolume reaches `target` (None: never within the budget)."""
    return next((n for n, value in enumerate(curve, start=1) if value >= target), None)


def analyse(studies: list[dict], objectives: list[tuple[str, str]]) -> dict:
    """Per sampler: hypervolume curves over seeds, final hypervolume against random's (paired by
    seed), and trials to reach random's final mean (which random itself reaches on about half its
    seeds, by construction)."""
    reference = reference_point(pd.DataFrame([r for s in studies for r in s["trials"]]), objectives)
    curves = {(s["sampler"], s["seed"]): hypervolume_curve(s["trials"], objectives, reference) for s in studies}
    random_final = {seed: c[-1] for (sampler, seed), c in curves.items() if sampler == "random"}
    target = statistics.fmean(random_final.values())
    out = {"reference": reference.tolist(), "random_final_mean": target, "samplers": {}}
    for sampler in SAMPLERS:
        per_seed = {seed: c for (name, seed), c in curves.items() if name == sampler}
        by_step = [mean_std(list(values)) for values in zip(*per_seed.values())]
        out["samplers"][sampler] = {
            "mean": [step["mean"] for step in by_step], "std": [step["std"] for step in by_step],
            "final": by_step[-1],
            "final_minus_random": mean_std([c[-1] - random_final[seed] for seed, c in per_seed.items()]),
            "trials_to_reach_random_final": {str(seed): trials_to_reach(c, target) for seed, c in per_seed.items()}}
    return out


def plot(analysis: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for sampler, result in analysis["samplers"].items():
        mean, x = np.array(result["mean"]), np.arange(1, len(result["mean"]) + 1)
        ax.plot(x, mean, label=sampler)
        if result["std"][-1] is not None:  # one seed: no band
            std = np.array(result["std"])
            ax.fill_between(x, mean - std, mean + std, alpha=0.2)
    ax.axhline(analysis["random_final_mean"], color="grey", linestyle=":", label="random, final (mean)")
    ax.set_xlabel("trials")
    ax.set_ylabel("hypervolume (valid accuracy x MiB)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def measure(args: argparse.Namespace, config: SweepConfig) -> tuple[dict, list[dict]]:
    """Run every (sampler, seed) study; the settings and the studies."""
    trials = args.trials or (8 if args.quick else 24)
    start = time.perf_counter()
    prepare(config.run_config())  # caches before the workers
    calls = [(run_study, (config, sampler, seed, trials)) for seed in range(args.seeds) for sampler in SAMPLERS]
    studies = run_in_processes(calls, args.workers, "studies")
    settings = {"trials": trials, "seeds": args.seeds, "workers": args.workers,
                "objectives": config.search.objectives, "wall_clock_s": round(time.perf_counter() - start, 1)}
    return settings, sorted(studies, key=lambda s: (s["sampler"], s["seed"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="8 trials per study instead of 24 (under 5 min)")
    parser.add_argument("--trials", type=int, help="trials per study")
    parser.add_argument("--seeds", type=int, default=3, help="sampler seeds per sampler")
    parser.add_argument("--workers", type=int, default=2, help="studies at once, one thread each")
    parser.add_argument("--cache-dir", default="~/.cache/quads-search")
    parser.add_argument("--plot", type=Path, help="write the hypervolume curves to this PNG")
    parser.add_argument("--reanalyse", type=Path, metavar="JSON",
                        help="run nothing: redo the analysis of the studies in an earlier output of this bench")
    args = parser.parse_args()
    show_progress("stderr")
    config = space_config("mixed_precision", args.cache_dir, smoke=True)
    objectives = list(config.search.objectives.items())
    if len(objectives) != 2:
        sys.exit("mixed_precision.yaml: search.objectives: this bench measures 2-objective hypervolume, got {len(objectives)}")
    if args.reanalyse:
        earlier = json.loads(args.reanalyse.read_text())
        settings, studies = earlier["settings"], earlier["studies"]
    else:
        settings, studies = measure(args, config)
    analysis = analyse(studies, objectives)
    if args.plot:
        plot(analysis, args.plot)
    print(json.dumps({"settings": settings, **analysis, "studies": studies}, indent=1))


if __name__ == "__main__":
    main()

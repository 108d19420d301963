"""The best model at <= B: what searching buys at a fixed size budget, against fixed allocations.

Run from the repository root:
    python -m bench.budget_search [--quick] [--trials N] [--seeds N] [--seeded N] [--bits 1.5 2 3] [--workers N]
                                  [--cache-dir DIR] [--reanalyse JSON...] [--wallclock JSON]   (CPU)

The shipped default space (search_spaces/mixed_precision.yaml) under its smoke settings (small
corpus, one distill + one quantize epoch, batch 16: seconds a trial), in-process: Optuna
ask/tell, no Ray, every trial trained with the same training seed, so a parameter set scores the
same whichever method proposed it. Budgets: `size_mb <= B(b)` for b average bits (default 1.5, 2
and 3), B(b) = the packed size of the default student with every quantizable weight at b bits
(interpolated between the neighbouring integer widths for a fractional b). At every budget each
method gets the same number of trials and each sampler seed its own study:
  uniform     the widest uniform width that fits (1, 2, 3 bits), every tensor at it
  knapsack    the sensitivity allocation alone: the least-Ω allocation of the space's widths that
              fits B (`core.allocation.exact`, the warm start's solver)
              (both: trial 1 at the base config's α and γ, the rest with α, γ drawn at random:
              the allocation is fixed, the trial count is the same)
  random      random search over the whole space under the hard budget (`search.budget`)
  tpe         the space's TPE under the hard budget
  tpe+seeded  the same, after `search.seeds` sensitivity allocations spread up to B
              (`search.warm_start: sensitivity` under a budget)
  nsga2, gp   NSGA-II and Optuna's GPSampler (constrained multi-objective) under the hard budget
A draw over budget is never trained (`sweep.budget.ask_within_budget`, as in a sweep). Trials that
are the same in every seed (uniform's and knapsack's first, the seeded ones) are trained once and
replayed. Reported per budget and method over the seeds: the best validation accuracy found
(mean, 95 % t interval), the test accuracy of the trial chosen on validation (test is read only
after the choice), paired differences against the knapsack, rejected draws, and the
hypervolume over log size (validation accuracy against log MiB, reference 0 and 1.1 x the fp32
student: small models weigh as much as large ones per factor of size). `--wallclock` adds that
log-size hypervolume for the studies of a `bench.search_wallclock` output. Prints one JSON object,
and a markdown table to stderr.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import optuna

from bench.common import mean_std, paired_t, run_in_processes, space_config, t_interval
from quads_search.config import SweepConfig
from quads_search.config.schema import BudgetConfig
from quads_search.core.allocation import exact
from quads_search.core.epochs import is_training_fault
from quads_search.core.prepare import Prepared, prepare
from quads_search.core.run import run_quads
from quads_search.log import show_progress
from quads_search.pareto.front import hypervolume_2d
from quads_search.quant.bits import VALID_BITS
from quads_search.quant.size import MIB
from quads_search.results import TrialStatus
from quads_search.core.planned import planned_costs, uniform_size_mb
from quads_search.sweep.budget import BudgetCheck, ask_within_budget, trial_params
from quads_search.sweep.seeding import make_plan, seeded_trials
from quads_search.sweep.params import REFERENCE_BITS_KEY, apply_params, distributions
from quads_search.sweep.references import space_values
from quads_search.sweep.samplers import make_sampler

FIXED = ("uniform", "knapsack")
SAMPLED = ("random", "tpe", "tpe+seeded", "nsga2", "gp")
METHODS = FIXED + SAMPLED
_PREPARED: dict[str, Prepared] = {}  # this worker process's prepared data (one config per bench)


@dataclasses.dataclass(frozen=True)
class Budget:
    """One budget: b average bits, its size bound, and the fixed allocations and seeds that fit it."""

    bits: float
    size_mb: float
    uniform: int  # the widest uniform width within size_mb
    knapsack: dict  # bits.* -> width
    seeded: tuple[dict, ...]  # the seeded trials' params (tpe+seeded)


@dataclasses.dataclass(frozen=True)
class Study:
    method: str
    seed: int
    trials: int
    budget: Budget


def _prepared(config: SweepConfig) -> Prepared:
    if "p" not in _PREPARED:
        _PREPARED["p"] = prepare(config.run_config())
    return _PREPARED["p"]


def key(params: dict) -> str:
    """A trial's identity: its parameters (training is seeded alike, so equal params score alike)."""
    return json.dumps(params, sort_keys=True, default=str)


def train(config: SweepConfig, params: dict) -> dict:
    """One QUADS run of `params`; its row (test accuracy kept for after the choice)."""
    start = time.perf_counter()
    run_config = apply_params(config.run_config(), params)
    with tempfile.TemporaryDirectory() as tmp:
        try:
            metrics = run_quads(run_config, Path(tmp), prepared=_prepared(config))
        except Exception as exc:  # classified as the sweep classifies it; a bug is raised
            if not is_training_fault(exc):
                raise
            return {"params": params, "status": TrialStatus.FAILED, "wall_s": round(time.perf_counter() - start, 2)}
    return {"params": params, "status": TrialStatus.FINISHED, "valid_accuracy": metrics["valid_accuracy"],
            "test_accuracy": metrics["accuracy"], "size_mb": metrics["size_mb"], "bits_avg": metrics["bits_avg"],
            "wall_s": round(time.perf_counter() - start, 2)}


def fixed_params(config: SweepConfig, budget: Budget, method: str) -> dict:
    """The fixed allocation of `uniform` or `knapsack` at the base config's other values."""
    if method == "uniform":
        params, _ = space_values(config, {})
        return {**{n: v for n, v in params.items() if not n.startswith("bits.")}, REFERENCE_BITS_KEY: budget.uniform}
    params, _ = space_values(config, budget.knapsack)
    return params


def run_study(config: SweepConfig, spec: Study, memo: dict[str, dict]) -> dict:
    """`spec.trials` trials of one method at one budget and seed, asked and told one at a time."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.simplefilter("ignore")  # GPSampler's experimental-feature warnings
    budget, base = spec.budget, config.run_config()
    space = distributions(config.space)
    check = BudgetCheck(BudgetConfig(size_mb=budget.size_mb), base, len(_prepared(config).data.intents))
    if spec.method in FIXED:  # the allocation fixed; the other parameters: the base values first, then random
        fixed = fixed_params(config, budget, spec.method)
        space = {n: d for n, d in space.items() if not n.startswith("bits.")}
        sampler = optuna.samplers.RandomSampler(seed=spec.seed)
    else:
        search = dataclasses.replace(config.search, sampler=spec.method.split("+")[0], seed=spec.seed,
                                     num_samples=spec.trials)
        sampler = make_sampler(search)
    study = optuna.create_study(sampler=sampler, directions=["maximize", "minimize"])
    if spec.method in FIXED:
        study.enqueue_trial({n: v for n, v in fixed.items() if n in space})
    for params in budget.seeded if spec.method == "tpe+seeded" else ():
        study.enqueue_trial(params, user_attrs={"kind": "seeded"})
    rows = []
    for _ in range(spec.trials):
        if spec.method in FIXED:
            trial, rejected, random_redraws = study.ask(space), 0, False
            params = {**{n: v for n, v in fixed.items() if n not in space}, **trial.params}
        else:
            draw = ask_within_budget(study, space, check)
            trial, rejected, random_redraws = draw.trial, draw.rejected, draw.random_redraws
            params = trial_params(trial)
        row = memo.get(key(params)) or train(config, params)
        row = {**row, "replayed": key(params) in memo, "kind": trial.user_attrs.get("kind", "searched"),
               "rejected": rejected, "random_redraws": random_redraws}
        if row["status"] == "finished":
            study.tell(trial, [row["valid_accuracy"], row["size_mb"]])
        else:
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
        rows.append(row)
    return {"method": spec.method, "seed": spec.seed, "bits": budget.bits, "trials": rows}


# -- budgets ---------------------------------------------------------------------------------------
def budget_size(config: SweepConfig, bits: float, classes: int) -> float:
    """What every quantizable weight at `bits` weighs (linear between the neighbouring integer widths)."""
    run, low, high = config.run_config(), math.floor(bits), math.ceil(bits)
    if low == high:
        return uniform_size_mb(run, low, classes)
    share = bits - low
    return (1 - share) * uniform_size_mb(run, low, classes) + share * uniform_size_mb(run, high, classes)


def make_budgets(config: SweepConfig, prepared: Prepared, bits: list[float], seeds: int) -> list[Budget]:
    """Each budget with its uniform width, knapsack allocation and (seeds) seeded allocations."""
    classes, run, out = len(prepared.data.intents), config.run_config(), []
    for b in bits:
        size = budget_size(config, b, classes)
        uniform = max(w for w in VALID_BITS if w <= 8 and uniform_size_mb(run, w, classes) <= size)
        plan = make_plan(config, prepared, seeds, max_bytes=int(size * MIB))
        knapsack = exact(plan.options, int(size * MIB) - plan.fixed)
        if knapsack is None:
            raise SystemExit(f"no allocation of the space fits {b} bits ({size:.4f} MiB)")
        seeded = tuple(item.params for item in seeded_trials(config, plan))
        for params in (knapsack.bits, *seeded):  # the solver counts bytes as the run will
            planned = planned_costs(apply_params(config.run_config(), params), classes)["size_mb"]
            assert planned <= size, (b, params, planned, size)
        out.append(Budget(b, size, uniform, knapsack.bits, seeded))
    return out


# -- analysis --------------------------------------------------------------------------------------
def chosen(rows: list[dict]) -> dict | None:
    """The finished trial best on validation (ties: the smaller, then the earlier)."""
    done = [r for r in rows if r["status"] == "finished"]
    return min(done, key=lambda r: (-r["valid_accuracy"], r["size_mb"])) if done else None


def log_hypervolume(rows: list[dict], reference_mb: float) -> float:
    """Hypervolume of validation accuracy (max) against log MiB (min), reference (0, log reference_mb)."""
    done = [r for r in rows if r["status"] == "finished"]
    costs = np.array([[math.log(r["size_mb"]), -r["valid_accuracy"]] for r in done]).reshape(-1, 2)
    return hypervolume_2d(costs, np.array([math.log(reference_mb), 0.0]))


def _interval(values: list[float]) -> dict:
    return t_interval(values) if values else {}


def analyse(studies: list[dict], budgets: list[dict], reference_mb: float) -> dict:
    """Per budget and method: best validation, test of the choice, log-size hypervolume, rejections;
    paired (by seed) against the knapsack allocation."""
    out = {}
    for budget in budgets:
        b, per = budget["bits"], {}
        by_seed = {m: {s["seed"]: s for s in studies if s["bits"] == b and s["method"] == m} for m in METHODS}
        for method, seeds in by_seed.items():
            if not seeds:
                continue
            picks = {seed: chosen(s["trials"]) for seed, s in seeds.items()}
            per[method] = {
                "best_valid": _interval([p["valid_accuracy"] for p in picks.values() if p]),
                "chosen_test": _interval([p["test_accuracy"] for p in picks.values() if p]),
                "chosen_size_mb": _interval([p["size_mb"] for p in picks.values() if p]),
                "log_hypervolume": _interval([log_hypervolume(s["trials"], reference_mb) for s in seeds.values()]),
                "rejected_draws": mean_std([sum(r["rejected"] for r in s["trials"]) for s in seeds.values()]),
                "random_redraws": mean_std([sum(r["random_redraws"] for r in s["trials"]) for s in seeds.values()]),
                "over_budget_trained": sum(r["status"] == "finished" and r["size_mb"] > budget["size_mb"]
                                           for s in seeds.values() for r in s["trials"])}
            knapsack = by_seed["knapsack"]
            common = sorted(set(seeds) & set(knapsack))
            if method != "knapsack" and len(common) > 1:
                mine = [chosen(seeds[s]["trials"]) for s in common]
                theirs = [chosen(knapsack[s]["trials"]) for s in common]
                per[method]["minus_knapsack_valid"] = paired_t([m["valid_accuracy"] for m in mine],
                                                               [t["valid_accuracy"] for t in theirs])
                per[method]["minus_knapsack_test"] = paired_t([m["test_accuracy"] for m in mine],
                                                              [t["test_accuracy"] for t in theirs])
        out[str(b)] = per
    return out


def wallclock_log_hypervolume(path: Path) -> dict:
    """A `bench.search_wallclock` output on the log-size hypervolume: per search, the final value and
    what its reference trials alone hold."""
    earlier = json.loads(path.read_text())
    reference_mb = earlier["settings"]["reference_point"][1]
    out = {}
    for search in sorted({s["search"] for s in earlier["studies"]}):
        studies = [s for s in earlier["studies"] if s["search"] == search]
        finals = [log_hypervolume(s["trials"], reference_mb) for s in studies]
        references = [log_hypervolume([r for r in s["trials"] if r["kind"] == "reference"], reference_mb)
                      for s in studies]
        out[search] = {"final": mean_std(finals), "references_alone": mean_std(references)}
    return {"source": str(path), "reference_mb": reference_mb, "searches": out}


def markdown(result: dict) -> str:
    """The table of docs/search.md."""
    lines = ["| budget | method | best valid (mean [95 % CI]) | test of the choice | - knapsack, valid (wins) "
             "| log-size HV | rejected draws |", "|---|---|---|---|---|---|---|"]

    def cell(stats: dict) -> str:
        if not stats:
            return "-"
        ci = stats.get("ci95")
        return f"{stats['mean']:.3f}" + (f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "")

    for budget in result["budgets"]:
        per = result["analysis"][str(budget["bits"])]
        for method, stats in per.items():
            diff = stats.get("minus_knapsack_valid")
            diff_text = f"{cell(diff)} ({diff['wins']}/{diff['n']})" if diff else "-"
            rejected = stats["rejected_draws"]["mean"]
            lines.append(f"| {budget['bits']} bits ({budget['size_mb']:.4f} MiB) | {method} | {cell(stats['best_valid'])} "
                         f"| {cell(stats['chosen_test'])} | {diff_text} | {cell(stats['log_hypervolume'])} "
                         f"| {rejected:.0f}" + (f" ({stats['random_redraws']['mean']:.0f} random)"
                                               if stats["random_redraws"]["mean"] else "") + " |")
    return "\n".join(lines)


def merge(outputs: list[dict]) -> tuple[dict, list[dict], list[dict], float]:
    """Outputs of this bench run one budget at a time, as one: same settings and reference, distinct budgets."""
    first = outputs[0]
    same = ("trials", "seeds", "seeded_allocations", "methods", "space")
    for other in outputs[1:]:
        if other["reference_mb"] != first["reference_mb"] or any(
                other["settings"][k] != first["settings"][k] for k in same):
            raise SystemExit("--reanalyse: the outputs differ in their settings or reference size; they cannot merge")
    budgets = [b for out in outputs for b in out["budgets"]]
    if len({b["bits"] for b in budgets}) < len(budgets):
        raise SystemExit("--reanalyse: two outputs hold the same budget")
    settings = {**first["settings"], "pieces": len(outputs),
                "wall_clock_s": round(sum(out["settings"]["wall_clock_s"] for out in outputs), 1),
                "fixed_trials": sum(out["settings"]["fixed_trials"] for out in outputs)}
    studies = [study for out in outputs for study in out["studies"]]
    return settings, studies, sorted(budgets, key=lambda b: b["bits"]), first["reference_mb"]


# -- measuring -------------------------------------------------------------------------------------
def measure(args: argparse.Namespace, config: SweepConfig) -> tuple[dict, list[dict], list[Budget], float]:
    start = time.perf_counter()
    prepared = prepare(config.run_config())  # caches before the workers
    budgets = make_budgets(config, prepared, args.bits, args.seeded)
    methods = [m for m in METHODS if m != "gp" or hasattr(optuna.samplers, "GPSampler")]
    fixed = {key(p): p for budget in budgets
             for p in [fixed_params(config, budget, "uniform"), fixed_params(config, budget, "knapsack"),
                       *budget.seeded]}
    rows = run_in_processes([(train, (config, p)) for p in fixed.values()], args.workers, "fixed trials")
    memo = {key(row["params"]): row for row in rows}
    specs = [Study(method, seed, args.trials, budget) for seed in range(args.seeds) for budget in budgets
             for method in methods]
    studies = run_in_processes([(run_study, (config, spec, memo)) for spec in specs], args.workers, "studies")
    settings = {"quick": args.quick, "trials": args.trials, "seeds": args.seeds, "seeded_allocations": args.seeded,
                "workers": args.workers, "threads_per_study": 1, "methods": methods,
                "space": "mixed_precision (smoke settings)", "fixed_trials": len(fixed),
                "wall_clock_s": round(time.perf_counter() - start, 1)}
    return settings, studies, budgets, 1.1 * prepared.references["student_fp32_size_mb"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="4 trials, one seed, 2 seeded allocations")
    parser.add_argument("--trials", type=int, help="trials per study (default 12; 4 with --quick)")
    parser.add_argument("--seeds", type=int, help="sampler seeds (default 3; 1 with --quick)")
    parser.add_argument("--seeded", type=int, help="tpe+seeded's allocations (default: the space's search.seeds; 2 "
                                                    "with --quick)")
    parser.add_argument("--bits", type=float, nargs="+", default=[1.5, 2.0, 3.0], help="budgets, in average bits")
    parser.add_argument("--workers", type=int, default=2, help="studies at once, one thread each")
    parser.add_argument("--cache-dir", default="~/.cache/quads-search")
    parser.add_argument("--reanalyse", type=Path, nargs="+", metavar="JSON", help="run nothing: redo the analysis "
                        "of earlier outputs of this bench (several: runs of distinct --bits, merged)")
    parser.add_argument("--wallclock", type=Path, metavar="JSON", help="also: the log-size hypervolume of a "
                                                                       "bench.search_wallclock output")
    args = parser.parse_args()
    show_progress("stderr")
    if args.reanalyse:
        settings, studies, budgets, reference_mb = merge([json.loads(p.read_text()) for p in args.reanalyse])
    else:
        config = space_config("mixed_precision", args.cache_dir, smoke=True)
        args.trials = args.trials or (4 if args.quick else 12)
        args.seeds = args.seeds or (1 if args.quick else 3)
        args.seeded = args.seeded or (2 if args.quick else config.search.seeds)
        settings, studies, budget_list, reference_mb = measure(args, config)
        budgets = [dataclasses.asdict(b) for b in budget_list]
    result = {"settings": settings, "reference_mb": reference_mb, "budgets": budgets,
              "analysis": analyse(studies, budgets, reference_mb)}
    if args.wallclock:
        result["wallclock_log_hypervolume"] = wallclock_log_hypervolume(args.wallclock)
    print(markdown(result), file=sys.stderr)
    print(json.dumps({**result, "studies": studies}, indent=1))


if __name__ == "__main__":
    main()

"""Hypervolume against wall-clock for plain TPE, TPE seeded by sensitivity, TPE with early stopping, and both.

Run from the repository root:
    python -m bench.search_wallclock [--quick] [--trials N] [--seeds N] [--budgets N] [--after-stage K]
                                     [--margin M] [--grace G] [--workers N] [--cache-dir DIR] [--plot PNG]
                                     [--reanalyse JSON]   (CPU)

The shipped default space (search_spaces/mixed_precision.yaml, `--quick`: its smoke settings)
with its trial budget; every study asks and tells Optuna in-process, one trial at a time, the
same reference trials first, data prepared once per worker: the search is measured, not Ray.
The reference trials are the same in every study, so they are trained once (as many at a time
as studies) and each study replays them: their rows, their stage scores for the early-stop
rule and their measured wall-clock and CPU seconds, charged to the study's clocks.
  tpe                 the space's TPE sampler
  tpe+seeded          the sensitivity-budgeted allocations (`search.warm_start: sensitivity`)
                      enqueued after the references; the clock starts at the sensitivity's cost
  tpe+early-stop      stages run one by one; after stage K the `search.early_stop` rule may stop
                      the trial (told to Optuna as PRUNED, no point on the front)
  tpe+seeded+early-stop
Hypervolume: validation accuracy (max) against packed MiB (min), one fixed reference point
for every study (0 accuracy, 1.1 x the fp32 student's size). Reported per search: the
wall-clock at which it first reaches plain TPE's final hypervolume of the same seed (median
over seeds), its final hypervolume and wall-clock, and the same on CPU seconds (robust to other
processes on a shared machine). Beside them: the Spearman rank correlation
between the groups' sensitivity at 2 bits and the validation-accuracy drop of quantizing each
group alone to 2 bits (PTQ of the pre-tuned student). Prints one JSON object.
"""
from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import torch

from bench.common import mean_std, run_in_processes, space_config
from quads_search.config import SweepConfig
from quads_search.config.schema import EarlyStopConfig
from quads_search.core.epochs import evaluate, is_training_fault
from quads_search.core.planned import planned_size_mb
from quads_search.core.prepare import Prepared, prepare
from quads_search.core.run import QuadsRun
from quads_search.core.schedule import resolve_schedule
from quads_search.core.sensitivity import measure, quantized
from quads_search.log import show_progress
from quads_search.pareto.front import hypervolume_2d
from quads_search.results import TrialStatus
from quads_search.sweep.seeding import Plan, make_plan, seeded_trials
from quads_search.sweep.params import REFERENCE_BITS_KEY, apply_params, distributions
from quads_search.sweep.references import Enqueued, reference_trials
from quads_search.sweep.samplers import make_sampler
from quads_search.sweep.stopping import StageScore, dominating_witness

SEARCHES = ("tpe", "tpe+seeded", "tpe+early-stop", "tpe+seeded+early-stop")
OBJECTIVES = [("valid_accuracy", "max"), ("size_mb", "min")]


@dataclasses.dataclass(frozen=True)
class Study:
    """One search: which sampler seed, what it enqueues after the references, whether it stops early."""

    search: str
    seed: int
    trials: int
    seeded: tuple[Enqueued, ...]
    start_s: float  # the clock at the first trial: the sensitivity's cost for seeded searches
    start_cpu_s: float  # the same in CPU seconds of this process
    rule: EarlyStopConfig | None
    references: tuple[dict, ...]  # the reference trials, measured once (`measure_reference`), in order


def run_study(config: SweepConfig, study_spec: Study) -> dict:
    """The study's trials, asked and told one at a time; each with its end time on the study's clock."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    search = dataclasses.replace(config.search, sampler="tpe", seed=study_spec.seed, num_samples=study_spec.trials)
    study = optuna.create_study(sampler=make_sampler(search), directions=["maximize", "minimize"])
    for item in [*reference_trials(config), *study_spec.seeded]:
        study.enqueue_trial(item.params, user_attrs=item.attrs)
    prepared = prepare(config.run_config())
    space, scores, rows = distributions(config.space), [], []
    start, cpu = time.perf_counter() - study_spec.start_s, time.process_time() - study_spec.start_cpu_s
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(study_spec.trials):
            trial = study.ask(space)
            if trial.user_attrs.get("kind") == "reference":  # enqueued first: numbers 0..n-1
                row, wall_s, cpu_s = replay(study_spec.references[trial.number], trial.number, study_spec.rule,
                                            scores)
                start, cpu = start - wall_s, cpu - cpu_s  # charged to this study's clocks as if run here
            else:
                row = run_trial(config, prepared, trial.number, trial.user_attrs.get("kind", "searched"),
                                trial_params(trial.params, trial.user_attrs), study_spec.rule, scores,
                                Path(tmp) / str(trial.number))
            expressible = trial.user_attrs.get("expressible", True)
            if row["status"] == "finished" and expressible:
                study.tell(trial, [row["valid_accuracy"], row["size_mb"]])
            else:  # stopped: PRUNED; failed or not what the space can express: FAIL (as the sweep's searcher)
                state = optuna.trial.TrialState.PRUNED if row["status"] == "stopped" else optuna.trial.TrialState.FAIL
                study.tell(trial, state=state)
            rows.append({**row, "end_s": round(time.perf_counter() - start, 2),
                         "end_cpu_s": round(time.process_time() - cpu, 2)})
    return {"search": study_spec.search, "seed": study_spec.seed, "start_s": study_spec.start_s, "trials": rows}


def trial_params(params: dict, attrs: dict) -> dict:
    """A trial's parameters as `apply_params` takes them: a reference's uniform width rides in its user attrs."""
    return {**params, **{k: v for k, v in attrs.items() if k == REFERENCE_BITS_KEY}}


def run_trial(config: SweepConfig, prepared: Prepared, number: int, kind: str, params: dict,
              rule: EarlyStopConfig | None, scores: list[StageScore], out: Path) -> dict:
    """One QUADS run, stage by stage, its validation accuracy after each stage in `stage_valid`; after
    stage K the early-stop rule against the earlier trials' scores (a reference reports but is never stopped)."""
    run_config = apply_params(config.run_config(), params)
    planned = planned_size_mb(run_config, len(prepared.data.intents))
    row = {"number": number, "kind": kind, "valid_accuracy": None, "size_mb": None, "planned_size_mb": planned,
           "stage_valid": []}
    try:
        run = QuadsRun(run_config, prepared)
        for index in range(len(run.stages)):
            row["stage_valid"].append(run.run_stage(index)["valid_accuracy"])
            if rule is not None and index + 1 == rule.after_stage:
                mine = StageScore(str(number), planned, row["stage_valid"][-1])
                witness = dominating_witness(mine, scores, rule) if kind != "reference" else None
                scores.append(mine)
                if witness is not None:
                    return {**row, "status": TrialStatus.STOPPED, "stopped_after_stage": index + 1}
        metrics = run.finish(out)
    except Exception as exc:  # classified as the sweep classifies it; a bug is raised
        if not is_training_fault(exc):
            raise
        return {**row, "status": TrialStatus.FAILED}
    return {**row, "status": TrialStatus.FINISHED, "valid_accuracy": metrics["valid_accuracy"], "size_mb": metrics["size_mb"]}


def measure_reference(config: SweepConfig, item: Enqueued) -> dict:
    """A reference trial run once: its row (with its stage scores) and its wall-clock and CPU seconds,
    which every study replays."""
    prepared = prepare(config.run_config())
    start, cpu = time.perf_counter(), time.process_time()
    with tempfile.TemporaryDirectory() as tmp:
        row = run_trial(config, prepared, 0, "reference", trial_params(item.params, item.attrs), None, [], Path(tmp))
    return {"row": row, "wall_s": time.perf_counter() - start, "cpu_s": time.process_time() - cpu}


def replay(reference: dict, number: int, rule: EarlyStopConfig | None,
           scores: list[StageScore]) -> tuple[dict, float, float]:
    """A measured reference trial as this study's trial `number`: its row and its (wall, CPU) seconds.
    Its stage-K score joins the early-stop rule's history as a run would add it (references are never stopped)."""
    row = {**reference["row"], "number": number}
    if rule is not None and len(row["stage_valid"]) >= rule.after_stage:
        scores.append(StageScore(str(number), row["planned_size_mb"], row["stage_valid"][rule.after_stage - 1]))
    return row, reference["wall_s"], reference["cpu_s"]


# -- sensitivity against measured damage --------------------------------------------------------
def ptq_drops(config: SweepConfig, prepared: Prepared, plan: Plan, bits: int = 2) -> list[dict]:
    """Per group: Ω at `bits` and the validation-accuracy drop of quantizing that group alone to `bits` (PTQ)."""
    data, batch = prepared.data, config.training.eval_batch_size
    baseline = evaluate(prepared.student, data.valid, batch, prepared.device, len(data.intents))["accuracy"]
    out = []
    for group in plan.groups:
        model = copy.deepcopy(prepared.student)
        weights = dict(model.named_parameters())
        with torch.no_grad():
            for name in group.tensors:
                weights[name].copy_(quantized(weights[name], bits, config.quantization))
        accuracy = evaluate(model, data.valid, batch, prepared.device, len(data.intents))["accuracy"]
        out.append({"group": group.name, "omega": sum(plan.sensitivity.tensors[t].omega(bits) for t in group.tensors),
                    "valid_drop": baseline - accuracy})
    return out


def spearman(a: list[float], b: list[float]) -> float | None:
    """Rank correlation (average ranks for ties); None below three pairs or for a constant side."""
    ra, rb = pd.Series(a).rank(), pd.Series(b).rank()
    if len(a) < 3 or ra.nunique() < 2 or rb.nunique() < 2:
        return None
    return float(ra.corr(rb))


# -- analysis ------------------------------------------------------------------------------------
def hypervolume_curve(rows: list[dict], reference: np.ndarray, clock: str = "end_s") -> list[tuple[float, float]]:
    """(time on `clock`, hypervolume of the trials finished by then) after every trial."""
    curve, done = [], []
    for row in rows:
        if row["status"] == "finished":
            done.append([-row["valid_accuracy"], row["size_mb"]])
        curve.append((row[clock], hypervolume_2d(np.array(done).reshape(-1, 2), reference)))
    return curve


def time_to_reach(curve: list[tuple[float, float]], target: float) -> float | None:
    """The first time the hypervolume reaches `target` (None: not within the trial budget)."""
    return next((t for t, value in curve if value >= target * (1 - 1e-12)), None)


def median_or_none(values: list[float | None]) -> float | None:
    """Median with never-reached counted as infinitely late (None if that is the median)."""
    ordered = sorted(float("inf") if v is None else v for v in values)
    middle = statistics.median(ordered) if ordered else float("inf")
    return None if middle == float("inf") else middle


def analyse(studies: list[dict], reference: list[float]) -> dict:
    """Per search: time to plain TPE's final hypervolume (paired by seed), final hypervolume, wall-clock, stops.

    The same on the studies' CPU clocks beside it: on a shared machine other processes stretch
    wall-clock, not CPU time, so a difference that holds on both is the search's.
    """
    point = np.array([-reference[0], reference[1]])  # accuracy is negated: both objectives minimised
    curves = {(s["search"], s["seed"], clock): hypervolume_curve(s["trials"], point, clock)
              for s in studies for clock in ("end_s", "end_cpu_s")}
    target = {seed: curve[-1][1] for (search, seed, _), curve in curves.items() if search == "tpe"}
    out = {}
    for search in SEARCHES:
        rows = [s["trials"] for s in studies if s["search"] == search and s["seed"] in target]
        if not rows:
            continue
        out[search] = {"final_hypervolume": mean_std([curves[search, seed, "end_s"][-1][1] for seed in target]),
                       "stopped_trials": mean_std([sum(r["status"] == "stopped" for r in t) for t in rows])}
        for clock, name in (("end_s", "wall"), ("end_cpu_s", "cpu")):
            mine = {seed: curves[search, seed, clock] for seed in target}
            reach = {str(seed): time_to_reach(c, target[seed]) for seed, c in mine.items()}
            out[search].update({f"{name}_s_to_tpe_final": reach,
                                f"median_{name}_s_to_tpe_final": median_or_none(list(reach.values())),
                                f"{name}_s_total": mean_std([c[-1][0] for c in mine.values()])})
    return out


def plot(studies: list[dict], reference: list[float], path: Path) -> None:
    """Hypervolume against wall-clock, whole (left) and from where the reference trials leave it (right):
    the shared references make most of the hypervolume, the searches differ in what they add to it."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    point = np.array([-reference[0], reference[1]])
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    after_references, finals = [], []
    for color, search in zip(plt.rcParams["axes.prop_cycle"].by_key()["color"], SEARCHES):
        for i, study in enumerate(s for s in studies if s["search"] == search):
            curve = hypervolume_curve(study["trials"], point)
            t, hv = zip(*curve)
            references = sum(row["kind"] == "reference" for row in study["trials"])
            after_references.append(hv[references - 1] if references else 0.0)
            finals.append(hv[-1])
            for ax in axes:
                ax.step([study["start_s"], *t], [0.0, *hv], where="post", color=color, alpha=0.8,
                        label=search if i == 0 else None)
    low, high = min(after_references), max(finals)
    axes[1].set_ylim(low - 0.1 * (high - low), high + 0.1 * (high - low))
    axes[1].set_title("zoomed: after the reference trials", fontsize=9)
    for ax in axes:
        ax.set(xlabel="wall-clock (s, one thread per study)", ylabel="hypervolume (valid accuracy x MiB)")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


# -- measuring -----------------------------------------------------------------------------------
def early_stop_rule(args: argparse.Namespace, config: SweepConfig) -> EarlyStopConfig:
    """The rule of the early-stopping searches; K defaults to the middle of the base schedule."""
    stages = len(resolve_schedule(config.training))
    rule = EarlyStopConfig(args.after_stage or max(1, stages // 2), args.margin, args.grace)
    problems = [f"{key}: {message}" for key, message in rule.problems()]
    if rule.after_stage >= stages:
        problems.append(f"--after-stage must be below the schedule's {stages} stages")
    if problems:
        raise SystemExit("; ".join(problems))
    return rule


def sensitivity_seconds(config: SweepConfig, prepared: Prepared) -> tuple[float, float]:
    """What the sensitivity costs a seeded search, measured afresh (not read from the cache), one
    thread like the studies: (wall-clock, CPU) seconds."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        start, cpu = time.perf_counter(), time.process_time()
        measure(prepared.student, prepared.data.train, config.quantization, prepared.device, config.training.seed)
        return time.perf_counter() - start, time.process_time() - cpu
    finally:
        torch.set_num_threads(threads)


def measure_all(args: argparse.Namespace, config: SweepConfig) -> tuple[dict, list[dict], dict]:
    """Every (search, seed) study; the settings, the studies and the sensitivity-vs-damage check."""
    start = time.perf_counter()
    prepared = prepare(config.run_config())  # caches before the workers
    plan = make_plan(config, prepared, args.budgets)
    seeded, (seconds, cpu) = tuple(seeded_trials(config, plan)), sensitivity_seconds(config, prepared)
    rule = early_stop_rule(args, config)
    trials = args.trials or config.search.num_samples
    references = tuple(run_in_processes([(measure_reference, (config, item)) for item in reference_trials(config)],
                                        args.workers, "reference trials"))
    specs = [Study(search, seed, trials, *((seeded, seconds, cpu) if "seeded" in search else ((), 0.0, 0.0)),
                   rule if "early-stop" in search else None, references)
             for seed in range(args.seeds) for search in SEARCHES]
    studies = run_in_processes([(run_study, (config, spec)) for spec in specs], args.workers, "studies")
    drops = ptq_drops(config, prepared, plan)
    check = {"groups": drops, "spearman_omega_vs_valid_drop": spearman([d["omega"] for d in drops],
                                                                       [d["valid_drop"] for d in drops])}
    settings = {"quick": args.quick, "trials": trials, "seeds": args.seeds, "budgets": args.budgets,
                "seeded_trials": len(seeded), "sensitivity_s": round(seconds, 2), "sensitivity_cpu_s": round(cpu, 2),
                "reference_trials_s": [round(r["wall_s"], 2) for r in references],
                "early_stop": dataclasses.asdict(rule),
                "workers": args.workers, "threads_per_study": 1,
                "reference_point": [0.0, 1.1 * prepared.references["student_fp32_size_mb"]],
                "wall_clock_s": round(time.perf_counter() - start, 1)}
    return settings, sorted(studies, key=lambda s: (SEARCHES.index(s["search"]), s["seed"])), check


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke settings, 4 trials, one seed, 2 budgets")
    parser.add_argument("--trials", type=int, help="trials per study (default: the space's num_samples)")
    parser.add_argument("--seeds", type=int, help="sampler seeds per search (default 3; 1 with --quick)")
    parser.add_argument("--budgets", type=int, help="seeded allocations (default: the space's search.seeds)")
    parser.add_argument("--after-stage", type=int, help="early stop after this stage (default: half the schedule)")
    parser.add_argument("--margin", type=float, default=0.05, help="early stop: validation accuracy margin")
    parser.add_argument("--grace", type=int, default=3, help="early stop: trials that must have reported first")
    parser.add_argument("--workers", type=int, default=2, help="studies at once, one thread each")
    parser.add_argument("--cache-dir", default="~/.cache/quads-search")
    parser.add_argument("--plot", type=Path, help="write hypervolume against wall-clock to this PNG")
    parser.add_argument("--reanalyse", type=Path, metavar="JSON",
                        help="run nothing: redo the analysis of the studies in an earlier output of this bench")
    args = parser.parse_args()
    show_progress("stderr")
    if args.reanalyse:
        earlier = json.loads(args.reanalyse.read_text())
        settings, studies, check = earlier["settings"], earlier["studies"], earlier["sensitivity_check"]
    else:
        config = space_config("mixed_precision", args.cache_dir, smoke=args.quick)
        args.seeds = args.seeds or (1 if args.quick else 3)
        args.budgets = args.budgets or (2 if args.quick else config.search.seeds)
        args.trials = args.trials or (4 if args.quick else None)
        settings, studies, check = measure_all(args, config)
    result = {"settings": settings, "searches": analyse(studies, settings["reference_point"]),
              "sensitivity_check": check, "studies": studies}
    if args.plot:
        plot(studies, settings["reference_point"], args.plot)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()

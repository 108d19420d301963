"""Does interleaving distillation with quantization (QUADS) beat distil-then-quantize and plain PTQ?

Run from the repository root:
    python -m bench.schedules [--quick] [--seeds N] [--schedules S ...] [--workers N] [--cache-dir DIR]
                              [--plot PNG] [--reanalyse JSON]   (CPU)

The shipped schedules space (default corpus, teacher and student; `--quick`: its smoke settings,
bits 1 and 4, one seed). Every condition starts from the same cached pre-tuned teacher and
student and differs only in its stage schedule, bit width, quantizer and seed (the seed sets
batch order, the width reducer's initialisation and clustering starts):
  quads       2 x (distill 2, quantize 2) epochs: the interleaved multi-stage schedule
  joint       distill 2, joint 2, quantize 2: the weights train under L_centroid before the snap
  sequential  distill 4, then quantize and fine-tune 4: the two-stage pipeline the paper argues against
  ptq         post-training quantization of the pre-tuned student, no training
References: the fp32 teacher and pre-tuned student, the student distilled in fp32 for as many
epochs as `sequential` trains, and that distilled student quantized post-training
(`distill-ptq`: how much of a trained schedule's lead over `ptq` is distillation alone).
Prints one JSON object; `--plot` draws accuracy by bits; `--schedules` trains a subset.
"""
from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import tempfile
import time
from pathlib import Path

from bench.common import mean_std, t_interval, run_in_processes, space_config
from quads_search.config import RunConfig
from quads_search.core.epochs import evaluate
from quads_search.core.quantizer import make_quantizer
from quads_search.core.prepare import prepare
from quads_search.core.run import QuadsRun
from quads_search.core.schedule import SCHEDULE_PRESETS
from quads_search.log import show_progress
from quads_search.sweep.params import apply_params

SCHEDULES = ("quads", "joint", "sequential", "ptq")
# Quantizer variants: the paper's k-means update, the learnable one, and affine QAT (latent weights, STE).
METHODS = {"kmeans-mean": {"quantization.method": "kmeans", "quantization.kmeans_update": "mean"},
           "kmeans-ste": {"quantization.method": "kmeans", "quantization.kmeans_update": "ste"},
           "affine": {"quantization.method": "affine"}}
FP32_DISTILL = "distill-fp32"
DISTILL_PTQ = "distill-ptq"


@dataclasses.dataclass(frozen=True)
class Condition:
    schedule: str  # a preset name, or FP32_DISTILL for the float reference
    bits: int
    method: str
    seed: int


def base_config(cache_dir: str, quick: bool) -> RunConfig:
    return space_config("schedules", cache_dir, smoke=quick).run_config()


def condition_config(base: RunConfig, condition: Condition) -> RunConfig:
    if condition.schedule == FP32_DISTILL:
        epochs = sum(stage.epochs for stage in SCHEDULE_PRESETS["sequential"]())
        schedule = [{"stage": "distill", "epochs": epochs}]
    else:
        schedule = condition.schedule
    return apply_params(base, {"training.schedule": schedule, "bits.default": condition.bits,
                               **METHODS[condition.method], "training.seed": condition.seed})


def trained(base: RunConfig, condition: Condition) -> QuadsRun:
    """`condition`'s schedule run to its end from the shared pre-tuned models (nothing exported yet)."""
    run = QuadsRun(condition_config(base, condition), prepare(base))
    run.run_stages()
    return run


def run_condition(base: RunConfig, condition: Condition) -> list[dict]:
    """Train one condition; its test and valid accuracy."""
    start = time.perf_counter()
    run = trained(base, condition)
    with tempfile.TemporaryDirectory() as out:
        metrics = run.finish(Path(out))
    return [{**dataclasses.asdict(condition), "test_accuracy": metrics["accuracy"],
             "valid_accuracy": metrics["valid_accuracy"], "size_mb": metrics["size_mb"],
             "seconds": round(time.perf_counter() - start, 1)}]


def run_distill_then_ptq(base: RunConfig, seed: int, bits: tuple[int, ...]) -> list[dict]:
    """Distil the student in fp32, then quantize copies of it post-training at every bit width and method."""
    run = trained(base, Condition(FP32_DISTILL, 32, "kmeans-mean", seed))  # 32 bits: the method is unused
    data, device = run.prepared.data, run.prepared.device

    def row(model, schedule: str, b: int, method: str) -> dict:
        test = evaluate(model, data.test, base.training.eval_batch_size, device, len(data.intents))
        return {"schedule": schedule, "bits": b, "method": method, "seed": seed, "test_accuracy": test["accuracy"]}

    rows = [row(run.model, FP32_DISTILL, 32, "none")]
    for method in METHODS:
        for b in bits:
            model = copy.deepcopy(run.model)
            make_quantizer(model, apply_params(base, {"bits.default": b, **METHODS[method]}).quantization).attach()
            rows.append(row(model, DISTILL_PTQ, b, method))
    return rows


def references(base: RunConfig) -> dict:
    """Test and valid accuracy of the fp32 pre-tuned teacher and student every condition starts from."""
    prepared = prepare(base)
    data, refs = prepared.data, prepared.references
    out = {"clips": {"train": len(data.train), "valid": len(data.valid), "test": len(data.test)}}
    for name, role in (("teacher_fp32", "teacher"), ("student_fp32", "student_fp32")):
        out[name] = {"test_accuracy": refs[f"{role}_accuracy"], "valid_accuracy": refs[f"{role}_valid_accuracy"]}
    return out


def summarize(runs: list[dict]) -> list[dict]:
    """Mean ± std of test accuracy over seeds for every (schedule, method, bits)."""
    groups: dict[tuple, list[float]] = {}
    for r in runs:
        groups.setdefault((r["schedule"], r["method"], r["bits"]), []).append(r["test_accuracy"])
    return [{"schedule": s, "method": m, "bits": b, "test_accuracy": mean_std(v)}
            for (s, m, b), v in sorted(groups.items(), key=lambda kv: (kv[0][1], kv[0][2], kv[0][0]))]


def differences(runs: list[dict], a: str, b: str) -> dict[tuple, list[float]]:
    """Schedule `a` minus schedule `b` on the same (method, bits, seed), grouped by (method, bits)."""
    by_key = {(r["schedule"], r["method"], r["bits"], r["seed"]): r["test_accuracy"] for r in runs}
    diffs: dict[tuple, list[float]] = {}
    for (schedule, method, bits, seed), value in by_key.items():
        if schedule == a and (b, method, bits, seed) in by_key:
            diffs.setdefault((method, bits), []).append(value - by_key[(b, method, bits, seed)])
    return dict(sorted(diffs.items()))


def paired(runs: list[dict], a: str, b: str) -> list[dict]:
    """Per (method, bits): `a` minus `b`, seed by seed (same start, same seed)."""
    return [{"method": method, "bits": bits, "a": a, "b": b, "difference": mean_std(d), "wins": sum(x > 0 for x in d)}
            for (method, bits), d in differences(runs, a, b).items()]


def pooled(runs: list[dict], a: str, b: str) -> dict:
    """`a` minus `b` over every (method, bits, seed) pair at once: the grid's average effect."""
    diffs = [d for cell in differences(runs, a, b).values() for d in cell]
    return {"a": a, "b": b, "difference": t_interval(diffs), "wins": sum(d > 0 for d in diffs)}


def updates(runs: list[dict], schedule: str) -> list[dict]:
    """The learnable k-means update minus the paper's mean update, per bits, seed by seed, under `schedule`."""
    by_key = {(r["method"], r["bits"], r["seed"]): r["test_accuracy"] for r in runs if r["schedule"] == schedule}
    out = []
    for bits in sorted({b for _, b, _ in by_key}):
        d = [by_key[("kmeans-ste", bits, s)] - by_key[("kmeans-mean", bits, s)] for m, b, s in by_key
             if m == "kmeans-mean" and b == bits and ("kmeans-ste", bits, s) in by_key]
        if d:
            out.append({"bits": bits, "ste_minus_mean": t_interval(d), "wins": sum(x > 0 for x in d)})
    return out


def plot(summary: list[dict], refs: dict, distilled: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(METHODS), figsize=(5 * len(METHODS), 4), sharey=True)
    for ax, method in zip(axes, METHODS):
        for schedule in (*SCHEDULES, DISTILL_PTQ):
            rows = [r for r in summary if r["schedule"] == schedule and r["method"] == method]
            if not rows:
                continue
            ax.errorbar([r["bits"] for r in rows], [100 * r["test_accuracy"]["mean"] for r in rows],
                        yerr=[100 * (r["test_accuracy"]["std"] or 0) for r in rows], marker="o", capsize=3, label=schedule,
                        linestyle="--" if schedule == DISTILL_PTQ else "-")
        for (name, value), style in zip([("teacher fp32", refs["teacher_fp32"]["test_accuracy"]),
                                         ("student fp32", refs["student_fp32"]["test_accuracy"]),
                                         ("student distilled fp32", distilled["mean"])], (":", "--", "-.")):
            ax.axhline(100 * value, color="grey", linestyle=style, label=name)
        ax.set_xscale("log", base=2)
        ax.set_xticks(sorted({r["bits"] for r in summary}), labels=[str(b) for b in sorted({r["bits"] for r in summary})])
        ax.set_title(f"{method} quantizer")
        ax.set_xlabel("bits per weight")
    axes[0].set_ylabel("test accuracy (%), mean ± std over seeds")
    axes[-1].legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def analyse(runs: list[dict], refs: dict) -> dict:
    """Summary, per-cell and pooled paired differences, and the fp32 references, from the runs."""
    trained = [r for r in runs if r["schedule"] != FP32_DISTILL]
    present = {r["schedule"] for r in trained}
    comparisons = [(a, b) for a, b in [("quads", "sequential"), ("joint", "sequential"), ("quads", "ptq"),
                                       ("sequential", "ptq"), ("quads", DISTILL_PTQ), ("sequential", DISTILL_PTQ),
                                       (DISTILL_PTQ, "ptq")]
                   if {a, b} <= present]
    return {"references": {**refs, FP32_DISTILL: mean_std([r["test_accuracy"] for r in runs
                                                            if r["schedule"] == FP32_DISTILL])},
            "summary": summarize(trained),
            "paired": {f"{a} - {b}": paired(trained, a, b) for a, b in comparisons},
            "pooled": {f"{a} - {b}": pooled(trained, a, b) for a, b in comparisons},
            "updates": {schedule: updates(trained, schedule) for schedule in ("quads", "sequential")
                        if schedule in present},
            "runs": sorted(runs, key=lambda r: (r["schedule"], r["method"], r["bits"], r["seed"]))}


def measure(args: argparse.Namespace) -> tuple[dict, list[dict], dict]:
    """Train every condition; the settings, the runs and the fp32 references."""
    seeds = range(args.seeds or (1 if args.quick else 3))
    bits = (1, 4) if args.quick else (1, 2, 4)
    base = base_config(args.cache_dir, args.quick)
    start = time.perf_counter()
    refs = references(base)  # builds every cache before the workers start
    calls = [(run_distill_then_ptq, (base, seed, bits)) for seed in seeds]  # the longest first
    calls += [(run_condition, (base, Condition(s, b, m, seed)))
              for seed in seeds for m in METHODS for b in bits for s in args.schedules]
    runs = [row for rows in run_in_processes(calls, args.workers, "runs") for row in rows]
    settings = {"quick": args.quick, "seeds": len(seeds), "bits": bits, "schedules": args.schedules,
                "threads_per_run": 1,
                "workers": args.workers, "wall_clock_s": round(time.perf_counter() - start, 1)}
    return settings, runs, refs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke settings, bits 1 and 4, one seed (under 5 min)")
    parser.add_argument("--seeds", type=int, help="seeds per condition (default 3; 1 with --quick)")
    parser.add_argument("--schedules", nargs="+", choices=SCHEDULES, default=list(SCHEDULES),
                        help="schedules to train (the fp32 and distill-ptq references always run)")
    parser.add_argument("--workers", type=int, default=2, help="processes, one thread each")
    parser.add_argument("--cache-dir", default="~/.cache/quads-search")
    parser.add_argument("--plot", type=Path, help="write accuracy-by-bits to this PNG")
    parser.add_argument("--reanalyse", type=Path, metavar="JSON",
                        help="train nothing: redo the analysis of the runs in an earlier output of this bench")
    args = parser.parse_args()
    show_progress("stderr")
    if args.reanalyse:
        earlier = json.loads(args.reanalyse.read_text())
        settings, runs = earlier["settings"], earlier["runs"]
        refs = {k: v for k, v in earlier["references"].items() if k != FP32_DISTILL}
    else:
        settings, runs, refs = measure(args)
    result = {"settings": settings, **analyse(runs, refs)}
    if args.plot:
        plot(result["summary"], refs, result["references"][FP32_DISTILL], args.plot)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()

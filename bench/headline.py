"""The README's headline: the default sweep over training seeds and splits, against the teacher
and the fp32 trial.

Run from the repository root:
    python -m bench.headline --cache-dir DIR --results-dir DIR [--seeds 0 1 2]
                             [--holdouts speakers accents] [--out JSON]   (CPU: ~17 min per sweep)
    python -m bench.headline --results-dir DIR --reanalyse [--out JSON]
    python -m bench.headline ... --previous OLD.json   (sweeps of an earlier machine, kept as picked)
    python -m bench.headline ... --set search.sampler=random   (overrides passed to every sweep)

Each (holdout, seed) runs the real main job, `quads-search run search_spaces/mixed_precision.yaml`
with `training.seed` and `dataset.holdout` set (the seed re-pre-tunes teacher head and student),
into `<results-dir>/<holdout>-s<seed>/`. From each sweep it takes, choosing on validation only:
  - the teacher (frozen tiny.en with its intent head) and the fp32 trial (the `reference` trial
    at 32 bits: the student trained under the same schedule, unquantized);
  - the best model at <= 2.0 average bits: the most accurate on validation among the finished
    trials at that size or less (ties: the smaller).
Then, per holdout: median, range and Student's t interval over seeds of each accuracy, and of the
relative drops (teacher - model) / teacher and (fp32 trial - model) / fp32 trial, on valid and
test. Test numbers are read after the choice, which used validation alone. `--previous` adds the picked
runs of an earlier `--out` for the (holdout, seed) pairs whose sweeps are not under --results-dir.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd

from bench.common import SPACES, t_interval
from quads_search.metrics import relative_drop
from quads_search.results import REFERENCES_FILE, TRIALS_FILE

SPACE = SPACES / "mixed_precision.yaml"
MAX_BITS = 2.0
SPLITS = ("valid", "test")


def sweep_dir(results_dir: Path, holdout: str, seed: int) -> Path:
    return results_dir / f"{holdout}-s{seed}"


def run_sweep(results_dir: Path, cache_dir: str, holdout: str, seed: int, overrides: list[str]) -> None:
    """The main job as a user runs it, at one training seed and holdout (skipped if already finished)."""
    out = sweep_dir(results_dir, holdout, seed)
    if (out / "mixed_precision" / TRIALS_FILE).is_file() and (out / "done").is_file():
        return
    command = ["quads-search", "run", str(SPACE), "--results-dir", str(out), "--set", f"cache_dir={cache_dir}",
               "--set", f"training.seed={seed}", "--set", f"dataset.holdout={holdout}",
               *[arg for override in overrides for arg in ("--set", override)]]
    print("$ " + " ".join(command), file=sys.stderr, flush=True)
    subprocess.run(command, check=True)
    (out / "done").write_text("\n")


def pick(experiment: Path) -> dict:
    """Teacher, fp32 trial and the best <= 2-bit model of one sweep (chosen on validation); `low_bit` is
    None when no finished trial is that small (a sweep's lowest seeded allocation can sit just above)."""
    trials = pd.read_parquet(experiment / TRIALS_FILE)
    trials = trials[trials["status"] == "finished"]
    refs = json.loads((experiment / REFERENCES_FILE).read_text())
    fp32 = trials[(trials["kind"] == "reference") & (trials["bits_avg"] >= 32)].iloc[0]
    out = {"teacher": {"valid": refs["teacher_valid_accuracy"], "test": refs["teacher_accuracy"]},
           "fp32_trial": {"valid": float(fp32["valid_accuracy"]), "test": float(fp32["accuracy"])},
           "pretuned_student": {"valid": refs["student_fp32_valid_accuracy"], "test": refs["student_fp32_accuracy"]},
           "fp32_size_mb": float(fp32["size_mb"]), "low_bit": None, "size_x_fp32": None}
    low = trials[trials["bits_avg"] <= MAX_BITS].sort_values(["valid_accuracy", "size_mb"], ascending=[False, True])
    if low.empty:
        return out
    best = low.iloc[0]
    model = {"valid": float(best["valid_accuracy"]), "test": float(best["accuracy"])}
    out["low_bit"] = {**model, "trial_id": best["trial_id"], "kind": best["kind"], "bits_avg": float(best["bits_avg"]),
                      "size_mb": float(best["size_mb"])}
    for split in SPLITS:
        out["low_bit"][f"drop_vs_teacher_{split}"] = relative_drop(out["teacher"][split], model[split])
        out["low_bit"][f"drop_vs_fp32_trial_{split}"] = relative_drop(out["fp32_trial"][split], model[split])
    out["size_x_fp32"] = float(fp32["size_mb"] / best["size_mb"])
    return out


def previous_runs(path: Path) -> dict[tuple[str, int], dict]:
    """The picked runs of an earlier `--out` JSON, keyed as `main` keys its own."""
    runs = json.loads(path.read_text())["runs"]
    return {(name.rsplit("-s", 1)[0], int(name.rsplit("-s", 1)[1])): run for name, run in runs.items()}


def summarise(picked: dict[tuple[str, int], dict]) -> dict:
    """Per holdout: every accuracy and drop over seeds (median, range, t interval); the low-bit model's
    over the seeds that have one, the others listed in `seeds_without_low_bit`."""
    out = {}
    for holdout in sorted(dict.fromkeys(h for h, _ in picked), key=["speakers", "accents", "phrasings"].index):
        seeds = [s for (h, s) in sorted(picked) if h == holdout]
        runs = [picked[holdout, s] for s in seeds]
        entry = {"seeds": seeds, "seeds_without_low_bit": [s for s, r in zip(seeds, runs) if r["low_bit"] is None]}
        for role in ("teacher", "pretuned_student", "fp32_trial"):
            entry[role] = {split: t_interval([r[role][split] for r in runs]) for split in SPLITS}
        low = [r for r in runs if r["low_bit"] is not None]
        if low:
            keys = [*SPLITS, *(k for k in low[0]["low_bit"] if k.startswith("drop_")), "bits_avg", "size_mb"]
            entry["low_bit"] = {key: t_interval([r["low_bit"][key] for r in low]) for key in keys}
            entry["size_x_fp32"] = t_interval([r["size_x_fp32"] for r in low])
        out[holdout] = entry
    return out


def table(summary: dict) -> str:
    """One markdown row per holdout: medians with [min, max] over seeds."""
    def cell(stats: dict, percent: bool = True) -> str:
        scale = 100 if percent else 1
        low, high = (v * scale for v in stats["range"])
        return f"{stats['median'] * scale:.1f} [{low:.1f}, {high:.1f}]"

    lines = ["| holdout | seeds | teacher valid / test | fp32 trial valid / test | <= 2-bit model valid / test | "
             "bits | drop vs teacher valid / test (%) | drop vs fp32 trial valid / test (%) |",
             "|---|---|---|---|---|---|---|---|"]
    for holdout, e in summary.items():
        seeds = ", ".join(map(str, e["seeds"]))
        if e["seeds_without_low_bit"]:
            seeds += f" (nothing at <= 2 bits in {', '.join(map(str, e['seeds_without_low_bit']))})"
        row = (f"| {holdout} | {seeds} | {cell(e['teacher']['valid'])} / {cell(e['teacher']['test'])} | "
               f"{cell(e['fp32_trial']['valid'])} / {cell(e['fp32_trial']['test'])} |")
        low = e.get("low_bit")
        if low is None:
            lines.append(row + " none | | | |")
            continue
        lines.append(row + f" {cell(low['valid'])} / {cell(low['test'])} | {cell(low['bits_avg'], False)} | "
                     f"{cell(low['drop_vs_teacher_valid'])} / {cell(low['drop_vs_teacher_test'])} | "
                     f"{cell(low['drop_vs_fp32_trial_valid'])} / {cell(low['drop_vs_fp32_trial_test'])} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache-dir")
    parser.add_argument("--results-dir", type=Path, required=True)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--holdouts", nargs="+", default=["speakers", "accents"],
                        choices=["speakers", "accents", "phrasings"])
    parser.add_argument("--reanalyse", action="store_true", help="read finished sweeps only, run nothing")
    parser.add_argument("--previous", type=Path, help="an earlier --out: its runs fill the pairs not on disk")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="a config override for every sweep (as `quads-search run --set`)")
    args = parser.parse_args()
    if not args.reanalyse and not args.cache_dir:
        parser.error("--cache-dir is required unless --reanalyse")
    picked = previous_runs(args.previous) if args.previous else {}
    for seed in args.seeds:  # seed by seed, so that a cut-short run still has both splits
        for holdout in args.holdouts:
            if not args.reanalyse:
                run_sweep(args.results_dir, args.cache_dir, holdout, seed, args.overrides)
            experiment = sweep_dir(args.results_dir, holdout, seed) / "mixed_precision"
            if (experiment / TRIALS_FILE).is_file():
                picked[holdout, seed] = pick(experiment)
    picked = {key: picked[key] for key in picked if key[1] in args.seeds and key[0] in args.holdouts}
    summary = summarise(picked)
    print(table(summary))
    if args.out:
        runs = {f"{h}-s{s}": v for (h, s), v in picked.items()}
        args.out.write_text(json.dumps({"runs": runs, "summary": summary}, indent=1, default=str) + "\n")


if __name__ == "__main__":
    main()

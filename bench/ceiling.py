"""How close can a student get to the teacher in the main job's time? Accuracy against student compute
at a fixed pre-tuning wall-clock.

Run from the repository root:
    python -m bench.ceiling --cache-dir DIR [--shapes 64x2x256 96x2x384 ...] [--out JSON] [--plot PNG]   (CPU)

Each student shape (d_model x layers x ffn) is pre-tuned with the default recipe
(`search_spaces/mixed_precision.yaml`) for as many epochs as fit the default shape's 30-epoch
budget at its measured seconds per epoch, so every point costs the same wall-clock. Shapes run
one after another on every core (a timing bench: nothing else should run beside it). Reports
the pre-tuned student's validation accuracy (test stays sealed: `--show-test` after the choice),
GMACs per 3-s clip and seconds per epoch, and the teacher's validation accuracy for scale.
"""
from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

from bench.common import space_config
from quads_search.core.prepare import prepare
from quads_search.log import show_progress

DEFAULT_SHAPE = "64x2x256"
BUDGET_EPOCHS = 30  # the default recipe's epochs at the default shape: the wall-clock every shape gets


def shape_overrides(shape: str, epochs: int) -> tuple[str, ...]:
    d_model, layers, ffn = (int(x) for x in shape.split("x"))
    return (f"student.d_model={d_model}", f"student.layers={layers}", f"student.ffn={ffn}",
            f"student.pretune.epochs={epochs}")


def seconds_per_epoch(cache_dir: str, shape: str) -> float:
    """A one-epoch pre-tuning of `shape`, timed with its validation pass and final evaluation (every
    shape pays both alike); it is its own cache entry, as the epoch count is part of the key."""
    cfg = space_config("mixed_precision", cache_dir, False, shape_overrides(shape, 1)).run_config()
    start = time.perf_counter()
    prepare(cfg)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache-dir", required=True)
    parser.add_argument("--shapes", nargs="+", default=[DEFAULT_SHAPE, "96x2x384", "128x2x512", "64x4x256"])
    parser.add_argument("--out", type=Path)
    parser.add_argument("--plot", type=Path)
    parser.add_argument("--show-test", action="store_true")
    args = parser.parse_args()
    show_progress("stderr")
    # corpus, features and teacher first, so the timings below are the student's; 0 epochs: a cache entry
    # of its own, so that the default shape's one-epoch timing below trains rather than loads
    prepare(space_config("mixed_precision", args.cache_dir, False, shape_overrides(DEFAULT_SHAPE, 0)).run_config())
    timing = {shape: seconds_per_epoch(args.cache_dir, shape) for shape in args.shapes}
    budget = BUDGET_EPOCHS * timing[DEFAULT_SHAPE] if DEFAULT_SHAPE in timing else None
    rows = []
    for shape in args.shapes:
        epochs = max(1, math.floor(budget / timing[shape])) if budget else BUDGET_EPOCHS
        cfg = space_config("mixed_precision", args.cache_dir, False, shape_overrides(shape, epochs)).run_config()
        prepared = prepare(cfg)
        refs = prepared.references
        row = {"shape": shape, "epochs": epochs, "seconds_per_epoch": timing[shape], "gmacs": refs["student_fp32_gmacs"],
               "params_m": refs["student_fp32_params_m"], "valid": refs["student_fp32_valid_accuracy"],
               "teacher_valid": refs["teacher_valid_accuracy"]}
        if args.show_test:
            row["test"] = refs["student_fp32_accuracy"]
        rows.append(row)
        print(json.dumps(row), flush=True)
    if args.out:
        args.out.write_text(json.dumps({"budget_s": budget, "rows": rows}, indent=1) + "\n")
    if args.plot:
        plot(rows, args.plot)


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot([r["gmacs"] for r in rows], [100 * r["valid"] for r in rows], "o")
    for i, r in enumerate(sorted(rows, key=lambda r: r["gmacs"])):  # alternate above and below: neighbours stay legible
        ax.annotate(f"{r['shape']} ({r['epochs']} ep)", (r["gmacs"], 100 * r["valid"]), fontsize=8,
                    xytext=(4, 5 if i % 2 == 0 else -11), textcoords="offset points")
    teacher = 100 * rows[0]["teacher_valid"]
    ax.axhline(teacher, ls="--", c="gray")
    ax.axhline(0.9 * teacher, ls=":", c="gray")
    ax.annotate("teacher", (ax.get_xlim()[0], teacher), fontsize=8, va="bottom")
    ax.annotate("10 % below the teacher", (ax.get_xlim()[0], 0.9 * teacher), fontsize=8, va="bottom")
    ax.set_xlabel("student GMACs per 3-s clip")
    ax.set_ylabel("pre-tuned student, validation accuracy (%)")
    ax.set_title("Students at the same pre-tuning wall-clock")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    main()

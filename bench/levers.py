"""What moves the default student towards its teacher? One lever at a time, on validation.

Run from the repository root:
    python -m bench.levers --cache-dir DIR [--levers NAME ...] [--seeds 0 1 2] [--holdout speakers]
                           [--workers 2] [--out JSON]   (CPU)
    python -m bench.levers --reanalyse JSON [--show-test]

Every lever is a set of dotted-key overrides of the default space (`search_spaces/
mixed_precision.yaml`). For each lever and training seed it pre-tunes the student (cached),
trains the 1.95-bit allocation the default sweep's front holds at its low end (1-bit FFNs,
2-bit attention and convolutions, 4-bit head) under the default schedule, and records the
teacher's, the pre-tuned student's and the quantized trial's accuracy, the pre-tuned student's
train accuracy (is it underfitting?), and the seconds each part took.

Defaults are chosen on validation: the printed table and `--out` hold validation only. Test
accuracy goes to a sealed file beside it (`<out>.sealed-test.json`), which `--reanalyse OUT
--show-test` opens once the choice is recorded in docs/decisions.md.
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from bench.common import paired_t, run_in_processes, space_config, t_interval
from quads_search.core.epochs import evaluate
from quads_search.core.prepare import prepare
from quads_search.core.run import QuadsRun

LOW_BIT = ("quantization.bits.default=4", "quantization.bits.conv1=2", "quantization.bits.conv2=2",
           r"quantization.bits.re:layers\.\d+\.fc[12]=1", r"quantization.bits.re:layers\.\d+\.self_attn\..*=2",
           "quantization.bits.head=4")

def _cycles(quantize_lr: float) -> str:
    """The default schedule, 2 x (distill 1, quantize 3), with the quantize stages' SGD learning rate set."""
    distill, quantize = "{stage: distill, epochs: 1}", f"{{stage: quantize, epochs: 3, lr: {quantize_lr}, head_lr: {quantize_lr}}}"
    return f"training.schedule=[{distill}, {quantize}, {distill}, {quantize}]"


# Each lever: overrides of the default space. `shipped` is the YAML as it stands; the pretune-*
# levers change how the student is pre-tuned (a new cached student each), the rest only the trial.
LEVERS: dict[str, tuple[str, ...]] = {
    "shipped": (),
    "pretune-lr1e-3": ("student.pretune.lr=1e-3", "student.pretune.head_lr=1e-3", "student.pretune.warmup=0",
                       "student.pretune.kd=0"),
    "pretune-lr3e-3": ("student.pretune.lr=3e-3", "student.pretune.head_lr=3e-3", "student.pretune.warmup=1",
                       "student.pretune.kd=0"),
    "pretune-kd0.5": ("student.pretune.lr=3e-3", "student.pretune.head_lr=3e-3", "student.pretune.warmup=1",
                      "student.pretune.kd=0.5"),
    "pretune-kd0.8": ("student.pretune.lr=3e-3", "student.pretune.head_lr=3e-3", "student.pretune.warmup=1",
                      "student.pretune.kd=0.8"),
    "pooling-max": ("student.pooling=max", "teacher.pooling=mean"),
    "pooling-max-both": ("student.pooling=max", "teacher.pooling=max"),
    "specaugment": ("dataset.spec_augment=true",),
    "dropout0.1": ("student.dropout=0.1",),
    "pretune-dropout0.1": ("student.pretune.dropout=0.1",),
    "pretune-dropout0.2": ("student.pretune.dropout=0.2",),
    "trial-kd0.5": ("training.kd=0.5",),
    "quantize-lr0.01": (_cycles(0.01),),
    "quantize-lr0.02": (_cycles(0.02),),
    "quantize-lr0.05": (_cycles(0.05),),
    "alpha0": ("training.alpha=0",),
    "alpha0.03": ("training.alpha=0.03",),
    "update-mean": ("quantization.kmeans_update=mean",),
    "sequential": ("training.schedule=[{stage: distill, epochs: 2}, {stage: quantize, epochs: 6}]",),
    "affine": ("quantization.method=affine",),
    "affine-learned": ("quantization.method=affine", "quantization.affine_scale=learned"),
}


def run_one(lever: str, seed: int, cache_dir: str, holdout: str) -> dict:
    """Pre-tune (cached), then train the 1.95-bit trial; accuracies and seconds."""
    overrides = (f"dataset.holdout={holdout}", *LEVERS[lever], *LOW_BIT, f"training.seed={seed}")
    cfg = space_config("mixed_precision", cache_dir, smoke=False, overrides=overrides).run_config()
    start = time.perf_counter()
    prepared = prepare(cfg)
    prepare_s = time.perf_counter() - start
    data, classes = prepared.data, len(prepared.data.intents)
    pretuned_train = evaluate(prepared.student, data.train, cfg.training.eval_batch_size, prepared.device, classes)
    run = QuadsRun(cfg, prepared)
    start = time.perf_counter()
    run.run_stages()
    with tempfile.TemporaryDirectory() as out:
        metrics = run.finish(Path(out))
    refs = prepared.references
    return {"lever": lever, "seed": seed, "holdout": holdout, "prepare_s": prepare_s,
            "trial_s": time.perf_counter() - start,
            "teacher_valid": refs["teacher_valid_accuracy"], "pretuned_valid": refs["student_fp32_valid_accuracy"],
            "pretuned_train": pretuned_train["accuracy"], "trial_valid": metrics["valid_accuracy"],
            "bits_avg": metrics["bits_avg"], "gmacs": metrics["gmacs"], "params_m": metrics["params_m"],
            "test": {"teacher": refs["teacher_accuracy"], "pretuned": refs["student_fp32_accuracy"],
                     "trial": metrics["accuracy"]}}


def summarise(rows: list[dict], show_test: bool) -> dict:
    """Per lever: validation (and, with show_test, test) with t-intervals over seeds, and the
    paired gain over `shipped` where both ran the same seeds."""
    out = {}
    base = {r["seed"]: r for r in rows if r["lever"] == "shipped"}
    for lever in dict.fromkeys(r["lever"] for r in rows):
        mine = [r for r in rows if r["lever"] == lever]
        entry = {key: t_interval([r[key] for r in mine]) for key in
                 ("teacher_valid", "pretuned_train", "pretuned_valid", "trial_valid", "prepare_s", "trial_s")}
        entry["seeds"] = [r["seed"] for r in mine]
        paired = [(r["trial_valid"], base[r["seed"]]["trial_valid"]) for r in mine if r["seed"] in base]
        if lever != "shipped" and paired:
            entry["trial_valid_gain"] = paired_t([a for a, _ in paired], [b for _, b in paired])
        if show_test:
            entry["test"] = {k: t_interval([r["test"][k] for r in mine]) for k in ("teacher", "pretuned", "trial")}
        out[lever] = entry
    return out


def sealed_path(out: Path) -> Path:
    return out.with_name(out.stem + ".sealed-test.json")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache-dir")
    parser.add_argument("--levers", nargs="+", default=list(LEVERS), choices=list(LEVERS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--holdout", default="speakers", choices=["speakers", "accents", "phrasings"])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, default=None, help="write every row and the summary as JSON")
    parser.add_argument("--reanalyse", type=Path, default=None, help="summarise an earlier --out instead of training")
    parser.add_argument("--show-test", action="store_true", help="with --reanalyse: open the sealed test numbers")
    args = parser.parse_args()
    if args.reanalyse:
        rows = json.loads(args.reanalyse.read_text())["rows"]
        if args.show_test:
            sealed = json.loads(sealed_path(args.reanalyse).read_text())
            rows = [{**r, "test": t} for r, t in zip(rows, sealed)]
    else:
        if not args.cache_dir:
            parser.error("--cache-dir is required unless --reanalyse is given")
        calls = [(run_one, (lever, s, args.cache_dir, args.holdout)) for lever in args.levers for s in args.seeds]
        rows = run_in_processes(calls, args.workers, "levers")
    summary = summarise(rows, args.show_test)
    for lever, entry in summary.items():
        cells = [f"{k} {entry[k]['mean']:.3f}" for k in ("pretuned_train", "pretuned_valid", "trial_valid")]
        test = f"  test trial {entry['test']['trial']['mean']:.3f}" if args.show_test else ""
        print(f"{lever:24s} " + "  ".join(cells) + test + f"  (n={entry['trial_valid']['n']})")
    if args.out and not args.reanalyse:
        args.out.write_text(json.dumps({"rows": [{k: v for k, v in r.items() if k != "test"} for r in rows],
                                        "summary": summary}, indent=1) + "\n")
        sealed_path(args.out).write_text(json.dumps([r["test"] for r in rows]) + "\n")


if __name__ == "__main__":
    main()

"""Whom does the student fail? Per-speaker and per-accent accuracy of the teacher and the pre-tuned student.

Run from the repository root, after the choices it could inform are recorded (it reads test):
    python -m bench.speakers --cache-dir DIR [--seeds 0 1 2] [--holdout speakers] [--out JSON]

For each training seed it loads the cached teacher and pre-tuned student of the default space
(pre-tuning them where the cache lacks them) and scores every speaker of valid and test. The
synthetic corpus names a speaker `<accent>_<variant>_r<rate>_p<pitch>`, so the accents of a
split, and what each costs the student against its teacher, can be read off.
"""
from __future__ import annotations

import argparse
import json
import statistics
from collections import defaultdict
from pathlib import Path

import torch
from safetensors.torch import load_file

from bench.common import space_config
from quads_search.cache import cache_root
from quads_search.core.epochs import predict
from quads_search.core.prepare import prepare
from quads_search.core.pretune import EMBEDDINGS
from quads_search.core.teacher import pretuned_teacher

SPLITS = ("valid", "test")


def per_speaker(seed: int, cache_dir: str, holdout: str) -> dict[str, dict[str, dict]]:
    """split -> speaker -> {student, teacher, clips}: accuracies of the pre-tuned student and the teacher."""
    cfg = space_config("mixed_precision", cache_dir, smoke=False,
                       overrides=(f"dataset.holdout={holdout}", f"training.seed={seed}")).run_config()
    prepared = prepare(cfg)
    teacher = pretuned_teacher(cfg, prepared.data, cache_root(cfg.cache_dir), prepared.device)
    z = load_file(str(teacher.directory / EMBEDDINGS))
    out = {}
    for split in SPLITS:
        data = getattr(prepared.data, split)
        student = predict(prepared.student, data, cfg.training.eval_batch_size, prepared.device).tolist()
        with torch.no_grad():
            taught = teacher.model.head(z[split].to(prepared.device)).argmax(1).tolist()
        counts = defaultdict(lambda: [0, 0, 0])
        for speaker, label, s, t in zip(data.speakers, data.labels.tolist(), student, taught):
            counts[speaker][0] += 1
            counts[speaker][1] += s == label
            counts[speaker][2] += t == label
        out[split] = {k: {"student": s / n, "teacher": t / n, "clips": n} for k, (n, s, t) in counts.items()}
    return out


def by_accent(runs: dict[int, dict]) -> dict[str, dict[str, dict]]:
    """split -> accent -> speakers, and the mean over its speakers and the seeds of each accuracy."""
    out = {}
    for split in SPLITS:
        groups = defaultdict(list)
        for run in runs.values():
            for speaker, row in run[split].items():
                groups[speaker.split("_")[0]].append(row)
        seeds = len(runs)
        out[split] = {accent: {"speakers": len(rows) // seeds,
                               "student": statistics.fmean(r["student"] for r in rows),
                               "teacher": statistics.fmean(r["teacher"] for r in rows)}
                      for accent, rows in sorted(groups.items())}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache-dir", required=True)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--holdout", default="speakers", choices=["speakers", "accents", "phrasings"])
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    runs = {seed: per_speaker(seed, args.cache_dir, args.holdout) for seed in args.seeds}
    accents = by_accent(runs)
    for split, rows in accents.items():
        print(f"{split}: accent, speakers, student, teacher (mean over speakers and seeds {args.seeds})")
        for accent, row in rows.items():
            print(f"  {accent:16s} {row['speakers']:3d}  {row['student']:.3f}  {row['teacher']:.3f}")
    if args.out:
        args.out.write_text(json.dumps({"seeds": args.seeds, "holdout": args.holdout, "by_accent": accents,
                                        "per_speaker": runs}, indent=1) + "\n")


if __name__ == "__main__":
    main()

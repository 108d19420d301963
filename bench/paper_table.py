"""This corpus's Table 1 in the paper's regime: a pretrained Whisper student at 32 bits down to 2.

Run from the repository root:
    python -m bench.paper_table --cache-dir DIR [--out JSON] [--max-train-clips N]   (GPU, ~9 min budget)
    python -m bench.paper_table --smoke --cache-dir DIR [--out JSON]                   (CPU check, minutes)

Ray-free: the training core runs in this process, as `bench.search_wallclock` does, so a GPU
machine needs only torch, transformers and the project's small wheels. Settings are
`search_spaces/paper.yaml`'s (pretrained tiny.en student, frozen Whisper base teacher with its
intent head, 30-s windows; `--smoke`: its CPU smoke section). Rows, each trained from the same
cached pre-tuned student under two schedules, the paper's (`authors`: 20 epochs, distillation
in epochs 1-3 and 7-12, quantization in the rest, clustered once) and the sequential pipeline
with the same epochs and optimizers (all 9 distillation epochs, then the 11 quantization ones):
  teacher; fp32 student; uniform 16, 8, 4, 3 and 2 bits;
  the least-sensitive mixed allocations (Hutchinson sensitivity, exact knapsack) within the
  size of uniform 3 and uniform 2 bits (groups: conv1, conv2, each layer's attention and FFN,
  the head; widths 2, 3, 4, 8).
Columns: params, GMACs, nominal and packed size, valid and test accuracy, macro F1, and the
relative drop against the teacher and against the fp32 student of the same schedule.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from pathlib import Path

import torch

from bench.common import space_config
from quads_search.config import SweepConfig
from quads_search.core.allocation import exact
from quads_search.core.prepare import Prepared, prepare
from quads_search.core.run import QuadsRun
from quads_search.log import LOGGER, show_progress
from quads_search.metrics import relative_drop
from quads_search.sweep.seeding import bit_groups, group_options
from quads_search.core.sensitivity import sensitivity
from quads_search.sweep.params import apply_params

UNIFORM = (32, 16, 8, 4, 3, 2)
MIXED_AT = (3, 2)  # mixed allocations within the size of these uniform widths
WIDTHS = [2, 3, 4, 8]
SMOKE_ROWS = ("32", "4", "mixed-2")
DISTILL = {"stage": "distill", "optimizer": "adam", "lr": 1e-5, "head_lr": 1e-3, "cosine": False}
QUANTIZE = {"stage": "quantize", "optimizer": "sgd", "lr": 0.01, "head_lr": 0.01, "momentum": 0.9, "cosine": True}


def group_space(layers: int) -> dict[str, dict]:
    """One searched bit group per convolution, per layer's attention and FFN, and the head."""
    groups = ["conv1", "conv2", "head"]
    groups += [rf"re:layers\.{i}\.self_attn\..*_proj" for i in range(layers)]
    groups += [rf"re:layers\.{i}\.fc[12]" for i in range(layers)]
    return {f"bits.{g}": {"choice": WIDTHS} for g in groups}


def schedules(smoke: bool) -> dict[str, list[dict]]:
    """The paper's schedule and the sequential one with the same epochs and optimizers."""
    if smoke:
        return {"quads": [{**QUANTIZE, "epochs": 0, "cluster": True}, {**DISTILL, "epochs": 1},
                          {**QUANTIZE, "epochs": 1, "cluster": False}],
                "sequential": [{**DISTILL, "epochs": 1}, {**QUANTIZE, "epochs": 1}]}
    return {"quads": "authors", "sequential": [{**DISTILL, "epochs": 9}, {**QUANTIZE, "epochs": 11}]}


def mixed_allocations(config: SweepConfig, prepared: Prepared) -> dict[str, dict[str, int]]:
    """The least-sensitive allocation (bits.* parameters) within the bytes of each uniform width in MIXED_AT."""
    sens = sensitivity(config.run_config(), prepared)
    method = config.quantization.method
    groups, fixed_bits = bit_groups(config, prepared.student)
    options = group_options(groups, sens, method)
    out = {}
    for bits in MIXED_AT:
        budget = sum(next(o.size for o in opts if o.bits == bits) for opts in options.values())
        found = exact(options, budget)
        if found is None:
            raise RuntimeError(f"no allocation fits the size of uniform {bits} bits")
        out[f"mixed-{bits}"] = found.bits
    return out


def row_params(name: str, mixed: dict[str, dict[str, int]]) -> dict:
    """The quantization overrides of a row: a uniform width, or a mixed allocation."""
    if name in mixed:
        return {"quantization.bits": {"default": 8, **{k[len("bits."):]: v for k, v in mixed[name].items()}}}
    return {"quantization.bits": {"default": int(name)}}


def train_row(config: SweepConfig, prepared: Prepared, params: dict) -> dict:
    """One row: the pre-tuned student through the schedule, measured and exported to a scratch folder."""
    start = time.perf_counter()
    run = QuadsRun(apply_params(config.run_config(), params), prepared)
    run.run_stages()
    with tempfile.TemporaryDirectory() as out:
        metrics = run.finish(Path(out))
    keep = ("params_m", "gmacs", "size_mb_nominal", "size_mb", "bits_avg", "valid_accuracy", "accuracy",
            "valid_f1_macro", "f1_macro")
    return {**{k: metrics[k] for k in keep}, "seconds": time.perf_counter() - start}


def with_drops(rows: dict[str, dict], refs: dict) -> None:
    """Add each row's relative drop against the teacher and the fp32 row of its schedule, valid and test."""
    for schedule in {k.split("/")[0] for k in rows}:
        fp32 = rows[f"{schedule}/32"]
        for key in (k for k in rows if k.startswith(schedule + "/")):
            row = rows[key]
            for split, metric, teacher in (("valid", "valid_accuracy", "teacher_valid_accuracy"),
                                           ("test", "accuracy", "teacher_accuracy")):
                row[f"drop_vs_teacher_{split}"] = relative_drop(refs[teacher], row[metric])
                row[f"drop_vs_fp32_{split}"] = relative_drop(fp32[metric], row[metric])


def table(rows: dict[str, dict], refs: dict) -> str:
    """Markdown: one line per (row, schedule), the teacher first."""
    head = ("| row | schedule | params (M) | GMACs | nominal MiB | packed MiB | bits | valid | test | test F1 | "
            "drop vs teacher valid / test | drop vs fp32 valid / test |\n|---|---|---|---|---|---|---|---|---|---|---|---|")
    lines = [head, f"| teacher | frozen | {refs['teacher_params_m']:.2f} | {refs['teacher_gmacs']:.2f} | | "
             f"{refs['teacher_size_mb']:.2f} | 32 | {100 * refs['teacher_valid_accuracy']:.1f} | "
             f"{100 * refs['teacher_accuracy']:.1f} | | | |"]
    for key, r in rows.items():
        schedule, name = key.split("/")
        lines.append(f"| {name} | {schedule} | {r['params_m']:.2f} | {r['gmacs']:.2f} | {r['size_mb_nominal']:.2f} | "
                     f"{r['size_mb']:.2f} | {r['bits_avg']:.2f} | {100 * r['valid_accuracy']:.1f} | "
                     f"{100 * r['accuracy']:.1f} | {100 * r['f1_macro']:.1f} | "
                     f"{100 * r['drop_vs_teacher_valid']:.1f} / {100 * r['drop_vs_teacher_test']:.1f} | "
                     f"{100 * r['drop_vs_fp32_valid']:.1f} / {100 * r['drop_vs_fp32_test']:.1f} |")
    return "\n".join(lines)


def build_config(cache_dir: str, smoke: bool, max_train_clips: int | None) -> SweepConfig:
    probe = space_config("paper", cache_dir, smoke)
    arch_layers = 4  # tiny.en's encoder layers (the student of paper.yaml)
    overrides = [f"space={json.dumps(group_space(arch_layers))}"]
    if max_train_clips is not None:
        overrides.append(f"dataset.max_train_clips={max_train_clips}")
    if probe.student.pretrained != "whisper-tiny.en":
        raise SystemExit(f"paper.yaml's student is {probe.student.pretrained}; this bench groups tiny.en's 4 layers")
    return space_config("paper", cache_dir, smoke, tuple(overrides))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache-dir", required=True)
    parser.add_argument("--smoke", action="store_true", help="paper.yaml's CPU smoke settings and 3 rows")
    parser.add_argument("--max-train-clips", type=int, default=None, help="cap the training split (time budget)")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    start = time.perf_counter()
    config = build_config(args.cache_dir, args.smoke, args.max_train_clips)
    show_progress("stderr")
    prepared = prepare(config.run_config())
    LOGGER.setLevel(logging.WARNING)  # the rows report themselves below
    mixed = mixed_allocations(config, prepared)
    names = [str(b) for b in UNIFORM] + list(mixed)
    names = [n for n in names if n in SMOKE_ROWS] if args.smoke else names
    rows = {}
    for schedule, stages in schedules(args.smoke).items():
        for name in names:
            params = {**row_params(name, mixed), "training.schedule": stages}
            rows[f"{schedule}/{name}"] = train_row(config, prepared, params)
            print(f"{schedule}/{name}: valid {rows[f'{schedule}/{name}']['valid_accuracy']:.3f} "
                  f"({time.perf_counter() - start:.0f} s so far)", file=sys.stderr, flush=True)
    with_drops(rows, prepared.references)
    print(table(rows, prepared.references))
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"
    print(f"{time.perf_counter() - start:.0f} s on {device}", file=sys.stderr)
    if args.out:
        args.out.write_text(json.dumps({"device": device, "seconds": time.perf_counter() - start, "smoke": args.smoke,
                                        "references": prepared.references, "mixed": mixed, "rows": rows},
                                       indent=1) + "\n")


if __name__ == "__main__":
    main()

"""A distillation epoch with the cached teacher embeddings against running the teacher every step.

Run from the repository root:  python -m bench.teacher_cache [--quick] [--default] [--cache-dir DIR]   (CPU)
Uses the shipped space under --smoke (small synthetic corpus, the smoke teacher and student),
or with --default its default settings; everything is built on first use in --cache-dir. Both variants train the same pre-tuned
student for one epoch with the same loss (L_1 against the reduced teacher embedding + CE);
'cached' reads z_Ω from the on-disk cache like a trial does, 'live' computes it with the
teacher's forward pass on each batch. Runs alternate; prints one JSON object (medians).
"""
from __future__ import annotations

import argparse
import copy
import json
import statistics
import time

import torch

from bench.common import space_config
from quads_search.cache import cache_root
from quads_search.core.epochs import Feed, OptimSpec, make_optimizer, steps_per_epoch, train_epoch
from quads_search.core.losses import cross_entropy, l1_distill
from quads_search.core.prepare import prepare
from quads_search.core.teacher import WidthReducer, pretuned_teacher


def one_epoch(prepared, teacher, reducer, live: bool, batch_size: int) -> float:
    student = copy.deepcopy(prepared.student)
    spec = OptimSpec("adamw", 3e-4, 1e-3)
    optimizer, scheduler = make_optimizer(list(student.encoder.parameters()), list(student.head.parameters()), spec,
                                          steps_per_epoch(len(prepared.data.train), batch_size))
    train = prepared.data.train

    def step_loss(logits, z, labels, index):
        if live:
            with torch.no_grad():
                z_teacher = teacher.embed(train.features[index].float())
        else:
            z_teacher = prepared.teacher_z[index]
        return 0.05 * l1_distill(z, reducer(z_teacher)) + cross_entropy(logits, labels)

    start = time.perf_counter()
    train_epoch(student, Feed(train, batch_size, torch.Generator().manual_seed(0), torch.device("cpu")),
                step_loss, optimizer, scheduler)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 repeats instead of 5")
    parser.add_argument("--cache-dir", default="~/.cache/quads-search")
    parser.add_argument("--default", action="store_true", help="the default (not --smoke) corpus, teacher, student")
    args = parser.parse_args()
    config = space_config("mixed_precision", args.cache_dir, smoke=not args.default).run_config()
    prepared = prepare(config)
    teacher = pretuned_teacher(config, prepared.data, cache_root(config.cache_dir), torch.device("cpu")).model
    teacher.eval()
    reducer = WidthReducer(prepared.teacher_z.shape[1], prepared.student.width, config.teacher.reduce)
    times = {"cached": [], "live": []}
    for _ in range(2 if args.quick else 5):
        for mode in times:
            times[mode].append(one_epoch(prepared, teacher, reducer, mode == "live", config.training.batch_size))
    cached, live = statistics.median(times["cached"]), statistics.median(times["live"])
    print(json.dumps({"train_clips": len(prepared.data.train), "threads": torch.get_num_threads(),
                      "teacher_params_m": sum(p.numel() for p in teacher.parameters()) / 1e6,
                      "student_params_m": sum(p.numel() for p in prepared.student.parameters()) / 1e6,
                      "epoch_s": {"cached": round(cached, 3), "live": round(live, 3)},
                      "speedup": round(live / cached, 2), "runs": times}, indent=1))


if __name__ == "__main__":
    main()

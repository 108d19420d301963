"""Stage schedules: named presets, generated cycles, and per-stage optimizer defaults.

A schedule is an ordered list of stages run after the (cached) student pre-tuning:
  distill   float weights, loss from L_dis (no codebook active);
  quantize  cluster/calibrate at the stage start (or keep the grids: `cluster`,
            `quantization.clustering`), then train with quantized weights in every forward
            pass, as `quantization.kmeans_update` / `affine_scale` say; the stage ends with
            the weights on their grid (epochs 0 = post-training quantization);
  joint     weights train free under the full L (L_centroid pulls them to the codebook,
            which tracks its clusters after every step), snapped at the stage end.
"""
from __future__ import annotations

import dataclasses
from typing import get_args

from quads_search.config import (
    CycleSchedule,
    LossWeights,
    SchedulePreset,
    StageConfig,
    TrainingConfig,
)

# Optimizer settings per stage kind when a stage leaves them unset.
STAGE_DEFAULTS = {
    "pretune": dict(optimizer="adamw", lr=1e-3, head_lr=1e-3, momentum=0.9, cosine=True),
    "distill": dict(optimizer="adamw", lr=3e-4, head_lr=1e-3, momentum=0.9, cosine=True),
    # SGD at 0.03: chosen on validation, docs/decisions.md (the trial: quantize learning rate)
    "quantize": dict(optimizer="sgd", lr=0.03, head_lr=0.03, momentum=0.9, cosine=True),
    "joint": dict(optimizer="adamw", lr=3e-4, head_lr=1e-3, momentum=0.9, cosine=True),
}


def _authors(recluster: bool = False) -> list[StageConfig]:
    """The authors' train.py: 20 epochs, 1-3 and 7-12 distillation, the rest quantization.

    Their code clusters once, before epoch 1 (KMeansQuantizer is built before the epoch loop,
    which also snaps the weights), and never again: the later quantization epochs move the
    centroids of those labels to the mean of the distilled weights. A leading 0-epoch quantize
    stage reproduces that clustering (it adds no epoch, only a validation of the snapped
    student); the later quantize stages keep its grids (`cluster: false`). With `recluster`,
    every quantize stage re-clusters the distilled weights instead (`authors_recluster`).
    """
    distill = dict(stage="distill", optimizer="adam", lr=1e-5, head_lr=1e-3, cosine=False)
    quantize = dict(stage="quantize", optimizer="sgd", lr=0.01, head_lr=0.01, momentum=0.9, cosine=True,
                    cluster=recluster)
    stages = [StageConfig(epochs=3, **distill), StageConfig(epochs=3, **quantize),
              StageConfig(epochs=6, **distill), StageConfig(epochs=8, **quantize)]
    return stages if recluster else [StageConfig(epochs=0, **{**quantize, "cluster": True}), *stages]


SCHEDULE_PRESETS = {
    "authors": _authors,
    # The authors' epochs, but every quantize stage re-clusters the distilled weights.
    "authors_recluster": lambda: _authors(recluster=True),
    # A CPU-sized QUADS schedule: two distill/quantize cycles, ending quantized.
    "quads": lambda: cycles(CycleSchedule(cycles=2, distill=2, quantize=2)),
    # Baseline: distil fully, then quantize and fine-tune once (the sequential pipeline).
    "sequential": lambda: [StageConfig("distill", 4), StageConfig("quantize", 4)],
    # Baseline: post-training quantization of the pre-tuned student, no training.
    "ptq": lambda: [StageConfig("quantize", 0)],
    # QUADS with joint stages: distill, then train under the full L, then snap-and-retrain.
    "joint": lambda: [StageConfig("distill", 2), StageConfig("joint", 2), StageConfig("quantize", 2)],
}

assert set(SCHEDULE_PRESETS) == set(get_args(SchedulePreset)), "config.SchedulePreset must name every preset"


def cycles(spec: CycleSchedule) -> list[StageConfig]:
    """`spec.cycles` repetitions of distill, joint, quantize (stages of 0 epochs left out)."""
    one = [StageConfig(kind, n) for kind, n in (("distill", spec.distill), ("joint", spec.joint),
                                                ("quantize", spec.quantize)) if n > 0]
    return one * spec.cycles


def resolve_schedule(training: TrainingConfig) -> list[StageConfig]:
    """The schedule as explicit stages, every optimizer field and loss weight filled in."""
    if isinstance(training.schedule, str):
        stages = SCHEDULE_PRESETS[training.schedule]()
    elif isinstance(training.schedule, CycleSchedule):
        stages = cycles(training.schedule)
    else:
        stages = list(training.schedule)
    return [_filled(stage, training) for stage in stages]


def _filled(stage: StageConfig, training: TrainingConfig) -> StageConfig:
    unset = {k: v for k, v in STAGE_DEFAULTS[stage.stage].items() if getattr(stage, k) is None}
    loss = stage.loss or stage_loss(stage.stage, training)
    return dataclasses.replace(stage, loss=loss, **unset)


def stage_loss(kind: str, training: TrainingConfig) -> LossWeights:
    """Loss weights for a stage kind.

    paper:   L = γ·(α·L_1 + (1−α)·L_GT) + (1−γ)·(L_centroid + L_GT) in every stage
             (L_centroid is zero where no codebook is active, i.e. in distill stages), where
             L_GT = (1 − kd)·CE + kd·T²·KL(teacher ‖ student) on the intent logits (kd 0: the paper's);
    authors: 1e-6·L_1 + L_GT in distillation, L_GT alone in quantization.
    Pre-tuning is cross-entropy alone in both.
    """
    if kind == "pretune":
        return LossWeights(l1=0.0, ce=1.0, centroid=0.0)
    if training.loss == "authors":
        return LossWeights(l1=1e-6 if kind == "distill" else 0.0, ce=1.0, centroid=0.0)
    a, g, kd = training.alpha, training.gamma, training.kd
    ground_truth = g * (1 - a) + (1 - g)  # L_GT's weight, shared between labels and soft labels by kd
    return LossWeights(l1=g * a, ce=ground_truth * (1 - kd), centroid=1 - g, kd=ground_truth * kd)

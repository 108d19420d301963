"""The frozen teacher's side of distillation: cached embeddings and the width reduction.

The teacher is frozen, so its pooled embedding of every training clip is computed once
(cached on disk) and a trial never runs the teacher's forward pass. SpecAugment, where
enabled, applies to the student's input only; the teacher embeds the clean clip.
"""
from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from quads_search.cache import cached_dir, digest, write_json
from quads_search.config import RunConfig
from quads_search.core.epochs import embeddings
from quads_search.core.pretune import FORMAT, FitSettings, Pretuned, SoftTargets, frozen_embeddings, pretuned_model
from quads_search.data import FeatureData

logger = logging.getLogger(__name__)


def pretuned_teacher(cfg: RunConfig, data: FeatureData, cache: Path, device: torch.device) -> Pretuned:
    """The task-tuned teacher Ω for this run's teacher settings and data (built once, cached)."""
    return pretuned_model("teacher", cfg.teacher, data, cache, FitSettings.of(cfg, device))


def teacher_embeddings(cfg: RunConfig, data: FeatureData, cache: Path,
                       device: torch.device) -> tuple[torch.Tensor, dict]:
    """z_Ω of every training clip, [N_train, teacher width], and the teacher's pre-tuning record.

    Both come from one cache entry, so a trial gets them without loading the teacher.
    """
    key = _teacher_key(cfg, data)

    def build(out: Path) -> None:
        teacher = pretuned_teacher(cfg, data, cache, device)
        z = frozen_embeddings(teacher, "train")
        if z is None:
            logger.info("computing the teacher's embeddings of the training split (once)")
            z = embeddings(teacher.model, data.train, cfg.training.eval_batch_size, device)
        save_file({"z": z.contiguous()}, str(out / "z.safetensors"))
        write_json(out / "record.json", teacher.record)

    entry = cached_dir(cache, "teacher-embeddings", key, build)
    return load_file(str(entry / "z.safetensors"))["z"], json.loads((entry / "record.json").read_text())


def _teacher_key(cfg: RunConfig, data: FeatureData) -> str:
    settings = (dataclasses.asdict(cfg.teacher), cfg.training.seed, cfg.training.batch_size, cfg.dataset.spec_augment)
    return digest(FORMAT, "teacher-z", settings, data.key)


@torch.no_grad()
def teacher_soft_targets(cfg: RunConfig, data: FeatureData, cache: Path, teacher_z: torch.Tensor) -> SoftTargets:
    """The teacher's intent logits of every training clip: its head over the cached embeddings
    (the teacher's forward pass is not run again)."""
    head = pretuned_teacher(cfg, data, cache, torch.device("cpu")).model.head
    return SoftTargets(head(teacher_z.cpu().float()), _teacher_key(cfg, data))


def maxpool_dilation(teacher_width: int, student_width: int) -> int | None:
    """The dilation d for which MaxPool1d(3, stride 2, dilation d) maps teacher to student width.

    The authors' code uses d = 128 for 1280 -> 512. None where no dilation fits.
    """
    for d in range(1, teacher_width):
        out = (teacher_width - 2 * d - 1) // 2 + 1
        if out == student_width:
            return d
        if out < student_width:
            return None
    return None


class WidthReducer(nn.Module):
    """Maps z_Ω to the student's width: the authors' dilated max-pool where it fits, else linear."""

    def __init__(self, teacher_width: int, student_width: int, method: str):
        super().__init__()
        self.dilation = maxpool_dilation(teacher_width, student_width) if method == "maxpool" else None
        self.identity = teacher_width == student_width
        self.pool = nn.MaxPool1d(3, stride=2, dilation=self.dilation) if self.dilation else None
        self.project = None if (self.pool or self.identity) else nn.Linear(teacher_width, student_width)

    @property
    def kind(self) -> str:
        return "identity" if self.identity else "maxpool" if self.pool else "linear"

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if self.identity:
            return z
        if self.pool is not None:
            return self.pool(z.unsqueeze(1)).squeeze(1)
        return self.project(z)

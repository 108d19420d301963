"""Everything trials share, built once and cached: features, the teacher's embeddings and soft
labels, the pre-tuned student, and the references every trial is measured against.

A sweep worker keeps one `Prepared` across its trials while `prepare_key` stays the same.
"""
from __future__ import annotations

import dataclasses
import logging

import torch

from quads_search.cache import cache_root, digest
from quads_search.config import RunConfig
from quads_search.core.models import SLUModel
from quads_search.core.planned import meta_model
from quads_search.core.pretune import FitSettings, pretuned_model
from quads_search.core.profile import cost_report
from quads_search.core.teacher import teacher_embeddings, teacher_soft_targets
from quads_search.data import FeatureData, FeatureSplit, load_features

logger = logging.getLogger(__name__)


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("training.device is 'cuda' but no CUDA device is available")
    return torch.device(name)


@dataclasses.dataclass
class Prepared:
    """Everything a run needs before its schedule starts; all of it comes from caches."""

    data: FeatureData
    teacher_z: torch.Tensor
    student: SLUModel
    pretune_record: dict
    device: torch.device
    references: dict  # the fp32 teacher and pre-tuned student: what compression is measured against
    teacher_logits: torch.Tensor | None = None  # of the training clips, where soft labels are learned from


HELD_OUT_REFERENCES = ("teacher_accuracy", "student_fp32_accuracy")


def references(cfg: RunConfig, teacher_record: dict, student: SLUModel, student_record: dict, frames: int) -> dict:
    """The teacher's and the fp32 pre-tuned student's valid and test accuracy (test is only reported),
    fp32 size (MiB), GMACs and params (M), as `teacher_*` and `student_fp32_*`."""
    teacher = meta_model(cfg.teacher, frames, cfg.cache_dir, student.num_classes)
    out = {}
    for role, model, record in (("teacher", teacher, teacher_record), ("student_fp32", student, student_record)):
        costs = cost_report(model, {}, frames)
        out.update({f"{role}_accuracy": record["test"]["accuracy"], f"{role}_valid_accuracy": record["valid"]["accuracy"],
                    f"{role}_size_mb": costs["size_mb"], f"{role}_gmacs": costs["gmacs"],
                    f"{role}_params_m": costs["params_m"]})
    return out


def prepare(cfg: RunConfig) -> Prepared:
    """Corpus, features, pre-tuned teacher and its embeddings, pre-tuned student: built once, cached."""
    device = pick_device(cfg.training.device)
    cache = cache_root(cfg.cache_dir)
    logger.info(f"dataset: {cfg.dataset.kind} (a synthetic corpus is generated on first use), "
                f"features cached in {cache}")
    data = load_features(cfg.dataset, cache)
    teacher_z, teacher_record = teacher_embeddings(cfg, data, cache, device)
    soft = teacher_soft_targets(cfg, data, cache, teacher_z) if learns_soft_labels(cfg) else None
    student = pretuned_model("student", cfg.student, data, cache, FitSettings.of(cfg, device), soft)
    refs = references(cfg, teacher_record, student.model, student.record, data.train.features.shape[-1])
    shown = {k: v for k, v in refs.items() if k not in HELD_OUT_REFERENCES}  # test stays out of sight in logs
    logger.info("references: " + ", ".join(f"{k} {v:.4g}" for k, v in shown.items()))
    data, teacher_z = on_device(data, teacher_z, device)
    logits = soft.logits.to(teacher_z.device) if soft is not None else None
    return Prepared(data, teacher_z, student.model, student.record, device, refs, logits)


def learns_soft_labels(cfg: RunConfig) -> bool:
    """Whether pre-tuning or the stages learn from the teacher's intent logits."""
    return bool(cfg.student.pretune.kd or cfg.training.kd)


GPU_SHARE = 0.25  # the features may take at most this share of a GPU's free memory


def on_device(data: FeatureData, teacher_z: torch.Tensor, device: torch.device) -> tuple[FeatureData, torch.Tensor]:
    """Features, labels and teacher embeddings moved to a GPU once, so that a trial's batches are
    drawn there instead of being copied one by one; where they would take more than GPU_SHARE of
    its free memory (trials share a GPU) they stay in host memory, and the log says so."""
    if device.type != "cuda":
        return data, teacher_z
    splits = {name: getattr(data, name) for name in ("train", "valid", "test")}
    need = sum(s.features.numel() * s.features.element_size() for s in splits.values())
    free, _ = torch.cuda.mem_get_info(device)
    if need > GPU_SHARE * free:
        logger.info(f"features ({need / 2**30:.2f} GiB) stay in host memory: over {GPU_SHARE:.0%} of the GPU's "
                    f"{free / 2**30:.1f} GiB free; batches are copied as they are drawn")
        return data, teacher_z
    moved = {name: FeatureSplit(s.features.to(device), s.labels.to(device), s.speakers) for name, s in splits.items()}
    return dataclasses.replace(data, **moved), teacher_z.to(device)


def prepare_key(cfg: RunConfig) -> str:
    """Equal keys mean `prepare(cfg)` returns the same data and models (a worker may keep one)."""
    t = cfg.training
    return digest(cfg.dataset, cfg.teacher, cfg.student, cfg.cache_dir, t.seed, t.batch_size, t.device,
                  t.eval_batch_size, learns_soft_labels(cfg))

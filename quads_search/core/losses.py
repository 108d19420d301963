"""The QUADS losses. Each stage combines them with its `LossWeights` (see schedule.py)."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from quads_search.config import LossWeights


def l1_distill(student_z: torch.Tensor, teacher_z: torch.Tensor) -> torch.Tensor:
    """L_1: ||z_Ω − z_Φ||_1 per example (summed over features), averaged over the batch.

    The batch mean (rather than the paper's sum over examples) keeps the weight's meaning
    independent of the batch size.
    """
    return (teacher_z - student_z).abs().sum(dim=1).mean()


def cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """L_GT: cross-entropy of the intent logits against the labels."""
    return F.cross_entropy(logits, labels)


def soft_cross_entropy(logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """Hinton's knowledge distillation: T² · KL(softmax(teacher / T) ‖ softmax(student / T)), batch mean.

    T² keeps the gradient's scale comparable with L_GT's as T changes.
    """
    student = F.log_softmax(logits / temperature, dim=1)
    teacher = F.log_softmax(teacher_logits / temperature, dim=1)
    return F.kl_div(student, teacher, log_target=True, reduction="batchmean") * temperature ** 2


def combine(weights: LossWeights, *, l1: torch.Tensor | None, ce: torch.Tensor,
            centroid: torch.Tensor | None, kd: torch.Tensor | None = None) -> torch.Tensor:
    """w_l1·L_1 + w_ce·CE + w_centroid·L_centroid + w_kd·KD, skipping terms with zero weight or no value."""
    total = weights.ce * ce
    for weight, term in ((weights.l1, l1), (weights.centroid, centroid), (weights.kd, kd)):
        if weight and term is not None:
            total = total + weight * term
    return total

"""Metric names every run reports, and the classification metrics themselves."""
from __future__ import annotations

import torch

# What a finished run reports (sweep objectives and constraints must come from here).
METRIC_NAMES = ("accuracy", "f1_macro", "valid_accuracy", "valid_f1_macro", "size_mb", "size_mb_nominal",
                "gmacs", "gbitops", "params_m", "bits_avg")


def accuracy(predictions: torch.Tensor, labels: torch.Tensor) -> float:
    return (predictions == labels).double().mean().item()


def f1_macro(predictions: torch.Tensor, labels: torch.Tensor, num_classes: int) -> float:
    """Macro F1 over the classes present in labels or predictions (as scikit-learn counts it)."""
    index = labels * num_classes + predictions
    confusion = torch.bincount(index, minlength=num_classes * num_classes).view(num_classes, num_classes).double()
    tp = confusion.diag()
    support, predicted = confusion.sum(1), confusion.sum(0)
    present = (support + predicted) > 0
    f1 = torch.where(present, 2 * tp / (support + predicted).clamp(min=1), torch.zeros_like(tp))
    return (f1[present].sum() / present.sum()).item()

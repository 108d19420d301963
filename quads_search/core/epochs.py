"""The pieces of a training loop every stage shares: optimizers, batches, one epoch, evaluation."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Iterator

import torch
from torch import nn

from quads_search.data import FeatureSplit, spec_augment
from quads_search.errors import UserError


class NonFiniteLoss(FloatingPointError):
    """The loss became NaN or inf: the trial is failed rather than trained on garbage."""


def is_training_fault(exc: BaseException) -> bool:
    """Faults of the configuration being trained (the trial failed), as opposed to bugs in the code.

    The one classification the sweep and the Ray-free benches share."""
    if isinstance(exc, (NonFiniteLoss, MemoryError, torch.OutOfMemoryError, UserError)):
        return True
    return isinstance(exc, RuntimeError) and any(s in str(exc) for s in ("allocate", "out of memory"))


@dataclass(frozen=True)
class OptimSpec:
    """What `make_optimizer` needs; StageConfig and PretuneConfig both provide it."""

    optimizer: str
    lr: float
    head_lr: float
    momentum: float = 0.9
    cosine: bool = True
    warmup_steps: int = 0  # linear warm-up from ~0 before the cosine (or constant) schedule


def make_optimizer(encoder_params: list[nn.Parameter], head_params: list[nn.Parameter], spec: OptimSpec,
                   total_steps: int) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]:
    """Two parameter groups (encoder at `lr`, head at `head_lr`) and a cosine or constant schedule,
    after `spec.warmup_steps` of linear warm-up where set."""
    groups = [{"params": encoder_params, "lr": spec.lr}, {"params": head_params, "lr": spec.head_lr}]
    if spec.optimizer == "sgd":
        optimizer = torch.optim.SGD(groups, momentum=spec.momentum)
    elif spec.optimizer == "adam":
        optimizer = torch.optim.Adam(groups)
    else:
        optimizer = torch.optim.AdamW(groups, weight_decay=0.01)
    if spec.warmup_steps:
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _warmup_then(spec, total_steps))
    elif spec.cosine:
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(total_steps, 1))
    else:
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    return optimizer, scheduler


def _warmup_then(spec: OptimSpec, total_steps: int) -> Callable[[int], float]:
    """The learning-rate factor at a step: linear warm-up, then cosine annealing to 0 (or constant)."""
    warm = spec.warmup_steps

    def factor(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        if not spec.cosine:
            return 1.0
        return 0.5 * (1 + math.cos(math.pi * (step - warm) / max(total_steps - warm, 1)))

    return factor


def batches(n: int, batch_size: int, generator: torch.Generator | None) -> Iterator[torch.Tensor]:
    """Index batches: shuffled with `generator`, in order without one."""
    order = torch.randperm(n, generator=generator) if generator is not None else torch.arange(n)
    yield from order.split(batch_size)


def steps_per_epoch(n: int, batch_size: int) -> int:
    return math.ceil(n / batch_size)


@dataclass(frozen=True)
class Feed:
    """What a training epoch walks: `split` in batches shuffled by `generator`, moved to `device`,
    SpecAugment-ed where `augment`."""

    split: FeatureSplit
    batch_size: int
    generator: torch.Generator
    device: torch.device
    augment: bool = False


def train_epoch(model: nn.Module, feed: Feed,
                step_loss: Callable[[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor],
                optimizer: torch.optim.Optimizer, scheduler: torch.optim.lr_scheduler.LRScheduler,
                after_step: Callable[[], None] | None = None) -> float:
    """One pass over `feed`; `step_loss(logits, z, labels, index)` gives the loss. Returns its mean."""
    model.train()
    total, count = 0.0, 0
    for index in batches(len(feed.split), feed.batch_size, feed.generator):
        features = feed.split.features[index].to(feed.device).float()
        if feed.augment:
            features = spec_augment(features, feed.generator)
        labels = feed.split.labels[index].to(feed.device)
        logits, z = model(features)
        loss = step_loss(logits, z, labels, index)
        if not torch.isfinite(loss):
            raise NonFiniteLoss(f"loss became {loss.item()} after {count} batches")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        if after_step is not None:
            after_step()
        total, count = total + loss.item() * len(index), count + len(index)
    return total / max(count, 1)


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


@torch.no_grad()
def predict(model: nn.Module, split: FeatureSplit, batch_size: int, device: torch.device) -> torch.Tensor:
    """Predicted class of every example, in order."""
    model.eval()
    out = [model(split.features[index].to(device).float())[0].argmax(dim=1).cpu()
           for index in batches(len(split), batch_size, None)]
    return torch.cat(out) if out else torch.empty(0, dtype=torch.long)


@torch.no_grad()
def embeddings(model: nn.Module, split: FeatureSplit, batch_size: int, device: torch.device) -> torch.Tensor:
    """The pooled embedding z of every example, in order, on the CPU."""
    model.eval()
    return torch.cat([model(split.features[index].to(device).float())[1].cpu()
                      for index in batches(len(split), batch_size, None)])


def evaluate(model: nn.Module, split: FeatureSplit, batch_size: int, device: torch.device,
             num_classes: int) -> dict[str, float]:
    """Accuracy and macro F1 on `split`."""
    predictions, labels = predict(model, split, batch_size, device), split.labels.cpu()
    return {"accuracy": accuracy(predictions, labels), "f1_macro": f1_macro(predictions, labels, num_classes)}

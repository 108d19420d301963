"""Task pre-tuning of the teacher and the student, done once and cached.

QUADS starts from a pre-tuned model: trials never train from scratch. The cache key
holds everything the weights depend on (model, pre-tuning settings, data, seed), so every
trial and later run with the same inputs loads the same checkpoint.

`pretune.train: all` fine-tunes encoder and head; `head` keeps the (pretrained) encoder
frozen: its pooled embeddings of every split are computed once and stored beside the
weights, and only the linear head is fitted on them, which takes seconds.
"""
from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from quads_search.cache import cached_dir, digest, write_json
from quads_search.config import ModelConfig, PretuneConfig, RunConfig
from quads_search.core.epochs import (
    Feed,
    OptimSpec,
    embeddings,
    evaluate,
    make_optimizer,
    steps_per_epoch,
    train_epoch,
)
from quads_search.core.losses import cross_entropy, soft_cross_entropy
from quads_search.core.models import SLUModel, build_model, dropout_set_to, model_from_arch
from quads_search.data import SPLITS, FeatureData, FeatureSplit

logger = logging.getLogger(__name__)

FORMAT = 2  # bump when what a pre-tuned entry holds changes
EMBEDDINGS = "embeddings.safetensors"  # frozen-encoder entries: z of every split


@dataclasses.dataclass
class Pretuned:
    """A pre-tuned model, its record (history, valid and test metrics) and its cache entry."""

    model: SLUModel
    record: dict
    directory: Path


@dataclasses.dataclass(frozen=True)
class FitSettings:
    """How a run pre-tunes, shared by teacher and student (what it learns is in `PretuneConfig`).

    `eval_batch_size` only batches evaluation, so it is not part of a cache key."""

    seed: int
    batch_size: int
    eval_batch_size: int
    augment: bool
    device: torch.device

    @classmethod
    def of(cls, cfg: RunConfig, device: torch.device) -> FitSettings:
        t = cfg.training
        return cls(t.seed, t.batch_size, t.eval_batch_size, cfg.dataset.spec_augment, device)


@dataclasses.dataclass(frozen=True)
class SoftTargets:
    """The teacher's intent logits of every training clip, and a key naming where they came from."""

    logits: torch.Tensor  # [N_train, classes]
    key: str


def pretuned_model(role: str, model_cfg: ModelConfig, data: FeatureData, cache: Path, fit: FitSettings,
                   soft_targets: SoftTargets | None = None) -> Pretuned:
    """The task-tuned model for (`model_cfg` with its `pretune`, data, seed), built once and cached.

    `soft_targets` (the teacher's logits) are learned from where `pretune.kd` > 0.
    """
    frames, pretune = data.train.features.shape[-1], model_cfg.pretune
    if pretune.kd and soft_targets is None:
        raise ValueError(f"the {role}'s pretune.kd is {pretune.kd}, but no soft targets were given")
    teacher_key = soft_targets.key if pretune.kd else None
    key = digest(FORMAT, role, dataclasses.asdict(model_cfg), dataclasses.asdict(pretune), data.key, fit.seed,
                 fit.batch_size, fit.augment, teacher_key)

    def build(out: Path) -> None:
        torch.manual_seed(fit.seed)
        model = build_model(model_cfg, len(data.intents), frames, cache_dir=cache).to(fit.device)
        logger.info(f"pre-tuning the {role} ({sum(p.numel() for p in model.parameters()) / 1e6:.2f} M params, "
                    f"{pretune.epochs} epochs, training {pretune.train}); cached for later runs")
        fitter = fit_head_on_frozen_encoder if pretune.train == "head" else fit_cross_entropy
        record = fitter(model, data, pretune, fit, role, out=out,
                        soft_targets=soft_targets if pretune.kd else None)
        save_file({k: v.contiguous().cpu() for k, v in model.state_dict().items()}, str(out / "model.safetensors"))
        write_json(out / "model.json", {"arch": model.arch, "num_classes": model.num_classes, "record": record})

    path = cached_dir(cache, f"pretuned-{role}", key, build)
    meta = json.loads((path / "model.json").read_text())
    model = model_from_arch(meta["arch"], meta["num_classes"])
    model.load_state_dict(load_file(str(path / "model.safetensors")))
    return Pretuned(model.to(fit.device), meta["record"], path)


def _final_record(model: torch.nn.Module, valid: FeatureSplit, test: FeatureSplit, classes: int,
                  history: list[dict], device: torch.device, eval_batch_size: int) -> dict:
    """The history plus final valid and test metrics (test is reported as a reference, never used)."""
    return {"history": history, "valid": evaluate(model, valid, eval_batch_size, device, classes),
            "test": evaluate(model, test, eval_batch_size, device, classes)}


def fit_cross_entropy(model: SLUModel, data: FeatureData, pretune: PretuneConfig, fit: FitSettings, role: str,
                      out: Path | None = None, soft_targets: SoftTargets | None = None) -> dict:
    """Train encoder and head on L_GT (and the teacher's soft labels, where `pretune.kd` > 0) for
    `pretune.epochs`, at `pretune.dropout` where set; the per-epoch history and final metrics.
    Progress lines start with `role`."""
    batch_size, device, eval_batch_size = fit.batch_size, fit.device, fit.eval_batch_size
    per_epoch = steps_per_epoch(len(data.train), batch_size)
    spec = OptimSpec(pretune.optimizer, pretune.lr, pretune.head_lr, cosine=pretune.cosine,
                     warmup_steps=round(pretune.warmup * per_epoch))
    optimizer, scheduler = make_optimizer(list(model.encoder.parameters()), list(model.head.parameters()),
                                          spec, pretune.epochs * per_epoch)
    generator = torch.Generator().manual_seed(fit.seed)
    teacher = soft_targets.logits.to(device) if soft_targets is not None else None

    def step_loss(logits: torch.Tensor, z: torch.Tensor, labels: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        ce = cross_entropy(logits, labels)
        if teacher is None:
            return ce
        soft = soft_cross_entropy(logits, teacher[index.to(device)], pretune.kd_temperature)
        return (1 - pretune.kd) * ce + pretune.kd * soft

    history = []
    with dropout_set_to(model, pretune.dropout):  # evaluation runs in eval mode: no dropout there
        for epoch in range(pretune.epochs):
            loss = train_epoch(model, Feed(data.train, batch_size, generator, device, fit.augment), step_loss,
                               optimizer, scheduler)
            valid = evaluate(model, data.valid, eval_batch_size, device, len(data.intents))
            history.append({"epoch": epoch + 1, "loss": loss, **{f"valid_{k}": v for k, v in valid.items()}})
            logger.info(f"{role} epoch {epoch + 1}/{pretune.epochs} loss {loss:.3f} valid acc {valid['accuracy']:.3f}")
    return _final_record(model, data.valid, data.test, len(data.intents), history, device, eval_batch_size)


def fit_head_on_frozen_encoder(model: SLUModel, data: FeatureData, pretune: PretuneConfig, fit: FitSettings,
                               role: str, out: Path | None = None, soft_targets: SoftTargets | None = None) -> dict:
    """Embed every split once with the frozen encoder, then fit the linear head on the embeddings.

    SpecAugment does not apply: the encoder sees each clip once. The embeddings are written
    to `out` so the teacher's distillation targets need no second pass. Progress lines start with `role`.
    """
    logger.info(f"{role} embedding every split with the frozen encoder (once)")
    batch_size, device, eval_batch_size = fit.batch_size, fit.device, fit.eval_batch_size
    z = {name: embeddings(model, getattr(data, name), eval_batch_size, device) for name in SPLITS}
    if out is not None:
        save_file({name: t.contiguous() for name, t in z.items()}, str(out / EMBEDDINGS))
    head = model.head
    optimizer, scheduler = make_optimizer([], list(head.parameters()),
                                          OptimSpec(pretune.optimizer, pretune.lr, pretune.head_lr,
                                                    cosine=pretune.cosine),
                                          pretune.epochs * steps_per_epoch(len(data.train), batch_size))
    generator = torch.Generator().manual_seed(fit.seed)
    pooled = {name: FeatureSplit(z[name], getattr(data, name).labels, getattr(data, name).speakers) for name in SPLITS}
    history = []
    for epoch in range(pretune.epochs):
        loss = train_epoch(_HeadOnly(head), Feed(pooled["train"], batch_size, generator, device),
                           lambda logits, _, labels, index: cross_entropy(logits, labels), optimizer, scheduler)
        valid = evaluate(_HeadOnly(head), pooled["valid"], eval_batch_size, device, len(data.intents))
        history.append({"epoch": epoch + 1, "loss": loss, **{f"valid_{k}": v for k, v in valid.items()}})
    logger.info(f"{role} head fitted for {pretune.epochs} epochs: valid acc {history[-1]['valid_accuracy']:.3f}"
                if history else f"{role} no head epochs: the head stays as initialised")
    return _final_record(_HeadOnly(head), pooled["valid"], pooled["test"], len(data.intents), history, device,
                         eval_batch_size)


class _HeadOnly(torch.nn.Module):
    """The head applied to precomputed embeddings, shaped like a model: (logits, z)."""

    def __init__(self, head: torch.nn.Linear):
        super().__init__()
        self.head = head

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.head(z), z


def frozen_embeddings(pretuned: Pretuned, split: str) -> torch.Tensor | None:
    """The stored encoder embeddings of `split` for a frozen-encoder entry, else None."""
    path = pretuned.directory / EMBEDDINGS
    return load_file(str(path))[split] if path.is_file() else None

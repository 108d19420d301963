"""Task pre-tuning of the teacher and the student, done once and cached.

QUADS starts from a pre-tuned model: trials never train from scratch. The cache key
holds everything the weights depend on (model, pre-tuning settings, data, seed), so every
trial and later run with the same inputs loads the same checkpoint.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Callable

import torch
from safetensors.torch import load_file, save_file

from quads_search.cache import cached_dir, digest, write_json
from quads_search.config import ModelConfig, PretuneConfig
from quads_search.data import FeatureData
from quads_search.loop import OptimSpec, evaluate, make_optimizer, steps_per_epoch, train_epoch
from quads_search.losses import cross_entropy
from quads_search.models import SLUModel, build_model, model_from_arch

Log = Callable[[str], None]


def pretuned_model(role: str, model_cfg: ModelConfig, pretune: PretuneConfig, data: FeatureData,
                   cache: Path, *, seed: int, batch_size: int, augment: bool, device: torch.device,
                   log: Log) -> tuple[SLUModel, dict]:
    """The task-tuned model for (`model_cfg`, `pretune`, data, seed) and its pre-tuning record."""
    frames = data.train.features.shape[-1]
    key = digest(role, dataclasses.asdict(model_cfg), dataclasses.asdict(pretune), data.key, seed,
                 batch_size, augment)

    def build(out: Path) -> None:
        torch.manual_seed(seed)
        model = build_model(model_cfg, len(data.intents), frames, cache).to(device)
        log(f"pre-tuning the {role} ({sum(p.numel() for p in model.parameters()) / 1e6:.2f} M params, "
            f"{pretune.epochs} epochs); cached for later runs")
        record = fit_cross_entropy(model, data, pretune, seed=seed, batch_size=batch_size, augment=augment,
                                   device=device, log=lambda m: log(f"{role} {m}"))
        save_file({k: v.contiguous().cpu() for k, v in model.state_dict().items()}, str(out / "model.safetensors"))
        write_json(out / "model.json", {"arch": model.arch, "num_classes": model.num_classes, "record": record})

    path = cached_dir(cache, f"pretuned-{role}", key, build)
    meta = json.loads((path / "model.json").read_text())
    model = model_from_arch(meta["arch"], meta["num_classes"])
    model.load_state_dict(load_file(str(path / "model.safetensors")))
    return model.to(device), meta["record"]


def fit_cross_entropy(model: SLUModel, data: FeatureData, pretune: PretuneConfig, *, seed: int, batch_size: int,
                      augment: bool, device: torch.device, log: Log, eval_batch_size: int = 128) -> dict:
    """Train with L_GT alone for `pretune.epochs`; returns the per-epoch history and final valid metrics."""
    spec = OptimSpec(pretune.optimizer, pretune.lr, pretune.head_lr, cosine=pretune.cosine)
    total = pretune.epochs * steps_per_epoch(len(data.train), batch_size)
    optimizer, scheduler = make_optimizer(list(model.encoder.parameters()), list(model.head.parameters()),
                                          spec, total)
    generator = torch.Generator().manual_seed(seed)
    history = []
    for epoch in range(pretune.epochs):
        loss = train_epoch(model, data.train, batch_size, generator, device, augment,
                           lambda logits, z, labels, index: cross_entropy(logits, labels), optimizer, scheduler)
        valid = evaluate(model, data.valid, eval_batch_size, device, len(data.intents))
        history.append({"epoch": epoch + 1, "loss": loss, **{f"valid_{k}": v for k, v in valid.items()}})
        log(f"epoch {epoch + 1}/{pretune.epochs} loss {loss:.3f} valid acc {valid['accuracy']:.3f}")
    return {"history": history, "valid": history[-1] if history else None}

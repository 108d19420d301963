"""One QUADS run, end to end, in plain PyTorch (no Ray): what every sweep trial executes.

  1-2. what trials share (`core.prepare`): features, the teacher's embeddings and the pre-tuned
       student, all cached
  3. the schedule's stages in order (distill / quantize / joint), a checkpoint after each
  4. post-training quantization if the schedule ended unquantized, then test metrics, costs,
     packed export
Between stages the student is always a plain module: a quantize stage ends by writing its
quantized weights into plain parameters (`Quantizer.end`), so checkpoints, the next stage
and the export never see a parametrization.
"""
from __future__ import annotations

import contextlib
import copy
import json
import logging
import time
from pathlib import Path
from typing import Callable, Iterator

import torch
from safetensors.torch import load_file, save_file

from quads_search.cache import write_json
from quads_search.config import RunConfig, StageConfig, to_dict
from quads_search.core.epochs import (
    Feed,
    OptimSpec,
    evaluate,
    make_optimizer,
    steps_per_epoch,
    train_epoch,
)
from quads_search.core.export import save_model
from quads_search.core.losses import combine, cross_entropy, l1_distill, soft_cross_entropy
from quads_search.core.prepare import Prepared, prepare
from quads_search.core.profile import cost_report
from quads_search.core.quantizer import make_quantizer
from quads_search.core.schedule import resolve_schedule
from quads_search.core.teacher import WidthReducer
from quads_search.metrics import relative_drop
from quads_search.quant import Quantizer
from quads_search.quant.latent import parametrized_names

logger = logging.getLogger(__name__)

StageCallback = Callable[[dict, Callable[[Path], None]], None]


class QuadsRun:
    """The state of one run between stages: student, quantizer, reducer, history."""

    def __init__(self, cfg: RunConfig, prepared: Prepared):
        self.cfg, self.prepared = cfg, prepared
        self.stages = resolve_schedule(cfg.training)
        self.model = copy.deepcopy(prepared.student)  # the shared pre-tuned student stays untouched
        torch.manual_seed(cfg.training.seed)
        self.reducer = WidthReducer(prepared.teacher_z.shape[1], self.model.width, cfg.teacher.reduce).to(prepared.device)
        if cfg.teacher.reduce != self.reducer.kind and not self.reducer.identity:
            logger.info(f"teacher.reduce: {cfg.teacher.reduce} cannot map width {prepared.teacher_z.shape[1]} to "
                        f"{self.model.width}; a trainable linear projection is used instead")
        self.quantizer: Quantizer = make_quantizer(self.model, cfg.quantization)
        self.active = False  # weights live on the quantizer's grid (or are pulled to it)
        self.history: list[dict] = []

    # -- stages --------------------------------------------------------------------------
    def run_stage(self, index: int) -> dict:
        stage = self.stages[index]
        start = time.perf_counter()
        if stage.stage in ("quantize", "joint"):
            self._fit_grids(stage.cluster)
            self.active = True
        elif stage.stage in ("distill", "pretune"):
            self.active = False
        if stage.stage == "quantize":
            self.quantizer.begin()
        loss = self._train(stage, index) if stage.epochs else float("nan")
        if stage.stage == "quantize":
            self.quantizer.end()
        elif stage.stage == "joint":
            self.quantizer.snap()
        valid = evaluate(self.model, self.prepared.data.valid, self.cfg.training.eval_batch_size, self.prepared.device,
                         len(self.prepared.data.intents))
        record = {"stage": index + 1, "kind": stage.stage, "epochs": stage.epochs, "loss": loss,
                  "valid_accuracy": valid["accuracy"], "valid_f1_macro": valid["f1_macro"],
                  "quantized": self.active, "seconds": time.perf_counter() - start}
        self.history.append(record)
        logger.info(f"stage {index + 1}/{len(self.stages)} {stage.stage:8s} loss {loss:.4f} "
                    f"valid acc {valid['accuracy']:.3f} ({record['seconds']:.1f} s)")
        return record

    def _fit_grids(self, cluster: bool | None) -> None:
        """Cluster / calibrate at the start of a quantized stage, or keep the grids.

        `cluster` (the stage's own setting) decides; unset, `quantization.clustering` does:
        `every_stage` re-fits whenever float (distill) training came before, `once` never
        re-fits. The first quantized stage always fits: there is nothing to keep.
        """
        if cluster is None:
            cluster = self.cfg.quantization.clustering == "every_stage" and not self.active
        if cluster or not self.quantizer.fitted:
            self.quantizer.fit()

    def _train(self, stage: StageConfig, index: int) -> float:
        spec = OptimSpec(stage.optimizer, stage.lr, stage.head_lr, stage.momentum, stage.cosine)
        train = self.prepared.data.train
        head = list(self.model.head.parameters()) + list(self.reducer.parameters())
        optimizer, scheduler = make_optimizer(list(self.model.encoder.parameters()), head, spec,
                                              stage.epochs * steps_per_epoch(len(train), self.cfg.training.batch_size))
        generator = torch.Generator().manual_seed(self.cfg.training.seed * 1000 + index)
        weights, teacher_z = stage.loss, self.prepared.teacher_z.to(self.prepared.device)

        teacher_logits = self.prepared.teacher_logits

        def step_loss(logits, z, labels, batch_index):
            index = batch_index.to(self.prepared.device)
            l1 = l1_distill(z, self.reducer(teacher_z[index])) if weights.l1 else None
            centroid = self.quantizer.centroid_loss() if (self.active and weights.centroid) else None
            kd = (soft_cross_entropy(logits, teacher_logits[index], self.cfg.training.kd_temperature)
                  if weights.kd else None)
            return combine(weights, l1=l1, ce=cross_entropy(logits, labels), centroid=centroid, kd=kd)

        after = {"quantize": self.quantizer.step, "joint": self.quantizer.update_codebooks}.get(stage.stage)
        loss = float("nan")
        for epoch in range(stage.epochs):
            feed = Feed(train, self.cfg.training.batch_size, generator, self.prepared.device, self.cfg.dataset.spec_augment)
            loss = train_epoch(self.model, feed, step_loss, optimizer, scheduler, after)
            logger.info(f"  {stage.stage} epoch {epoch + 1}/{stage.epochs} loss {loss:.4f}")
        return loss

    def run_stages(self, on_stage_end: StageCallback | None = None) -> None:
        """Every stage not yet done, in order; `on_stage_end(record, save)` after each."""
        for index in range(len(self.history), len(self.stages)):
            record = self.run_stage(index)
            if on_stage_end is not None:
                on_stage_end(record, self.save)

    # -- checkpoints ---------------------------------------------------------------------
    def save(self, directory: Path) -> None:
        """Write the state after the stages done so far (safetensors + JSON, no pickle)."""
        left = parametrized_names(self.model)
        if left:
            raise RuntimeError(f"a checkpoint holds plain weights only, but {left[:3]} are parametrized: "
                               "save between stages")
        directory.mkdir(parents=True, exist_ok=True)
        tensors = {f"model.{k}": v for k, v in self.model.state_dict().items()}
        tensors.update({f"reducer.{k}": v for k, v in self.reducer.state_dict().items()})
        tensors.update({f"quantizer.{k}": v for k, v in self.quantizer.state_dict().items()})
        save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, str(directory / "state.safetensors"))
        write_json(directory / "progress.json", {"history": self.history, "active": self.active})

    def load(self, directory: Path) -> None:
        tensors = load_file(str(directory / "state.safetensors"), device=str(self.prepared.device))
        part = lambda prefix: {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}  # noqa: E731
        self.model.load_state_dict(part("model."))
        self.reducer.load_state_dict(part("reducer."))
        self.quantizer.load_state_dict(part("quantizer."))
        progress = json.loads((directory / "progress.json").read_text())
        self.history, self.active = progress["history"], progress["active"]

    # -- the end ---------------------------------------------------------------------------
    def finish(self, out_dir: Path) -> dict:
        """Quantize if still float, measure on valid and test, count costs, export the packed model."""
        if not self.active:
            logger.info("schedule ended with float weights: quantizing them (post-training) before export")
            self._fit_grids(None)
            self.quantizer.begin()
            self.quantizer.end()
            self.active = True
        data, device, bs = self.prepared.data, self.prepared.device, self.cfg.training.eval_batch_size
        test = evaluate(self.model, data.test, bs, device, len(data.intents))
        valid = evaluate(self.model, data.valid, bs, device, len(data.intents))
        costs = cost_report(self.model, self.quantizer.bits, data.test.features.shape[-1],
                            self.cfg.quantization.activation_bits, self.quantizer.method)
        refs = self.prepared.references
        metrics = {**test, "valid_accuracy": valid["accuracy"], "valid_f1_macro": valid["f1_macro"], **costs,
                   "teacher_gap_valid": relative_drop(refs["teacher_valid_accuracy"], valid["accuracy"]),
                   "teacher_gap_test": relative_drop(refs["teacher_accuracy"], test["accuracy"])}
        out_dir.mkdir(parents=True, exist_ok=True)
        model_path = out_dir / "model.safetensors"
        save_model(self.model, self.quantizer, model_path, config=to_dict(self.cfg), intents=data.intents,
                   metrics=metrics, dataset_key=data.key)
        write_json(out_dir / "history.json", {"pretune": self.prepared.pretune_record, "stages": self.history})
        return {**metrics, "model_path": str(model_path), "bits": dict(self.quantizer.bits),
                "stages": len(self.stages), "reducer": self.reducer.kind, **self.prepared.references}


@contextlib.contextmanager
def timed(timings: dict[str, float], phase: str) -> Iterator[None]:
    """Add the seconds spent in the block to `timings[phase]`."""
    start = time.perf_counter()
    try:
        yield
    finally:
        timings[phase] = timings.get(phase, 0.0) + time.perf_counter() - start


def run_quads(cfg: RunConfig, out_dir: Path, *, resume_from: Path | None = None,
              on_stage_end: StageCallback | None = None, prepared: Prepared | None = None,
              timings: dict[str, float] | None = None) -> dict:
    """Train one configuration end to end and return its metrics (see `QuadsRun.finish`).

    `prepared` (from `prepare(cfg)`, e.g. kept by a worker across trials) skips loading the
    caches; `timings` receives the seconds of each phase.
    """
    timings = {} if timings is None else timings
    with timed(timings, "prepare"):
        prepared = prepared or prepare(cfg)
    with timed(timings, "build"):
        run = QuadsRun(cfg, prepared)
        if resume_from is not None:
            run.load(resume_from)
            logger.info(f"resumed after stage {len(run.history)} of {len(run.stages)}")
    with timed(timings, "stages"):
        run.run_stages(on_stage_end)
    with timed(timings, "finish"):
        return run.finish(out_dir)

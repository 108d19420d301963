"""How much each weight tensor of the pre-tuned student suffers from b-bit quantization (HAWQ-V2/V3).

Ω_W(b) = Tr(H_WW)/n_W · ||W − Q_b(W)||²: the mean curvature of the training cross-entropy along
W's n_W entries times the squared error b bits put on them, i.e. the second-order loss increase
if that error were spread evenly. The trace comes from Hutchinson probes on a few seeded
training batches, Q_b is the configured quantizer family at attach time (1-D k-means with
labels from `torch.bucketize`, or affine with `calibrate`), 16 bits is fp16 rounding and 32 is
exact. Computed for every quantizable tensor and every width once per pre-tuned student and
quantizer settings, then cached: grouping tensors and choosing widths read it for free.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import time
from pathlib import Path

import torch
from torch import Tensor, nn
from torch.nn.attention import SDPBackend, sdpa_kernel

from quads_search.cache import cache_root, cached_dir, digest, write_json
from quads_search.config import QuantizationConfig, RunConfig
from quads_search.core import pretune
from quads_search.core.hutchinson import hessian_traces
from quads_search.core.losses import cross_entropy
from quads_search.core.prepare import Prepared
from quads_search.data import FeatureSplit
from quads_search.quant import VALID_BITS, calibrate, quantizable_weights
from quads_search.quant.affine import AffineGrid
from quads_search.quant.kmeans import Codebook

logger = logging.getLogger(__name__)

FORMAT = 1  # bump when what an entry holds changes
PROBES = 16  # Rademacher probes per batch
BATCHES = 4  # training batches the trace averages over
BATCH_SIZE = 32
RESULT = "sensitivity.json"


@dataclasses.dataclass(frozen=True)
class TensorSensitivity:
    """One tensor: its size, its Hessian trace estimate (± standard error) and its squared
    quantization error at every width in VALID_BITS."""

    params: int
    trace: float
    trace_sem: float
    error: dict[int, float]

    def omega(self, bits: int) -> float:
        """Tr(H)/n · ||W − Q_b(W)||², a negative trace estimate counted as 0 (`flat`)."""
        return max(self.trace, 0.0) / self.params * self.error[bits]

    @property
    def flat(self) -> bool:
        """No positive curvature was measured: noise, or a saddle direction. Its Ω is 0 rather than
        negative, since quantization error cannot be a gain; the command lists such tensors."""
        return self.trace <= 0


@dataclasses.dataclass(frozen=True)
class Sensitivity:
    """Every quantizable tensor's sensitivity, how it was estimated, and where it is cached."""

    tensors: dict[str, TensorSensitivity]
    settings: dict
    seconds: float  # what computing it took (when the cache entry was built)
    directory: Path


def quantized(weight: Tensor, bits: int, quantization: QuantizationConfig) -> Tensor:
    """Q_b(W) under the configured quantizer family, as it stands right after attach() (a new tensor)."""
    w = weight.detach().float()
    if bits == 32:
        return w.clone()
    if bits == 16:
        return w.half().float()
    if quantization.method == "kmeans":  # the grids the quantizers fit, so Q_b is written once
        return Codebook.fit(w, 2 ** bits, quantization.kmeans_iters, "density").target(w)
    scale, zero_point = calibrate(w, bits, quantization.calibration)
    return AffineGrid(scale, zero_point, bits, w.numel(), learned=False).target(w)


def quantization_error(weight: Tensor, bits: int, quantization: QuantizationConfig) -> float:
    """||W − Q_b(W)||²."""
    return float((weight.detach().float() - quantized(weight, bits, quantization)).square().sum())


def measure(model: nn.Module, train: FeatureSplit, quantization: QuantizationConfig, device: torch.device,
            seed: int) -> dict[str, TensorSensitivity]:
    """Sensitivity of every quantizable weight of `model` on seeded batches of `train` (PROBES
    Hutchinson probes over BATCHES batches of BATCH_SIZE).

    Attention runs on PyTorch's math kernel: the fused CPU kernel has no double backward.
    """
    model.eval()
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(train), generator=generator)[: BATCHES * BATCH_SIZE]
    chunks = list(order.split(BATCH_SIZE))

    def loss_of(index: Tensor) -> Tensor:
        logits, _ = model(train.features[index].to(device).float())
        return cross_entropy(logits, train.labels[index].to(device))

    weights = quantizable_weights(model)
    with sdpa_kernel(SDPBackend.MATH):
        traces = hessian_traces(loss_of, chunks, weights, PROBES, generator)
    return {name: TensorSensitivity(w.numel(), traces[name].trace, traces[name].sem,
                                    {b: quantization_error(w, b, quantization) for b in VALID_BITS})
            for name, w in weights.items()}


def cache_key(cfg: RunConfig, data_key: str) -> str:
    """Everything an entry depends on: the pre-tuned student's own key parts, the quantizer, the estimator."""
    q = cfg.quantization
    quantizer = (q.method, q.kmeans_iters if q.method == "kmeans" else q.calibration)
    return digest(FORMAT, pretune.FORMAT, dataclasses.asdict(cfg.student), data_key, cfg.training.seed,
                  cfg.training.batch_size, cfg.dataset.spec_augment, quantizer, PROBES, BATCHES, BATCH_SIZE)


def sensitivity(cfg: RunConfig, prepared: Prepared) -> Sensitivity:
    """The pre-tuned student's sensitivity (cached under `<cache_dir>/sensitivity/<key>`)."""
    settings = {"method": cfg.quantization.method, "probes": PROBES, "batches": BATCHES, "batch_size": BATCH_SIZE,
                "seed": cfg.training.seed, "loss": "training cross-entropy"}

    def build(out: Path) -> None:
        logger.info(f"sensitivity: Hessian traces of the pre-tuned student ({PROBES} probes x {BATCHES} batches "
                    f"of {BATCH_SIZE}); cached for later runs")
        start = time.perf_counter()
        tensors = measure(prepared.student, prepared.data.train, cfg.quantization, prepared.device, cfg.training.seed)
        write_json(out / RESULT, {"settings": settings, "seconds": time.perf_counter() - start,
                                  "tensors": {n: dataclasses.asdict(t) for n, t in tensors.items()}})

    directory = cached_dir(cache_root(cfg.cache_dir), "sensitivity", cache_key(cfg, prepared.data.key), build)
    return load(directory)


def load(directory: Path) -> Sensitivity:
    raw = json.loads((directory / RESULT).read_text())
    tensors = {name: TensorSensitivity(t["params"], t["trace"], t["trace_sem"],
                                       {int(b): e for b, e in t["error"].items()})
               for name, t in raw["tensors"].items()}
    return Sensitivity(tensors, raw["settings"], raw["seconds"], directory)

"""Time one CodebookQuantizer.step() against the authors' per-cluster loop.

Run from the repository root:  python -m bench.quantizer_step [--quick] [--device cuda]   (CPU or GPU)
On a randomly initialised Whisper-tiny-shaped student (encoder d_model 384, 4 layers, 6 heads,
ffn 1536, plus Linear(384, 31)), at 2, 4 and 8 bits, it measures side by side, interleaved:
  gather: one pass W.copy_(cb[labels]) per tensor (advanced indexing);
  gather_rows: the same pass as step() does it (torch.gather on a rows view): its floor;
  step:   CodebookQuantizer.step() (scatter-mean of the drifted weights, then the gather);
  loop:   per tensor, per cluster k: mask = labels == k; W[mask] = W[mask].mean().
(The affine quantizer has no per-step work since it trains latent weights.) Prints one JSON
object (medians in ms, speedups).
"""
from __future__ import annotations

import argparse
import copy
import json
import statistics
import time
from collections.abc import Callable

import torch
from torch import nn
from transformers import WhisperConfig
from transformers.models.whisper.modeling_whisper import WhisperEncoder

from quads_search.quant import CodebookQuantizer, quantizable_weights

BITS = (2, 4, 8)


class Student(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.encoder = WhisperEncoder(WhisperConfig(d_model=384, encoder_layers=4, encoder_attention_heads=6,
                                                    encoder_ffn_dim=1536, num_mel_bins=80, max_source_positions=1500))
        self.head = nn.Linear(384, 31)


def time_ms(fn: Callable[[], None], device: torch.device) -> float:
    """Wall-clock of one call; on a GPU, until its kernels have finished."""
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - start) * 1e3


@torch.no_grad()
def gather_pass(q: CodebookQuantizer) -> None:
    for name, grid in q.grids.items():
        q.weight(name).view_as(grid.labels).copy_(grid.codebook[grid.labels])


@torch.no_grad()
def gather_rows(q: CodebookQuantizer) -> None:
    for name, grid in q.grids.items():
        labels = grid.labels
        torch.gather(grid.codebook.expand(labels.shape[0], -1), 1, labels, out=q.weight(name).view_as(labels))


@torch.no_grad()
def cluster_loop(q: CodebookQuantizer) -> None:
    """The authors' scheme, reimplemented from its description: one masked mean per cluster."""
    for name, grid in q.grids.items():
        flat, labels = q.weight(name).view(-1), grid.labels.view(-1)
        for k in range(2 ** q.bits[name]):
            mask = labels == k
            flat[mask] = flat[mask].mean()  # an empty cluster assigns nothing


@torch.no_grad()
def loop_matches_step(q: CodebookQuantizer) -> float:
    """Max |difference| between loop and step() on the same drifted weights."""
    for name in q.low:
        q.weight(name).add_(torch.randn_like(q.weight(name)) * 1e-3)
    drifted = {n: q.weight(n).clone() for n in q.low}
    cluster_loop(q)
    by_loop = {n: q.weight(n).clone() for n in q.low}
    for name in q.low:
        q.weight(name).copy_(drifted[name])
    q.step()
    return max(float((by_loop[n] - q.weight(n)).abs().max()) for n in q.low)


def bench_bits(model: nn.Module, bits: int, repeats: int, device: torch.device) -> dict[str, float]:
    """Medians for one bit width; `model` keeps its float weights (work happens on copies)."""
    model = copy.deepcopy(model).to(device)
    start = time.perf_counter()
    q = CodebookQuantizer(model, dict.fromkeys(quantizable_weights(model), bits))  # update "mean"
    q.fit()
    q.begin()
    attach_s = time.perf_counter() - start
    fns = {"gather": lambda: gather_pass(q), "gather_rows": lambda: gather_rows(q), "step": q.step,
           "loop": lambda: cluster_loop(q)}
    for key in ("gather", "gather_rows", "step"):  # warm-up; the loop is slow enough
        fns[key]()
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for key, fn in fns.items():
            times[key].append(time_ms(fn, device))
    ms = {f"{k}_ms": round(statistics.median(v), 2) for k, v in times.items()}
    return {**ms, "speedup_vs_loop": round(ms["loop_ms"] / ms["step_ms"], 1),
            "step_over_gather": round(ms["step_ms"] / ms["gather_ms"], 2),
            "step_over_gather_rows": round(ms["step_ms"] / ms["gather_rows_ms"], 2),
            "kmeans_attach_s": round(attach_s, 2), "max_abs_diff_vs_loop": loop_matches_step(q)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 repeats instead of 7")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    args = parser.parse_args()
    device = torch.device(args.device)
    torch.manual_seed(0)
    model = Student()
    repeats = 3 if args.quick else 7
    results = {str(b): bench_bits(model, b, repeats, device) for b in BITS}
    weights = quantizable_weights(model)
    print(json.dumps({
        "model": "Whisper-tiny-shaped encoder + Linear(384, 31), random init",
        "quantized_params": sum(w.numel() for w in weights.values()), "tensors": len(weights),
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "threads": torch.get_num_threads(), "repeats": repeats,
        "bits": results,
        "min_speedup_vs_loop": min(r["speedup_vs_loop"] for r in results.values()),
    }, indent=1))


if __name__ == "__main__":
    main()

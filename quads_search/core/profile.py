"""Cost of a student without training: params, GMACs, GBitOPs, sizes, average bits.

Profiling runs on the meta device, so even Whisper-large costs no memory or time.
MACs are PyTorch's FLOP count / 2 (matmul, linear, conv, attention), as torchprofile counts.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from quads_search.core.models import SLUModel
from quads_search.data.features import N_MELS
from quads_search.quant import size_report


def count_macs(model: nn.Module, frames: int) -> tuple[float, dict[str, float]]:
    """(total MACs, MACs per weighted module) of one forward pass on a [1, 80, frames] input."""
    per_module: dict[str, float] = {}
    names = {module: name for name, module in model.named_modules()}

    def hook(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        weight = module.weight
        per_module[names[module]] = output.numel() * weight[0].numel()  # each output: one dot product

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv1d))]
    device = next(model.parameters()).device
    try:
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            model(torch.zeros(1, N_MELS, frames, device=device))
    finally:
        for handle in handles:
            handle.remove()
    return counter.get_total_flops() / 2, per_module


def cost_report(model: SLUModel, bits: dict[str, int], frames: int, activation_bits: int = 32,
                method: str = "kmeans") -> dict:
    """params_m, gmacs, gbitops, size_mb, size_mb_nominal, bits_avg for `model` at `bits`.

    `bits` is keyed by full parameter name (as `resolve_bits` returns it). GBitOPs sums
    MACs x weight bits x activation bits over weighted layers; the activation-by-activation
    attention products count activation bits twice.
    """
    meta = _on_meta(model)
    total, per_module = count_macs(meta, frames)
    bitops = sum(macs * bits.get(f"{module}.weight", 32) * activation_bits for module, macs in per_module.items())
    bitops += (total - sum(per_module.values())) * activation_bits * activation_bits
    report = size_report(meta, bits, method)
    report.update(gmacs=total / 1e9, gbitops=bitops / 1e9)
    return report


def _on_meta(model: SLUModel) -> SLUModel:
    """A weightless copy of `model` for counting."""
    with torch.device("meta"):
        return SLUModel(model.arch, model.num_classes)

"""Which weight tensors get quantized, and at how many bits each."""
from __future__ import annotations

import re
from collections.abc import Iterable

from torch import nn

from quads_search.config.units import VALID_BITS
from quads_search.errors import UserError
from quads_search.tensor_names import readable_name

QUANTIZED_BITS = range(1, 9)  # 16 = fp16 storage, 32 = left as is


def quantizable_weights(model: nn.Module) -> dict[str, nn.Parameter]:
    """Trainable matrices and conv kernels, by full parameter name.

    Biases, LayerNorm and frozen tensors (Whisper's sinusoidal `embed_positions`) stay float,
    as in the paper: they are few parameters, and they are sensitive to rounding.
    """
    return {name: p for name, p in model.named_parameters() if p.requires_grad and p.ndim >= 2}


def resolve_bits(names: Iterable[str], default: int, overrides: dict[str, int]) -> dict[str, int]:
    """Bits per full parameter name: `default`, then each override in order (later wins).

    An override key is a readable name (`layers.0.fc1`), a full parameter name, or
    `re:<regex>` fullmatched against readable names. A key matching nothing is a UserError,
    because a silently ignored override would quietly change what the sweep measures.
    """
    names = list(names)
    for value in (default, *overrides.values()):
        if value not in VALID_BITS:
            raise UserError(f"quantization bits must be one of {list(VALID_BITS)}, got {value}")
    bits = dict.fromkeys(names, default)
    for key, value in overrides.items():
        matched = _matches(key, names)
        if not matched:
            raise UserError(f"quantization.bits: {key!r} matches no weight tensor; "
                            f"valid names include {_examples(names)}")
        bits.update(dict.fromkeys(matched, value))
    return bits


def _matches(key: str, names: list[str]) -> list[str]:
    if not key.startswith("re:"):
        return [n for n in names if key in (n, readable_name(n))]
    try:
        pattern = re.compile(key[3:])
    except re.error as exc:
        raise UserError(f"quantization.bits: {key!r} is not a valid regex: {exc}") from None
    return [n for n in names if pattern.fullmatch(readable_name(n))]


def _examples(names: list[str], shown: int = 5) -> str:
    readable = [readable_name(n) for n in names]
    more = f", ... ({len(readable)} in all)" if len(readable) > shown else ""
    return ", ".join(readable[:shown]) + more if readable else "(none: the model has no weight matrices)"

"""A trained (quantized) student as one packed safetensors file, and back to a plain PyTorch module.

File layout, for each stored tensor `<param>` of the model's state_dict:
  1–8 bits: `<param>.idx` (uint8, packed codes) plus `<param>.codebook` (k-means, 2^b float32)
            or `<param>.scale` and `<param>.zero_point` (affine, float32 of shape (1,));
  16 bits:  `<param>` as float16;   otherwise: `<param>` as saved (float32).
Header metadata (all JSON strings): "format", "tensors" (shape, bits and method per tensor)
and "metadata" (the caller's dict; `save_model` writes the architecture, label map, config,
metrics and bits, which is what `load_packed` rebuilds the model from).
Whisper's sinusoidal `embed_positions` is not stored: `WhisperEncoder(config)` rebuilds it.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import Tensor, nn

from quads_search.core.models import SLUModel, model_from_arch
from quads_search.core.packed_header import FORMAT, packed_header
from quads_search.errors import UserError
from quads_search.files import atomic_path
from quads_search.quant import Quantizer
from quads_search.quant.packed import LEVEL_PARAMS, PackedTensor

REGENERATED = "embed_positions.weight"
MODEL_METADATA = ("arch", "num_classes", "intents", "config", "metrics")  # what `save_model` writes and readers need


def save_packed(model: nn.Module, quantizer: Quantizer | None, path: str | Path, metadata: dict[str, Any]) -> None:
    """Write the model's weights in their packed form (see the module docstring)."""
    state = {n: t.detach().cpu() for n, t in model.state_dict().items() if not n.endswith(REGENERATED)}
    packed = quantizer.packed_tensors() if quantizer else {}
    half = quantizer.half if quantizer else {}
    tensors: dict[str, Tensor] = {}
    specs: dict[str, dict[str, Any]] = {}
    for name, value in state.items():
        if name in packed:
            item = packed[name]
            tensors[f"{name}.idx"] = item.idx
            tensors.update({f"{name}.{key}": v for key, v in item.params.items()})
            specs[name] = {"shape": list(item.shape), "bits": item.bits, "method": item.method}
        elif name in half:
            tensors[name] = _as_half(name, value)
            specs[name] = {"shape": list(value.shape), "bits": 16, "method": "float16"}
        else:
            tensors[name] = value.contiguous()
            specs[name] = {"shape": list(value.shape), "bits": value.element_size() * 8, "method": "float"}
    try:
        header = {"format": FORMAT, "tensors": json.dumps(specs), "metadata": json.dumps(metadata)}
    except TypeError as exc:
        raise TypeError(f"save_packed: metadata must be JSON-serialisable: {exc}") from None
    with atomic_path(path) as temp:  # temp + fsync + rename: never a torn model file
        save_file(tensors, str(temp), metadata=header)


def _as_half(name: str, value: Tensor) -> Tensor:
    half = value.half()
    if not torch.equal(half.to(value.dtype), value):
        raise RuntimeError(f"{name} is not on its fp16 grid: call step() after the last optimizer step")
    return half


def read_packed(path: str | Path) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """(state_dict of dequantized float32 tensors, the caller's metadata) from `save_packed`.

    Load it with `model.load_state_dict(state, strict=False)` into a freshly built model:
    the only missing keys are the regenerated `embed_positions`.
    """
    header = packed_header(path)
    specs, metadata = _header_json(path, header, "tensors"), _header_json(path, header, "metadata")
    try:
        with safe_open(str(path), framework="pt") as f:
            state = {name: _read_tensor(f, name, spec) for name, spec in specs.items()}
    except SafetensorError as exc:
        raise UserError(f"{path}: unreadable safetensors file: {exc}") from None
    return state, metadata


def _header_json(path: str | Path, header: dict[str, str], key: str) -> dict:
    """One JSON object of the header, or a UserError naming the file and the key."""
    if key not in header:
        raise UserError(f"{path}: its header has no {key!r} (not a model written by quads-search)")
    try:
        value = json.loads(header[key])
    except ValueError:
        raise UserError(f"{path}: its header's {key!r} is not JSON") from None
    if not isinstance(value, dict):
        raise UserError(f"{path}: its header's {key!r} is no JSON object")
    return value


def _read_tensor(f: Any, name: str, spec: dict[str, Any]) -> Tensor:
    method = spec["method"]
    if method not in LEVEL_PARAMS:
        return f.get_tensor(name).float() if method == "float16" else f.get_tensor(name)
    params = {key: f.get_tensor(f"{name}.{key}") for key in LEVEL_PARAMS[method]}
    item = PackedTensor(method, spec["bits"], tuple(spec["shape"]), f.get_tensor(f"{name}.idx"), params)
    return item.dequantize()


def save_model(model: SLUModel, quantizer: Quantizer | None, path: Path, *, config: dict, intents: list[str],
               metrics: dict, dataset_key: str) -> None:
    """Write the packed model with what is needed to rebuild, evaluate and describe it."""
    metadata = {"arch": model.arch, "num_classes": model.num_classes, "intents": intents,
                "config": config, "metrics": metrics, "dataset_key": dataset_key,
                "bits": dict(quantizer.bits) if quantizer is not None else {}}
    save_packed(model, quantizer, path, metadata)


def load_packed(path: str | Path) -> tuple[nn.Module, dict]:
    """(model in eval mode with the exact trained weights, metadata) from a packed file."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such model file")
    try:
        state, metadata = read_packed(path)
    except (OSError, ValueError, KeyError) as exc:
        raise UserError(f"{path}: not a readable packed model ({exc})") from None
    lacking = [key for key in MODEL_METADATA if key not in metadata]
    if lacking:
        raise UserError(f"{path}: its metadata lacks {', '.join(lacking)}: a packed tensor file, but not a model "
                        "that `save_model` wrote (train, run or pareto --export write those)")
    model = model_from_arch(metadata["arch"], metadata["num_classes"])
    missing, unexpected = model.load_state_dict(state, strict=False)
    if unexpected or set(missing) - {"encoder.embed_positions.weight"}:
        raise UserError(f"{path}: tensors do not fit the architecture (missing {missing}, unexpected {unexpected})")
    return model.eval(), metadata

"""CTranslate2 Whisper variables -> a transformers `WhisperForConditionalGeneration` state dict.

The mapping is exact: CTranslate2 fuses q/k/v of self-attention into one `linear_0` and k/v
of cross-attention into `linear_1` (rows concatenated, k's missing bias stored as zeros), so
splitting the rows gives back transformers' separate projections. Every variable must be
used or be a known flag with Whisper's value; anything else is refused rather than dropped.
"""
from __future__ import annotations

import re

import torch

from quads_search.errors import UserError

# Flags CTranslate2 stores as 0-d variables, and the value OpenAI's Whisper architecture has.
FLAGS = {"decoder/activation": 3, "decoder/pre_norm": 1, "decoder/scale_embeddings": 0}  # 3: exact (erf) GELU
ZERO_IF_PRESENT = ("decoder/alibi", "decoder/alibi_use_positive_positions", "decoder/scale_alibi",
                   "decoder/start_from_zero_embedding")
# CTranslate2's own word-timestamp settings; the real alignment heads are in config.json.
IGNORED = ("decoder/alignment_heads", "decoder/alignment_layer")


class _Variables:
    """The model's variables, each taken at most once, so leftovers can be reported."""

    def __init__(self, source: str, variables: dict[str, torch.Tensor]):
        self.source = source
        self._left = dict(variables)

    def take(self, name: str) -> torch.Tensor:
        if name not in self._left:
            raise UserError(f"{self.source}: missing variable {name} (not a complete Whisper model)")
        return self._left.pop(name)

    def scalar(self, name: str) -> int:
        value = self.take(name)
        if value.dim() != 0:
            raise UserError(f"{self.source}: variable {name} should be a scalar, has shape {list(value.shape)}")
        return int(value)

    def has(self, name: str) -> bool:
        return name in self._left

    def left(self) -> list[str]:
        return sorted(self._left)


def hf_state_dict(source: str, variables: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict]:
    """(state dict, architecture) of the Whisper model in `variables` (float, aliases resolved)."""
    v = _Variables(source, variables)
    _check_flags(v)
    shape = {}
    for side in ("encoder", "decoder"):
        shape[f"{side}_layers"] = _layer_count(v, side)
        shape[f"{side}_attention_heads"] = v.scalar(f"{side}/num_heads")
    state = {**_encoder(v, shape["encoder_layers"]), **_decoder(v, shape["decoder_layers"])}
    _check_tied(v, state["model.decoder.embed_tokens.weight"])
    for name in IGNORED:
        if v.has(name):
            v.take(name)
    if v.left():
        raise UserError(f"{source}: unexpected variables {', '.join(v.left()[:5])}"
                        f"{' ...' if len(v.left()) > 5 else ''} (a Whisper variant this converter does not know)")
    return state, {**shape, **_sizes(state)}


def _check_flags(v: _Variables) -> None:
    for name, expected in FLAGS.items():
        if (value := v.scalar(name)) != expected:
            raise UserError(f"{v.source}: {name} is {value}, Whisper has {expected}")
    for name in ZERO_IF_PRESENT:
        if v.has(name) and (value := v.scalar(name)) != 0:
            raise UserError(f"{v.source}: {name} is {value}; Whisper does not use it")


def _encoder(v: _Variables, layers: int) -> dict[str, torch.Tensor]:
    out = {}
    for conv in ("conv1", "conv2"):
        out.update(_pair(v, f"encoder/{conv}", f"model.encoder.{conv}", "weight", "bias"))
    out["model.encoder.embed_positions.weight"] = v.take("encoder/position_encodings/encodings")
    for i in range(layers):
        src, dst = f"encoder/layer_{i}", f"model.encoder.layers.{i}"
        out.update(_split(v, f"{src}/self_attention/linear_0", [f"{dst}.self_attn.{p}_proj" for p in "qkv"]))
        out.update(_linear(v, f"{src}/self_attention/linear_1", f"{dst}.self_attn.out_proj"))
        out.update(_norm(v, f"{src}/self_attention/layer_norm", f"{dst}.self_attn_layer_norm"))
        out.update(_ffn(v, src, dst))
    out.update(_norm(v, "encoder/layer_norm", "model.encoder.layer_norm"))
    return out


def _decoder(v: _Variables, layers: int) -> dict[str, torch.Tensor]:
    out = {"model.decoder.embed_tokens.weight": v.take("decoder/embeddings/weight"),
           "model.decoder.embed_positions.weight": v.take("decoder/position_encodings/encodings")}
    for i in range(layers):
        src, dst = f"decoder/layer_{i}", f"model.decoder.layers.{i}"
        out.update(_split(v, f"{src}/self_attention/linear_0", [f"{dst}.self_attn.{p}_proj" for p in "qkv"]))
        out.update(_linear(v, f"{src}/self_attention/linear_1", f"{dst}.self_attn.out_proj"))
        out.update(_norm(v, f"{src}/self_attention/layer_norm", f"{dst}.self_attn_layer_norm"))
        out.update(_linear(v, f"{src}/attention/linear_0", f"{dst}.encoder_attn.q_proj"))
        out.update(_split(v, f"{src}/attention/linear_1", [f"{dst}.encoder_attn.{p}_proj" for p in "kv"]))
        out.update(_linear(v, f"{src}/attention/linear_2", f"{dst}.encoder_attn.out_proj"))
        out.update(_norm(v, f"{src}/attention/layer_norm", f"{dst}.encoder_attn_layer_norm"))
        out.update(_ffn(v, src, dst))
    out.update(_norm(v, "decoder/layer_norm", "model.decoder.layer_norm"))
    return out


def _ffn(v: _Variables, src: str, dst: str) -> dict[str, torch.Tensor]:
    return {**_linear(v, f"{src}/ffn/linear_0", f"{dst}.fc1"), **_linear(v, f"{src}/ffn/linear_1", f"{dst}.fc2"),
            **_norm(v, f"{src}/ffn/layer_norm", f"{dst}.final_layer_norm")}


def _pair(v: _Variables, src: str, dst: str, weight: str, bias: str) -> dict[str, torch.Tensor]:
    return {f"{dst}.weight": v.take(f"{src}/{weight}"), f"{dst}.bias": v.take(f"{src}/{bias}")}


def _linear(v: _Variables, src: str, dst: str) -> dict[str, torch.Tensor]:
    return _pair(v, src, dst, "weight", "bias")


def _norm(v: _Variables, src: str, dst: str) -> dict[str, torch.Tensor]:
    return _pair(v, src, dst, "gamma", "beta")


def _split(v: _Variables, src: str, names: list[str]) -> dict[str, torch.Tensor]:
    """A fused projection back into `names` (equal row blocks, cloned: safetensors refuses shared
    storage); k has no bias in Whisper."""
    weight, bias = v.take(f"{src}/weight"), v.take(f"{src}/bias")
    if weight.shape[0] % len(names) or bias.shape != weight.shape[:1]:
        raise UserError(f"{v.source}: {src} has weight {list(weight.shape)} and bias {list(bias.shape)}, "
                        f"which do not split into {len(names)} projections")
    out = {}
    for name, w, b in zip(names, weight.chunk(len(names)), bias.chunk(len(names))):
        out[f"{name}.weight"] = w.clone()
        if name.endswith(".k_proj"):
            if torch.count_nonzero(b):
                raise UserError(f"{v.source}: {src}/bias has a non-zero key bias; Whisper's k_proj has none")
        else:
            out[f"{name}.bias"] = b.clone()
    return out


def _check_tied(v: _Variables, embeddings: torch.Tensor) -> None:
    """Whisper's output projection is its token embedding matrix (an alias in CTranslate2)."""
    projection = v.take("decoder/projection/weight")
    if not torch.equal(projection, embeddings):
        raise UserError(f"{v.source}: decoder/projection/weight differs from decoder/embeddings/weight; "
                        "Whisper ties them")


def _layer_count(v: _Variables, side: str) -> int:
    pattern = re.compile(rf"{side}/layer_(\d+)/")
    indices = {int(m.group(1)) for name in v.left() if (m := pattern.match(name))}
    if indices != set(range(len(indices))) or not indices:
        raise UserError(f"{v.source}: {side} layers {sorted(indices)} are not numbered 0..n-1")
    return len(indices)


def _sizes(state: dict[str, torch.Tensor]) -> dict:
    """The WhisperConfig sizes that the tensor shapes determine."""
    conv1 = state["model.encoder.conv1.weight"]
    return dict(
        vocab_size=state["model.decoder.embed_tokens.weight"].shape[0],
        num_mel_bins=conv1.shape[1],
        d_model=conv1.shape[0],
        encoder_ffn_dim=state["model.encoder.layers.0.fc1.weight"].shape[0],
        decoder_ffn_dim=state["model.decoder.layers.0.fc1.weight"].shape[0],
        max_source_positions=state["model.encoder.embed_positions.weight"].shape[0],
        max_target_positions=state["model.decoder.embed_positions.weight"].shape[0],
    )

"""Whisper-encoder intent classifiers: the teacher Ω and the student Φ share this module.

A model is a transformers `WhisperEncoder`, pooled over time (mean, or max) to one embedding z,
plus a linear intent head. It comes from a pretrained id or local path, a preset with
Whisper's published shape, or an explicit shape (randomly initialised).
"""
from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import torch
from torch import nn
from transformers import WhisperConfig, WhisperForAudioClassification
from transformers.models.whisper.modeling_whisper import WhisperEncoder, sinusoids
from transformers.utils import logging as transformers_logging

from quads_search.config import ModelConfig, RunConfig
from quads_search.config.schema import POOLINGS, arch_pooling
from quads_search.data.features import N_MELS
from quads_search.errors import UserError
from quads_search.whisper.resolve import load_options, resolve_pretrained

# Published Whisper encoder shapes: d_model, layers, heads, ffn.
PRESETS = {
    "whisper-tiny": (384, 4, 6, 1536),
    "whisper-base": (512, 6, 8, 2048),
    "whisper-small": (768, 12, 12, 3072),
    "whisper-medium": (1024, 24, 16, 4096),
    "whisper-large": (1280, 32, 20, 5120),
}


def encoder_arch(cfg: ModelConfig, frames: int, cache_dir: str | Path = RunConfig.cache_dir) -> dict:
    """The WhisperConfig (as a dict) of the encoder `cfg` describes, for `frames` mel frames.
    `cache_dir` holds faster-whisper models converted for transformers."""
    if cfg.pretrained:
        try:
            whisper = WhisperConfig.from_pretrained(resolve_pretrained(cfg.pretrained, cache_dir),
                                                    local_files_only=load_options(cfg.pretrained)["local_files_only"])
        except (OSError, ValueError) as exc:
            raise UserError(f"pretrained={cfg.pretrained!r}: cannot read its config: {exc}") from None
        arch = whisper.to_dict()
        if whisper.num_mel_bins != N_MELS:
            raise UserError(f"pretrained={cfg.pretrained!r}: it takes {whisper.num_mel_bins} mel bins; "
                            f"quads-search computes {N_MELS}")
        if frames // 2 > whisper.max_source_positions:
            raise UserError(f"dataset.seconds: {frames / 100:g} s is longer than {cfg.pretrained} accepts")
    else:
        d_model, layers, heads, ffn = PRESETS[cfg.preset] if cfg.preset else (cfg.d_model, cfg.layers, cfg.heads, cfg.ffn)
        arch = dict(d_model=d_model, encoder_layers=layers, encoder_attention_heads=heads, encoder_ffn_dim=ffn,
                    decoder_layers=1, decoder_attention_heads=heads, decoder_ffn_dim=ffn,
                    dropout=cfg.dropout, num_mel_bins=N_MELS)
    arch["max_source_positions"] = frames // 2
    arch["pooling"] = cfg.pooling
    return arch


class SLUModel(nn.Module):
    """Whisper encoder -> mean or max over time -> linear intent head.

    `arch` is a WhisperConfig's dict plus `pooling` (absent in models saved before it: mean)."""

    def __init__(self, arch: dict, num_classes: int):
        super().__init__()
        self.arch = dict(arch)
        self.pooling = arch_pooling(self.arch)
        if self.pooling not in POOLINGS:
            raise UserError(f"arch pooling={self.pooling!r}: unknown; known: {list(POOLINGS)}")
        whisper = {k: v for k, v in self.arch.items() if k != "pooling"}
        self.encoder = WhisperEncoder(WhisperConfig(**whisper))
        self.head = nn.Linear(self.encoder.config.d_model, num_classes)

    @property
    def width(self) -> int:
        return self.encoder.config.d_model

    @property
    def num_classes(self) -> int:
        return self.head.out_features

    def embed(self, features: torch.Tensor) -> torch.Tensor:
        """z: the encoder's output pooled over time, [batch, d_model]. Max was chosen for the student
        because a short cue (the "de" of deactivate, the "in" of increase) can keep its full strength
        there, where the mean dilutes it over the clip: a hypothesis from its errors, and a gain on
        validation (docs/decisions.md: student pooling)."""
        hidden = self.encoder(features).last_hidden_state
        return hidden.amax(dim=1) if self.pooling == "max" else hidden.mean(dim=1)

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(intent logits, embedding z)."""
        z = self.embed(features)
        return self.head(z), z


def build_model(cfg: ModelConfig, num_classes: int, frames: int,
                cache_dir: str | Path = RunConfig.cache_dir) -> SLUModel:
    """A model with pretrained encoder weights where `cfg.pretrained` is set, else random."""
    arch = encoder_arch(cfg, frames, cache_dir)
    model = SLUModel(arch, num_classes)
    if cfg.pretrained:
        # A Whisper checkpoint holds `model.encoder.*`; the audio-classification wrapper maps those
        # keys onto its encoder (WhisperEncoder.from_pretrained would silently load nothing).
        pretrained = resolve_pretrained(cfg.pretrained, cache_dir)
        verbosity = transformers_logging.get_verbosity()
        transformers_logging.set_verbosity_error()  # the decoder and classifier keys it skips are expected
        try:
            state = WhisperForAudioClassification.from_pretrained(pretrained, **load_options(cfg.pretrained)
                                                                  ).encoder.state_dict()
        finally:
            transformers_logging.set_verbosity(verbosity)
        state["embed_positions.weight"] = state["embed_positions.weight"][: arch["max_source_positions"]]
        model.encoder.load_state_dict(state)
    return model


def model_from_arch(arch: dict, num_classes: int) -> SLUModel:
    """Rebuild a model from a saved architecture; the sinusoidal positions are regenerated."""
    model = SLUModel(arch, num_classes)
    with torch.no_grad():
        model.encoder.embed_positions.weight.copy_(sinusoids(*model.encoder.embed_positions.weight.shape))
    return model


@contextmanager
def dropout_set_to(model: SLUModel, p: float | None) -> Iterator[None]:
    """Within the block, the encoder drops hidden states (after each attention and FFN block, as
    Whisper does) with probability `p`; afterwards its own `dropout` again. None changes nothing.
    A pre-tuning can regularise this way without the trials, which load the saved arch, inheriting it."""
    if p is None:
        yield
        return
    layers = [model.encoder, *model.encoder.layers]
    for layer in layers:
        layer.dropout = p
    try:
        yield
    finally:
        for layer in layers:
            layer.dropout = model.encoder.config.dropout


def trainable_parameters(model: nn.Module) -> int:
    """#Params as the paper counts them: trainable encoder + head (fixed positions excluded)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)

"""Tiny Whisper-encoder students shared by the quantization tests."""
from __future__ import annotations

import pytest
import torch
from torch import nn
from transformers import WhisperConfig
from transformers.models.whisper.modeling_whisper import WhisperEncoder

FRAMES = 300  # 2 x max_source_positions: what the encoder's conv stem expects


class Student(nn.Module):
    """The shape of the QUADS student: Whisper encoder, mean-pooled, linear intent head."""

    def __init__(self, seed: int = 0):
        super().__init__()
        torch.manual_seed(seed)
        self.encoder = WhisperEncoder(WhisperConfig(
            d_model=64, encoder_layers=2, encoder_attention_heads=4, encoder_ffn_dim=256,
            num_mel_bins=80, max_source_positions=150))
        self.head = nn.Linear(64, 31)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(features).last_hidden_state.mean(1))


@pytest.fixture
def student() -> Student:
    return Student().eval()


@pytest.fixture
def make_student() -> type[Student]:
    return Student


@pytest.fixture
def features() -> torch.Tensor:
    return torch.randn(2, 80, FRAMES, generator=torch.Generator().manual_seed(1))


def _drift(weights: dict[str, torch.Tensor], scale: float = 1e-3, seed: int = 2) -> None:
    """Mimic an optimizer step: move every weight a little."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for w in weights.values():
            w.add_(torch.randn(w.shape, generator=gen) * scale)


@pytest.fixture
def drift():
    return _drift


# Every way a quantizer can train, as `quantization` config keys (ste re-assigns every 2 steps).
MODES = {
    "kmeans-mean": dict(method="kmeans", kmeans_update="mean"),
    "kmeans-gradient": dict(method="kmeans", kmeans_update="gradient"),
    "kmeans-ste": dict(method="kmeans", kmeans_update="ste", recluster_every=2),
    "affine": dict(method="affine"),
    "affine-learned": dict(method="affine", affine_scale="learned"),
}


@pytest.fixture(params=list(MODES))
def mode(request) -> dict:
    """The `quantization` keys of one training mode; tests taking it run once per mode."""
    return MODES[request.param]


def _train(model: nn.Module, quantizer, features: torch.Tensor, steps: int = 3, lr: float = 0.05) -> None:
    """Real SGD steps on a cross-entropy against fixed labels, `quantizer.step()` after each."""
    labels = torch.arange(features.shape[0], device=features.device) % 31
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)  # built after begin()
    for _ in range(steps):
        loss = nn.functional.cross_entropy(model(features), labels) + 0.1 * quantizer.centroid_loss()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        quantizer.step()


@pytest.fixture
def train():
    return _train

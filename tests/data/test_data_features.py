"""log_mel reproduces transformers' WhisperFeatureExtractor; spec_augment masks reproducibly."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import WhisperFeatureExtractor

from quads_search.data import frames_for, load_audio, log_mel, spec_augment


def _batch(small_corpus: Path) -> list[np.ndarray]:
    """Two real synthetic clips (different lengths), one 5 s noise burst, one near-silent clip."""
    wavs = sorted(small_corpus.glob("wavs/speakers/*/*.wav"))[:2]
    rng = np.random.default_rng(0)
    return [load_audio(w).numpy() for w in wavs] + [
        (rng.standard_normal(80000) * 0.1).astype(np.float32), (rng.standard_normal(12000) * 1e-4).astype(np.float32)]


@pytest.mark.parametrize("seconds", [30, 3, 1])
def test_log_mel_matches_whisper_feature_extractor(small_corpus: Path, seconds: int) -> None:
    audio = _batch(small_corpus)
    # the extractor pads/trims to chunk_length * 16 kHz, as log_mel does to frames * 160 samples
    reference = WhisperFeatureExtractor(chunk_length=seconds)(audio, sampling_rate=16000,
                                                             return_tensors="np").input_features
    longest = max(len(a) for a in audio)
    padded = torch.stack([torch.nn.functional.pad(torch.from_numpy(a), (0, longest - len(a))) for a in audio])
    ours = log_mel(padded, frames_for(seconds))
    assert ours.shape == (4, 80, seconds * 100) and ours.dtype == torch.float32
    assert np.abs(ours.numpy() - reference).max() < 1e-3


def test_spec_augment_is_seeded_and_masks_with_the_mean() -> None:
    x = torch.randn(3, 80, 300)
    a = spec_augment(x, torch.Generator().manual_seed(1))
    b = spec_augment(x, torch.Generator().manual_seed(1))
    c = spec_augment(x, torch.Generator().manual_seed(2))
    assert torch.equal(a, b) and not torch.equal(a, c) and a.shape == x.shape
    masked = a != x
    assert masked.any() and masked.float().mean() < 0.6
    means = x.mean(dim=(1, 2), keepdim=True).expand_as(x)
    assert torch.equal(a[masked], means[masked])

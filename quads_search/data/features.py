"""Whisper's log-mel features in torch (batched, on any device), and SpecAugment masking.

log_mel reproduces transformers' WhisperFeatureExtractor: pad/trim to the window, 400-point
periodic-Hann STFT with hop 160, power spectrum minus the last frame, Slaney mel filterbank,
log10, floor at (max - 8), then (x + 4) / 4.
"""
from __future__ import annotations

from functools import lru_cache

import torch
import torchaudio

from quads_search.config.units import HOP, SAMPLE_RATE

N_FFT = 400
N_MELS = 80
FREQ_MASKS, FREQ_WIDTH = 2, 15  # SpecAugment: masks per example, widest mask (mel bins)
TIME_MASKS, TIME_WIDTH, TIME_SHARE = 2, 40, 0.2  # widest time mask (frames), at most this share of frames


@lru_cache(maxsize=4)
def _filters(device: torch.device) -> torch.Tensor:
    """[n_mels, n_fft/2 + 1], as librosa.filters.mel(sr=16000, n_fft=400, n_mels=80)."""
    banks = torchaudio.functional.melscale_fbanks(N_FFT // 2 + 1, 0.0, SAMPLE_RATE / 2, N_MELS, SAMPLE_RATE,
                                                  norm="slaney", mel_scale="slaney")
    return banks.T.contiguous().to(device)


def fit_length(audio: torch.Tensor, samples: int) -> torch.Tensor:
    """Zero-pad or trim the last axis to `samples`."""
    if audio.shape[-1] >= samples:
        return audio[..., :samples]
    return torch.nn.functional.pad(audio, (0, samples - audio.shape[-1]))


def log_mel(audio: torch.Tensor, frames: int) -> torch.Tensor:
    """[B, samples] 16 kHz audio -> [B, 80, frames] Whisper log-mel features."""
    audio = fit_length(audio.float(), frames * HOP)
    window = torch.hann_window(N_FFT, device=audio.device)
    stft = torch.stft(audio, N_FFT, HOP, window=window, return_complex=True)
    power = stft[..., :-1].abs() ** 2
    mel = _filters(audio.device) @ power
    log = mel.clamp(min=1e-10).log10()
    log = torch.maximum(log, log.amax(dim=(1, 2), keepdim=True) - 8.0)
    return (log + 4.0) / 4.0


def _band_mask(batch: int, size: int, width: int, generator: torch.Generator) -> torch.Tensor:
    """[batch, size] bool: one random band per row, width uniform in [0, width)."""
    u = torch.rand(2, batch, generator=generator, device=generator.device).cpu()
    widths = (u[0] * min(width, size)).long()
    starts = (u[1] * (size - widths + 1)).long()
    positions = torch.arange(size)
    return (positions >= starts[:, None]) & (positions < (starts + widths)[:, None])


def spec_augment(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Training-time frequency and time masking of [B, n_mels, frames]; masked cells take the
    example's mean, so the masks carry no level information."""
    batch, mels, frames = x.shape
    mask = torch.zeros(batch, mels, frames, dtype=torch.bool)
    for _ in range(FREQ_MASKS):
        mask |= _band_mask(batch, mels, FREQ_WIDTH, generator)[:, :, None]
    time_width = min(TIME_WIDTH, max(1, int(frames * TIME_SHARE)))
    for _ in range(TIME_MASKS):
        mask |= _band_mask(batch, frames, time_width, generator)[:, None, :]
    mean = x.mean(dim=(1, 2), keepdim=True)
    return torch.where(mask.to(x.device), mean, x)

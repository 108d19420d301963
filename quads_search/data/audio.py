"""Reading clips: soundfile decodes (torchaudio.load would need FFmpeg), torchaudio resamples."""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import soundfile as sf
import torch
import torchaudio

from quads_search.config.units import SAMPLE_RATE
from quads_search.errors import UserError



@lru_cache(maxsize=8)
def _resampler(rate: int) -> torchaudio.transforms.Resample:
    return torchaudio.transforms.Resample(rate, SAMPLE_RATE)


def load_audio(path: Path) -> torch.Tensor:
    """A clip as mono float32 samples at 16 kHz; UserError naming the file if it can't be decoded."""
    if not Path(path).is_file():
        raise UserError(f"{path}: no such audio file")
    try:
        data, rate = sf.read(path, dtype="float32", always_2d=True)
    except (RuntimeError, OSError) as exc:  # soundfile's errors are RuntimeErrors
        reason = getattr(exc, "error_string", None) or str(exc)
        raise UserError(f"{path}: unreadable audio ({' '.join(reason.split())})") from None
    if data.shape[0] == 0:
        raise UserError(f"{path}: audio file holds no samples")
    mono = torch.from_numpy(data.mean(axis=1))
    return mono if rate == SAMPLE_RATE else _resampler(rate)(mono)

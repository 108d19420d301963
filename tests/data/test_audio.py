"""Decoding with soundfile, mixing to mono, resampling to 16 kHz, naming unreadable files."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from quads_search.data import load_audio
from quads_search.errors import UserError

from .conftest import tone


@pytest.mark.parametrize("rate", [8000, 44100])
def test_other_rates_and_stereo_are_resampled(tmp_path: Path, rate: int) -> None:
    path = tmp_path / f"x{rate}.wav"
    sf.write(path, tone(1.0, rate=rate, freq=440, channels=2), rate)
    audio = load_audio(path)
    assert audio.dtype == torch.float32 and audio.ndim == 1 and audio.shape[0] == 16000
    peak_hz = np.argmax(np.abs(np.fft.rfft(audio.numpy()))) * 16000 / len(audio)
    assert abs(peak_hz - 440) < 2


def test_16k_flac_is_read_as_is(tmp_path: Path) -> None:
    path = tmp_path / "x.flac"
    sf.write(path, tone(0.5), 16000, format="FLAC", subtype="PCM_16")
    assert np.allclose(load_audio(path).numpy(), tone(0.5), atol=1e-4)


@pytest.mark.parametrize("name", ["bad.wav", "bad.flac"])
def test_corrupt_file_is_named(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(b"RIFF\x00\x01garbage" * 10)
    with pytest.raises(UserError, match=f"^{path}: unreadable audio"):
        load_audio(path)
    with pytest.raises(UserError, match=f"^{tmp_path / 'missing.wav'}: no such audio file"):
        load_audio(tmp_path / "missing.wav")

"""The units every layer counts in, owned by the bottom layer so that each rule exists once:
the bit widths a tensor may take, and time as samples and as log-mel frames."""
from __future__ import annotations

VALID_BITS = (1, 2, 3, 4, 5, 6, 7, 8, 16, 32)  # 1-8: codebook or affine grid; 16: fp16 storage; 32: as is
SAMPLE_RATE = 16000  # Hz: what Whisper (and so every dataset here) is fed
HOP = 160  # samples between log-mel frames: 10 ms


def frames_for(seconds: float) -> int:
    """Log-mel frames in a window of `seconds`."""
    return round(seconds * SAMPLE_RATE / HOP)

"""The progress hook every long step takes: a callable that shows one line.

Commands pass `print` (or a writer to stderr), a sweep trial passes a writer to its own
`train.log`; the library never configures global logging.
"""
from __future__ import annotations

from typing import Callable

Log = Callable[[str], None]

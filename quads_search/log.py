"""Where the progress lines of the `quads_search` loggers go.

Library modules log INFO lines to `logging.getLogger(__name__)` and never configure logging: a
library that did would override its host's settings, and without a handler INFO stays silent.
What shows them is chosen by the caller: a command (or a bench) calls `show_progress` once, a
sweep trial wraps its training in `to_file` for its own `train.log`.
"""
from __future__ import annotations

import contextlib
import logging
import sys
from pathlib import Path
from typing import Iterator, Literal

LOGGER = logging.getLogger("quads_search")
FORMAT = logging.Formatter("%(message)s")  # the bare line, as the commands have always printed it


class _Console(logging.StreamHandler):
    """A StreamHandler on sys.stdout or sys.stderr as it is when a line is written, not when the
    handler was added (pytest's capsys and contextlib.redirect_stdout replace them)."""

    def __init__(self, target: Literal["stdout", "stderr"]):
        super().__init__()
        self.target = target
        self.setFormatter(FORMAT)

    @property
    def stream(self):
        return getattr(sys, self.target)

    @stream.setter
    def stream(self, value) -> None:  # StreamHandler.__init__ sets one: the target decides instead
        pass


def show_progress(stream: Literal["stdout", "stderr"] = "stdout") -> None:
    """Show the INFO lines of every `quads_search` logger, bare, on `stream`; only there (no propagation).

    Idempotent: a second call moves the one handler to `stream` rather than adding another."""
    console = next((h for h in LOGGER.handlers if isinstance(h, _Console)), None)
    if console is None:
        LOGGER.addHandler(_Console(stream))
    else:
        console.target = stream
    LOGGER.setLevel(logging.INFO)
    LOGGER.propagate = False


@contextlib.contextmanager
def to_file(path: Path) -> Iterator[None]:
    """While active, append the INFO lines of every `quads_search` logger, bare, to `path`."""
    handler = logging.FileHandler(path, mode="a")
    handler.setFormatter(FORMAT)
    level = LOGGER.level
    LOGGER.addHandler(handler)
    LOGGER.setLevel(logging.INFO)
    try:
        yield
    finally:
        LOGGER.removeHandler(handler)
        handler.close()
        LOGGER.setLevel(level)

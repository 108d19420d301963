"""Publish a directory built elsewhere in one rename, so readers never see it half-written.

Several processes (parallel trials) may build the same thing at once: the first rename wins,
the others find the target in place and discard their copy.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path


def staging_dir(final: Path) -> Path:
    """A fresh, uniquely named directory beside `final` (same filesystem, so the rename is atomic)."""
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=final.parent))
    staging.chmod(0o755)  # mkdtemp's 0700 would make the published directory private
    return staging


def publish_dir(staging: Path, final: Path) -> bool:
    """Rename `staging` to `final`; False (and `staging` removed) if another process got there first."""
    try:
        os.rename(staging, final)
        return True
    except OSError:
        if not final.is_dir():
            raise
        shutil.rmtree(staging)
        return False

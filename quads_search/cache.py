"""Directories built once and shared by runs, trials and nodes: the project's one cache mechanism.

A directory is built in a private staging directory beside its final place, under a file
lock, marked complete and published by one rename, so concurrent trials build it once and
never read half of it. Cache entries live at `<cache_dir>/<kind>/<digest>/`; the synthetic
corpus is built the same way at a place the user chooses. Tensors go through safetensors
and metadata through JSON: nothing is unpickled.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable

from filelock import FileLock


def digest(*parts: object) -> str:
    """A short stable hex key of JSON-serialisable parts."""
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def cache_root(cache_dir: str | Path) -> Path:
    return Path(os.path.expanduser(str(cache_dir)))


COMPLETE = ".complete"


def is_built(final: Path) -> bool:
    return (final / COMPLETE).exists()


def built_dir(final: Path, build: Callable[[Path], None]) -> Path:
    """`final`, calling `build(staging_dir)` to fill it if no complete copy is there yet.

    A leftover without the completion mark (a killed build) is replaced; callers that
    point at a user's directory check first that it is theirs to replace.
    """
    if is_built(final):
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(final) + ".lock"):
        if is_built(final):
            return final
        staging = Path(tempfile.mkdtemp(prefix=f".{final.name}-", dir=final.parent))
        try:
            staging.chmod(0o755)  # mkdtemp's 0700 would make the published directory private
            build(staging)
            (staging / COMPLETE).touch()
            if final.exists():
                shutil.rmtree(final)
            os.rename(staging, final)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return final


def cached_dir(root: Path, kind: str, key: str, build: Callable[[Path], None]) -> Path:
    """The cache entry `<root>/<kind>/<key>`, built on first use (see `built_dir`)."""
    return built_dir(Path(root) / kind / key, build)


def write_json(path: Path, data: object) -> None:
    """Write JSON atomically (tmp file + rename)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True, default=str))
    os.replace(tmp, path)

"""Content-keyed on-disk caches shared by runs, trials and nodes.

An entry is a directory `<cache_dir>/<kind>/<key>/` written under a file lock and
published by an atomic rename, so concurrent trials build it once and never read half.
Tensors go through safetensors and metadata through JSON: nothing is unpickled.
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


def cached_dir(root: Path, kind: str, key: str, build: Callable[[Path], None]) -> Path:
    """The directory for (kind, key), calling `build(tmp_dir)` to fill it on the first use."""
    final = root / kind / key
    if (final / ".complete").exists():
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(final) + ".lock"):
        if (final / ".complete").exists():
            return final
        tmp = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=final.parent))
        try:
            build(tmp)
            (tmp / ".complete").touch()
            if final.exists():  # an incomplete leftover of a killed build
                shutil.rmtree(final)
            os.rename(tmp, final)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return final


def write_json(path: Path, data: object) -> None:
    """Write JSON atomically (tmp file + rename)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True, default=str))
    os.replace(tmp, path)

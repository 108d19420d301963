"""Directories built once and shared by runs, trials and nodes: the project's one cache mechanism.

A directory is built in a private staging directory beside its final place, under a file
lock, marked complete and published by one rename, so concurrent trials build it once and
never read half of it. Cache entries live at `<cache_dir>/<kind>/<digest>/`; the synthetic
corpus is built the same way at a place the user chooses. Tensors go through safetensors
and metadata through JSON: nothing is unpickled.

The completion mark (`.complete`) holds the entry's manifest, checked at every use, so a
damaged entry is rebuilt (one line on stderr says which file and why) instead of trusted:
  - every file's size: a truncated, grown or missing file;
  - the sha256 of every file at the entry's top level (all of a cache entry's files: they
    are flat), whole up to 1 MiB (JSON, labels, small tensors) and sampled beyond: the first
    MiB (where safetensors and .npy headers are), the last 64 KiB and 16 blocks of 4 KiB spread
    between. A check reads at most ~1.1 MiB per file, so it costs milliseconds even for the
    hundreds of MB of a features entry; a flipped byte outside the sampled blocks of a large
    file goes unnoticed, a truncation never does;
  - files in subdirectories (a corpus's clips) by size only; the features key already holds
    each clip's size and mtime.
An entry written before manifests existed (an empty mark) is checked for structure once (JSON
parses; a safetensors or .npy file is exactly as long as its header says), then given its
manifest, or rebuilt.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Callable

from filelock import FileLock

from quads_search.files import write_json

__all__ = ["digest", "cache_root", "is_built", "built_dir", "cached_dir", "write_json", "entry_problem"]


def digest(*parts: object) -> str:
    """A short stable hex key of JSON-serialisable parts."""
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def cache_root(cache_dir: str | Path) -> Path:
    return Path(os.path.expanduser(str(cache_dir)))


COMPLETE = ".complete"  # the completion mark; it holds the manifest
MANIFEST_FORMAT = 1
WHOLE = 1 << 20  # files up to this size are hashed whole
HEAD, TAIL, BLOCK, BLOCKS = 1 << 20, 1 << 16, 1 << 12, 16  # the sampled hash of a larger file


def is_built(final: Path) -> bool:
    """Whether `final` carries a completion mark (its manifest is checked by `built_dir`)."""
    return (final / COMPLETE).exists()


def built_dir(final: Path, build: Callable[[Path], None], warn: Callable[[str], None] | None = None) -> Path:
    """`final`, calling `build(staging_dir)` to fill it if no intact complete copy is there yet.

    A leftover without the completion mark (a killed build) or one whose manifest no longer
    matches (a damaged file) is replaced, the latter with one line to `warn` (stderr by
    default); callers that point at a user's directory check first that it is theirs to replace.
    """
    if _state(final) == ("ok", None):
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(final) + ".lock"):
        state, problem = _state(final)
        if state == "ok":
            return final
        if state == "legacy":
            problem = _structure_problem(final)
            if problem is None:  # written before manifests: intact, so it gets one
                write_json(final / COMPLETE, manifest(final))
                return final
        if problem is not None:
            (warn or _stderr)(f"quads-search: {final}: {problem}; rebuilding it")
        staging = Path(tempfile.mkdtemp(prefix=f".{final.name}-", dir=final.parent))
        try:
            staging.chmod(0o755)  # mkdtemp's 0700 would make the published directory private
            build(staging)
            write_json(staging / COMPLETE, manifest(staging))
            if final.exists():
                shutil.rmtree(final)
            os.rename(staging, final)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return final


def cached_dir(root: Path, kind: str, key: str, build: Callable[[Path], None]) -> Path:
    """The cache entry `<root>/<kind>/<key>`, built on first use (see `built_dir`)."""
    return built_dir(Path(root) / kind / key, build)


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------- manifests


def manifest(directory: Path) -> dict:
    """What `entry_problem` checks `directory` against: every file's size, and the top level's hashes."""
    files = {}
    for path in sorted(p for p in directory.rglob("*") if p.is_file() and p.name != COMPLETE):
        relative = path.relative_to(directory).as_posix()
        files[relative] = _record(path, hashed="/" not in relative)
    return {"format": MANIFEST_FORMAT, "files": files}


def entry_problem(directory: Path) -> str | None:
    """Why the complete entry `directory` is damaged (the first file found, named), or None."""
    state, problem = _state(directory)
    return _structure_problem(directory) if state == "legacy" else problem


def _state(directory: Path) -> tuple[str, str | None]:
    """("missing" | "legacy" | "ok" | "damaged", the damage found)."""
    mark = directory / COMPLETE
    try:
        text = mark.read_text()
    except FileNotFoundError:
        return "missing", None
    except OSError as exc:
        return "damaged", f"{COMPLETE} is unreadable ({exc.strerror})"
    if not text.strip():
        return "legacy", None
    try:
        expected = json.loads(text)
        files = expected["files"]
    except (ValueError, KeyError, TypeError):
        return "damaged", f"{COMPLETE} is not a manifest"
    for relative, record in files.items():
        path = directory / relative
        try:
            size = path.stat().st_size
        except OSError:
            return "damaged", f"{relative} is missing"
        if size != record["size"]:
            return "damaged", f"{relative} has {size} bytes, the manifest says {record['size']}"
        if "sha256" in record and _record(path, hashed=True)["sha256"] != record["sha256"]:
            return "damaged", f"{relative} has other content than when it was written (sha256 differs)"
    return "ok", None


def _record(path: Path, hashed: bool) -> dict:
    size = path.stat().st_size
    if not hashed:
        return {"size": size}
    digest_ = hashlib.sha256()
    with open(path, "rb") as f:
        if size <= WHOLE:
            digest_.update(f.read())
        else:
            spread = [HEAD + i * (size - HEAD - TAIL - BLOCK) // (BLOCKS - 1) for i in range(BLOCKS)]
            for offset, length in [(0, HEAD), *((o, BLOCK) for o in spread), (size - TAIL, TAIL)]:
                f.seek(offset)
                digest_.update(f.read(length))
    return {"size": size, "sha256": digest_.hexdigest(), **({} if size <= WHOLE else {"sampled": True})}


def _structure_problem(directory: Path) -> str | None:
    """Damage a file shows by itself: JSON that does not parse, a safetensors or .npy file whose
    length is not the one its header declares. Used once on entries written without a manifest."""
    for path in sorted(p for p in directory.rglob("*") if p.is_file() and p.name != COMPLETE):
        relative = path.relative_to(directory).as_posix()
        try:
            if path.suffix == ".json":
                json.loads(path.read_bytes())
            elif path.suffix == ".safetensors":
                _check_safetensors_length(path)
            elif path.suffix == ".npy":
                _check_npy_length(path)
        except (OSError, ValueError) as exc:
            return f"{relative} is damaged ({exc})"
    return None


def _check_safetensors_length(path: Path) -> None:
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise ValueError("shorter than its header")
        length = int.from_bytes(head, "little")
        if length > size - 8:
            raise ValueError(f"its header claims {length} bytes, the file has {size}")
        header = json.loads(f.read(length))
    end = max((t["data_offsets"][1] for k, t in header.items() if k != "__metadata__"), default=0)
    if 8 + length + end != size:
        raise ValueError(f"{size} bytes, its header says {8 + length + end}")


def _check_npy_length(path: Path) -> None:
    import numpy as np

    size = path.stat().st_size
    array = np.load(path, mmap_mode="r")  # a ValueError where the file is shorter than its header says
    expected = getattr(array, "offset", 0) + array.nbytes
    del array
    if expected != size:
        raise ValueError(f"{size} bytes, its header says {expected}")

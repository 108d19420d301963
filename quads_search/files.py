"""Files written whole or not at all: a temp file beside the target, fsync, rename, fsync of the directory.

Every output quads-search writes (trials.parquet and its rows, pareto.parquet/.png/.html, model
cards, config.yaml, packed models, cache files) goes through `atomic_path`, so a crash, a kill
or a full disk leaves the old file or the new one, never a torn one. Temp names are unique
(`.<name>.<pid>.<random>.tmp`), so two writers of one file never share a temp file, and they
end in `.tmp`, so no reader's `*.json` or `*.parquet` pattern picks up a leftover.
"""
from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
from pathlib import Path
from typing import Iterator


def _temp_beside(path: Path) -> Path:
    """A new empty file in `path`'s directory, created with the umask's permissions (not mkstemp's 0600)."""
    while True:
        temp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
        try:
            os.close(os.open(temp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
            return temp
        except FileExistsError:
            continue


def fsync_path(path: Path) -> None:
    """Flush a file's content to the disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_directory(path: Path) -> None:
    """Flush a directory's entries (a rename into it) to the disk, where the file system can."""
    try:
        fsync_path(path)
    except OSError:  # a file system that cannot sync a directory: the rename is atomic all the same
        pass


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temp path beside `path` to write to; on leaving the block it is fsynced and renamed onto `path`.

    If the block raises, the temp file is removed and `path` is left as it was.
    """
    path = Path(path)
    temp = _temp_beside(path)
    try:
        yield temp
        fsync_path(temp)
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    _fsync_directory(path.parent)


def write_bytes(path: str | Path, data: bytes) -> None:
    with atomic_path(path) as temp:
        temp.write_bytes(data)


def write_text(path: str | Path, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def write_json(path: str | Path, data: object) -> None:
    """JSON (sorted keys, indented), written atomically."""
    write_text(path, json.dumps(data, indent=2, sort_keys=True, default=str))


def copy_file(source: str | Path, target: str | Path) -> None:
    """Copy `source` (with its timestamps) onto `target` atomically."""
    with atomic_path(target) as temp:
        shutil.copy2(source, temp)

"""`pretrained:` values -> what transformers' `from_pretrained` loads.

A Hugging Face Whisper directory or a hub id is used as it is. A faster-whisper directory
(model.bin + config.json + tokenizer.json, e.g. a snapshot in the Hugging Face cache) or a
packaged short name is converted once into `<cache_dir>/whisper-hf/<key>/`, keyed by the
content of its files, built in a temporary directory and published by one rename.
"""
from __future__ import annotations

from pathlib import Path

from quads_search.cache import cache_root, cached_dir, digest
from quads_search.errors import UserError
from quads_search.whisper.hf import write_hf_whisper
from quads_search.whisper.packaged import PACKAGED
from quads_search.whisper.source import Ct2Source

CONVERTER_REVISION = 1  # bump when what `write_hf_whisper` writes changes, so caches rebuild


def resolve_pretrained(name_or_path: str, cache_dir: str | Path) -> str:
    """A directory or hub id `from_pretrained` accepts, converting CTranslate2 models first."""
    source = ct2_source(name_or_path)
    return name_or_path if source is None else str(converted(source, cache_dir))


def ct2_source(name_or_path: str) -> Ct2Source | None:
    """The CTranslate2 model a short name or directory names; None for anything else."""
    if name_or_path in PACKAGED:
        return PACKAGED[name_or_path].source(name_or_path)
    path = Path(name_or_path).expanduser()
    return Ct2Source.from_dir(path) if (path / "model.bin").is_file() else None


def require_ct2_source(name_or_path: str) -> Ct2Source:
    source = ct2_source(name_or_path)
    if source is None:
        raise UserError(f"{name_or_path}: neither a packaged model ({', '.join(PACKAGED)}) nor a directory "
                        "holding a faster-whisper model.bin")
    return source


def converted(source: Ct2Source, cache_dir: str | Path) -> Path:
    """The cached Hugging Face directory of `source`, converting it on first use."""
    key = digest(*source.content_sha256(), CONVERTER_REVISION)
    return cached_dir(cache_root(cache_dir), "whisper-hf", key, lambda tmp: write_hf_whisper(source, tmp))

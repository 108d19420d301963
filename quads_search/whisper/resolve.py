"""`pretrained:` values -> what transformers' `from_pretrained` loads, from local files and safetensors only.

A Hugging Face Whisper directory is used as it is, once it is known to hold safetensors
weights (a `pytorch_model.bin` alone is refused: loading it would unpickle). A faster-whisper
directory (model.bin + config.json + tokenizer.json, e.g. a snapshot in the Hugging Face cache)
or a packaged short name is converted once into `<cache_dir>/whisper-hf/<key>/`, keyed by the
content of its files, built in a temporary directory and published by one rename. Anything
else is refused, except `hub:<id>`, the one spelling that lets transformers download a
checkpoint from the Hugging Face hub (still safetensors only).
"""
from __future__ import annotations

from pathlib import Path

from quads_search.cache import cache_root, cached_dir, digest
from quads_search.errors import UserError
from quads_search.whisper.hf import write_hf_whisper
from quads_search.whisper.packaged import PACKAGED
from quads_search.whisper.source import Ct2Source

CONVERTER_REVISION = 1  # bump when what `write_hf_whisper` writes changes, so caches rebuild
HUB = "hub:"  # `pretrained: hub:openai/whisper-tiny` allows a download; nothing else reaches the network
SAFETENSORS = ("model.safetensors", "model.safetensors.index.json")  # one file, or the index of its shards


def resolve_pretrained(name_or_path: str, cache_dir: str | Path) -> str:
    """A local directory (or, for `hub:<id>`, the hub id) that `from_pretrained(..., **load_options(name))`
    loads, converting CTranslate2 models first."""
    if name_or_path.startswith(HUB):
        return name_or_path[len(HUB):]
    source = ct2_source(name_or_path)
    if source is not None:
        return str(converted(source, cache_dir))
    path = Path(name_or_path).expanduser()
    if not path.is_dir():
        raise UserError(f"pretrained={name_or_path!r}: neither a packaged model ({', '.join(PACKAGED)}) nor a local "
                        f"directory; a Hugging Face hub id is downloaded only when written {HUB}<id>")
    if not any((path / name).is_file() for name in SAFETENSORS):
        found = [p.name for p in sorted(path.iterdir()) if p.suffix in (".bin", ".pt", ".pth", ".ckpt")]
        why = f"it has {', '.join(found)}, pickled weights that are never loaded" if found else "it has no weights"
        raise UserError(f"pretrained={name_or_path!r}: {path} holds no model.safetensors ({why}); "
                        f"save the model with `save_pretrained` (safetensors) or point to a faster-whisper model.bin")
    return str(path)


def load_options(name_or_path: str) -> dict:
    """`from_pretrained` keyword arguments: local files only (unless `hub:<id>`) and safetensors only."""
    return {"local_files_only": not name_or_path.startswith(HUB), "use_safetensors": True}


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

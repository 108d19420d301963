"""The header of a packed model file (`core.export`), read without torch.

`pareto` reads the bits and metrics of every front model from here; keeping this module free
of torch and transformers keeps that command quick.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from safetensors import SafetensorError, safe_open

from quads_search.errors import UserError

FORMAT = "quads-search/packed-model/2"


def packed_header(path: str | Path) -> dict[str, str]:
    """The file's header strings ("format", "tensors", "metadata"), checked to be ours."""
    if not Path(path).is_file():
        raise UserError(f"{path}: no such file")
    try:
        with safe_open(str(path), framework="numpy") as f:
            header = f.metadata() or {}
    except SafetensorError as exc:
        raise UserError(f"{path}: unreadable safetensors file: {exc}") from None
    if header.get("format") != FORMAT:
        raise UserError(f"{path}: not a quads-search packed model (format {header.get('format')!r})")
    return header


def read_packed_metadata(path: str | Path) -> dict[str, Any]:
    """The caller's metadata of a packed file, without reading any tensor."""
    text = packed_header(path).get("metadata")
    try:
        metadata = json.loads(text) if text is not None else None
    except ValueError:
        metadata = None
    if not isinstance(metadata, dict):
        raise UserError(f"{path}: its header holds no metadata object (not a model written by quads-search)")
    return metadata

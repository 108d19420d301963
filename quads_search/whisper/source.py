"""A faster-whisper (CTranslate2) checkpoint on disk: model.bin, or its parts, plus config.json
and tokenizer.json, which say what the binary alone does not (suppressed tokens, the vocabulary)."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from quads_search.errors import UserError
from quads_search.whisper.ct2 import sha256_of


@dataclass(frozen=True)
class Ct2Source:
    """Where one CTranslate2 Whisper model's files are."""

    model_parts: tuple[Path, ...]  # model.bin, or its pieces in order
    config: Path  # CTranslate2's config.json: suppress_ids, suppress_ids_begin, alignment_heads
    tokenizer: Path  # Hugging Face tokenizers' tokenizer.json

    @classmethod
    def from_dir(cls, directory: Path) -> "Ct2Source":
        """The model in `directory` (a faster-whisper model, e.g. a Hugging Face cache snapshot)."""
        source = cls((directory / "model.bin",), directory / "config.json", directory / "tokenizer.json")
        source.check_files()
        return source

    def check_files(self) -> None:
        for path in (*self.model_parts, self.config, self.tokenizer):
            if not path.is_file():
                raise UserError(f"{path}: missing; a faster-whisper model needs model.bin, config.json "
                                "and tokenizer.json")

    def content_sha256(self) -> tuple[str, str, str]:
        """sha256 of model.bin (parts joined), config.json and tokenizer.json: what the conversion depends on."""
        return sha256_of(self.model_parts), sha256_of([self.config]), sha256_of([self.tokenizer])

    def read_config(self) -> dict:
        """CTranslate2's config.json, with the keys a Whisper conversion needs checked."""
        config = read_json(self.config)
        for key in ("suppress_ids", "suppress_ids_begin"):
            if not isinstance(config.get(key), list):
                raise UserError(f"{self.config}: {key} must be a list of token ids, got {config.get(key)!r}")
        return config


def read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserError(f"{path}: not readable JSON: {exc}") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a JSON object, got {type(data).__name__}")
    return data

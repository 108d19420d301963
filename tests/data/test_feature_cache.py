"""The feature cache: contents, atomic publishing, hits that never touch audio, unreadable clips."""
from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import pytest
import torch

from quads_search.config import DatasetConfig
from quads_search.data import load_features, read_fsc
from quads_search.errors import UserError


def test_features_are_cached_and_a_hit_reads_no_audio(fsc_root: Path, tmp_path: Path) -> None:
    cfg = DatasetConfig(kind="fsc", root=str(fsc_root), seconds=1.0)
    cache = tmp_path / "cache"
    first = load_features(cfg, cache, progress=False)
    assert first.train.features.shape == (16, 80, 100) and first.train.features.dtype == torch.float16
    assert first.train.labels.dtype == torch.int64 and first.train.labels.tolist() == read_fsc(fsc_root).labels("train")
    assert first.valid.speakers == ["spkC"] * 8 and len(first.intents) == 4
    directory = cache / "features" / first.key
    assert json.loads((directory / "intents.json").read_text()) == first.intents
    assert [p.name for p in (cache / "features").iterdir() if p.suffix != ".lock"] == [first.key]  # no staging left
    shutil.rmtree(fsc_root / "wavs")
    second = load_features(cfg, cache, progress=False)
    assert second.key == first.key and torch.equal(second.test.features, first.test.features)


def test_key_follows_settings_and_clip_list(fsc_root: Path, tmp_path: Path) -> None:
    base = DatasetConfig(kind="fsc", root=str(fsc_root), seconds=1.0)
    keys = {load_features(cfg, tmp_path, progress=False).key
            for cfg in (base, DatasetConfig(kind="fsc", root=str(fsc_root), seconds=0.5),
                        DatasetConfig(kind="fsc", root=str(fsc_root), seconds=1.0, max_train_clips=4))}
    assert len(keys) == 3
    assert load_features(base, tmp_path, progress=False).train.features.shape[0] == 16


def test_unreadable_clip_raises_or_is_skipped_with_a_count(fsc_root: Path, tmp_path: Path) -> None:
    bad = fsc_root / "wavs/speakers/spkB/1-0.wav"
    bad.write_bytes(b"not audio at all")
    raising = DatasetConfig(kind="fsc", root=str(fsc_root), seconds=1.0)
    with pytest.raises(UserError, match=f"^{bad}: unreadable audio"):
        load_features(raising, tmp_path, progress=False)
    assert not [p for p in (tmp_path / "features").iterdir() if p.suffix != ".lock"]  # the failed build left nothing
    skipping = DatasetConfig(kind="fsc", root=str(fsc_root), seconds=1.0, on_error="skip")
    with pytest.warns(UserWarning, match=f"skipped 1 unreadable clip.*{bad}"):
        data = load_features(skipping, tmp_path, progress=False)
    assert data.train.features.shape[0] == 15 == len(data.train) == len(data.train.speakers)
    with pytest.warns(UserWarning, match="skipped 1"):  # a cache hit still says so
        load_features(skipping, tmp_path, progress=False)
    with pytest.raises(UserError, match=f"^{bad}: unreadable audio"):  # ... and still refuses under raise
        load_features(raising, tmp_path, progress=False)


def test_synthetic_corpus_features(small_corpus: Path, tmp_path: Path) -> None:
    cfg = DatasetConfig(kind="synthetic", size="small", root=str(small_corpus))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        data = load_features(cfg, tmp_path, progress=False)
    assert data.train.features.shape == (744, 80, 300) and len(data.intents) == 31
    assert set(data.test.labels.tolist()) == set(range(31))

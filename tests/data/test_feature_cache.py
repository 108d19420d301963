"""The feature cache: contents, atomic publishing, hits that decode no audio, changed audio, unreadable clips."""
from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import pytest
import soundfile as sf
import torch

from quads_search.config import DatasetConfig
from quads_search.data import feature_cache, load_features, read_fsc
from quads_search.errors import UserError

from .conftest import tone


def test_features_are_cached_and_a_hit_decodes_no_audio(fsc_root: Path, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = DatasetConfig(kind="fsc", root=str(fsc_root), seconds=1.0)
    cache = tmp_path / "cache"
    first = load_features(cfg, cache, progress=False)
    assert first.train.features.shape == (16, 80, 100) and first.train.features.dtype == torch.float16
    assert first.train.labels.dtype == torch.int64 and first.train.labels.tolist() == read_fsc(fsc_root).labels("train")
    assert first.valid.speakers == ["spkC"] * 8 and len(first.intents) == 4
    directory = cache / "features" / first.key
    assert json.loads((directory / "intents.json").read_text()) == first.intents
    assert [p.name for p in (cache / "features").iterdir() if p.suffix != ".lock"] == [first.key]  # no staging left
    monkeypatch.setattr(feature_cache, "load_audio", lambda path: pytest.fail(f"a cache hit decoded {path}"))
    second = load_features(cfg, cache, progress=False)
    assert second.key == first.key and torch.equal(second.test.features, first.test.features)


def test_key_follows_settings_and_clip_list(fsc_root: Path, tmp_path: Path) -> None:
    base = DatasetConfig(kind="fsc", root=str(fsc_root), seconds=1.0)
    keys = {load_features(cfg, tmp_path, progress=False).key
            for cfg in (base, DatasetConfig(kind="fsc", root=str(fsc_root), seconds=0.5),
                        DatasetConfig(kind="fsc", root=str(fsc_root), seconds=1.0, max_train_clips=4))}
    assert len(keys) == 3
    assert load_features(base, tmp_path, progress=False).train.features.shape[0] == 16


def test_a_replaced_clip_changes_the_key_and_its_features(fsc_root: Path, tmp_path: Path) -> None:
    cfg = DatasetConfig(kind="fsc", root=str(fsc_root), seconds=1.0)
    clip = fsc_root / "wavs/speakers/spkA/0-0.wav"  # train clip 0
    before = load_features(cfg, tmp_path, progress=False)
    sf.write(clip, tone(0.9, freq=1200), 16000, subtype="PCM_16")
    after = load_features(cfg, tmp_path, progress=False)
    assert after.key != before.key
    assert not torch.equal(after.train.features[0], before.train.features[0])
    assert torch.equal(after.train.features[1:], before.train.features[1:])
    sf.write(clip, tone(0.9, freq=700), 16000, subtype="PCM_16")  # the same size: only the mtime tells
    os.utime(clip, ns=(clip.stat().st_atime_ns, clip.stat().st_mtime_ns + 10 ** 9))
    again = load_features(cfg, tmp_path, progress=False)
    assert again.key not in (before.key, after.key)
    assert not torch.equal(again.train.features[0], after.train.features[0])


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

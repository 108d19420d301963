"""FSC and SLURP layouts load into the common Corpus; bad input is a one-line UserError."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from quads_search.config import DatasetConfig
from quads_search.data import read_corpus, read_fsc, read_slurp
from quads_search.errors import UserError

from .conftest import FSC_INTENTS, SLURP_INTENTS


def test_read_fsc(fsc_root: Path) -> None:
    corpus = read_fsc(fsc_root)
    assert corpus.intents == sorted("|".join(t) for t in FSC_INTENTS)
    assert {s: len(c) for s, c in corpus.splits.items()} == {"train": 16, "valid": 8, "test": 8}
    clip = corpus.splits["train"][0]
    assert clip.path == fsc_root / "wavs/speakers/spkA/0-0.wav" and clip.speaker == "spkA"
    assert clip.intent == "activate|lights|kitchen"
    assert corpus.labels("train")[0] == corpus.intents.index("activate|lights|kitchen")


def test_fsc_missing_column_is_named(fsc_root: Path) -> None:
    path = fsc_root / "data" / "valid_data.csv"
    path.write_text(path.read_text().replace(",location", ",place", 1))
    with pytest.raises(UserError, match=f"{path}: missing column 'location'"):
        read_fsc(fsc_root)


def test_missing_root_and_empty_split(fsc_root: Path, tmp_path: Path) -> None:
    with pytest.raises(UserError, match=f"{tmp_path / 'nope'}: dataset root does not exist"):
        read_fsc(tmp_path / "nope")
    path = fsc_root / "data" / "test_data.csv"
    path.write_text(path.read_text().splitlines()[0] + "\n")
    with pytest.raises(UserError, match=f"{path}: the test split has no clips"):
        read_fsc(fsc_root)


def test_read_slurp(slurp_root: Path) -> None:
    corpus = read_slurp(slurp_root)
    assert corpus.intents == sorted(SLURP_INTENTS)
    assert {s: len(c) for s, c in corpus.splits.items()} == {"train": 6, "valid": 6, "test": 6}
    first, second = corpus.splits["valid"][:2]
    assert first.path == slurp_root / "slurp_real" / "audio-devel-0-0.flac"
    assert (first.speaker, second.speaker) == ("u1", "unknown")
    assert first.intent == "alarm_set"


def test_slurp_bad_line_is_named(slurp_root: Path) -> None:
    path = slurp_root / "dataset" / "slurp" / "train.jsonl"
    path.write_text(path.read_text() + '{"intent": "x"\n')
    with pytest.raises(UserError, match=f"{path}:4: malformed JSON"):
        read_slurp(slurp_root)
    path.write_text('{"intent": "x"}\n')
    with pytest.raises(UserError, match=f"{path}:1: missing key 'recordings'"):
        read_slurp(slurp_root)


def test_read_corpus_dispatch_and_cap(fsc_root: Path, slurp_root: Path, small_corpus: Path, tmp_path: Path) -> None:
    full = read_corpus(DatasetConfig(kind="fsc", root=str(fsc_root)), tmp_path)
    capped = read_corpus(DatasetConfig(kind="fsc", root=str(fsc_root), max_train_clips=5), tmp_path)
    again = read_corpus(DatasetConfig(kind="fsc", root=str(fsc_root), max_train_clips=5), tmp_path)
    assert len(capped.splits["train"]) == 5 and capped.splits["train"] == again.splits["train"]
    order = [full.splits["train"].index(c) for c in capped.splits["train"]]
    assert order == sorted(order) and capped.splits["test"] == full.splits["test"]
    assert capped.intents == full.intents
    assert read_corpus(DatasetConfig(kind="slurp", root=str(slurp_root)), tmp_path).intents == sorted(SLURP_INTENTS)
    os.symlink(small_corpus, tmp_path / "corpus-small-0")  # the default synthetic root, already complete
    synthetic = read_corpus(DatasetConfig(kind="synthetic", size="small"), tmp_path)
    assert synthetic.root == tmp_path / "corpus-small-0" and len(synthetic.intents) == 31

"""The synthetic corpus: FSC's layout and label set, speaker-disjoint splits, determinism."""
from __future__ import annotations

import csv
import hashlib
import json
import re
from pathlib import Path

import espeakng_loader
import numpy as np
import pytest
import soundfile as sf

from quads_search.data import read_fsc, synthesize_corpus
from quads_search.data.espeak import SAMPLE_RATE, engine
from quads_search.data.phrases import PHRASES
from quads_search.data.synth import MARKER, VARIANTS, VOICES, plan
from quads_search.errors import UserError

FSC_31 = {
    ("activate", "lamp", "none"), ("activate", "lights", "bedroom"), ("activate", "lights", "kitchen"),
    ("activate", "lights", "none"), ("activate", "lights", "washroom"), ("activate", "music", "none"),
    ("bring", "juice", "none"), ("bring", "newspaper", "none"), ("bring", "shoes", "none"),
    ("bring", "socks", "none"), ("change language", "Chinese", "none"), ("change language", "English", "none"),
    ("change language", "German", "none"), ("change language", "Korean", "none"),
    ("change language", "none", "none"), ("deactivate", "lamp", "none"), ("deactivate", "lights", "bedroom"),
    ("deactivate", "lights", "kitchen"), ("deactivate", "lights", "none"), ("deactivate", "lights", "washroom"),
    ("deactivate", "music", "none"), ("decrease", "heat", "bedroom"), ("decrease", "heat", "kitchen"),
    ("decrease", "heat", "none"), ("decrease", "heat", "washroom"), ("decrease", "volume", "none"),
    ("increase", "heat", "bedroom"), ("increase", "heat", "kitchen"), ("increase", "heat", "none"),
    ("increase", "heat", "washroom"), ("increase", "volume", "none")}


def test_phrases_cover_fsc_intents_unambiguously() -> None:
    assert set(PHRASES) == FSC_31
    owners: dict[str, tuple] = {}
    for intent, phrases in PHRASES.items():
        assert len(phrases) >= 4
        for phrase in phrases:
            assert owners.setdefault(phrase, intent) == intent, f"{phrase!r} is said for two intents"


def test_espeak_voices_and_variants_exist() -> None:
    shipped = {p.name for p in (Path(espeakng_loader.get_data_path()) / "voices" / "!v").iterdir()}
    assert set(VARIANTS) <= shipped
    for voice in VOICES:
        audio = np.frombuffer(engine().synth("lights on", f"{voice}+{VARIANTS[0]}", 170, 50), dtype="<i2")
        assert 0.2 < len(audio) / SAMPLE_RATE < 2 and np.abs(audio).max() > 1000
    with pytest.raises(ValueError, match="no voice"):
        engine().synth("x", "xx-nonexistent")


def test_layout_and_csv_columns(small_corpus: Path) -> None:
    assert (small_corpus / MARKER).is_file()
    total = 0
    for split in ("train", "valid", "test"):
        with (small_corpus / "data" / f"{split}_data.csv").open(newline="") as f:
            rows = list(csv.reader(f))
        assert rows[0] == ["", "path", "speakerId", "transcription", "action", "object", "location"]
        for i, row in enumerate(rows[1:]):
            assert row[0] == str(i)
            assert re.fullmatch(rf"wavs/speakers/{re.escape(row[2])}/[^/]+\.wav", row[1])
            assert (small_corpus / row[1]).is_file()
        total += len(rows) - 1
    assert total == 992  # 32 voices x 31 clips: every voice says every intent


def test_intents_and_speaker_disjoint_splits(small_corpus: Path) -> None:
    corpus = read_fsc(small_corpus)
    assert len(corpus.intents) == 31
    speakers = {}
    for split, clips in corpus.splits.items():
        assert len({c.intent for c in clips}) == 31, f"{split} lacks intents"
        speakers[split] = {c.speaker for c in clips}
    assert not speakers["train"] & speakers["valid"]
    assert not speakers["train"] & speakers["test"]
    assert not speakers["valid"] & speakers["test"]


def _by_split(utterances, attribute) -> dict[str, set]:
    return {split: {attribute(u) for u in utterances if u.split == split} for split in ("train", "valid", "test")}


def _accent(u) -> str:
    return u.voice.split("+")[0]


def _variant(u) -> str:
    return u.voice.split("+")[1]


@pytest.mark.parametrize("holdout", ["speakers", "accents", "phrasings"])
def test_voice_variants_never_cross_splits(holdout: str) -> None:
    variants = _by_split(plan("default", 0, holdout), _variant)
    for a, b in (("train", "valid"), ("train", "test"), ("valid", "test")):
        assert not variants[a] & variants[b], f"a voice variant is heard in both {a} and {b}"


def test_holdout_speakers_shares_accents_as_fsc_shares_its_population() -> None:
    accents = _by_split(plan("default", 0, "speakers"), _accent)
    assert accents["train"] == set(VOICES) and len(accents["valid"] & accents["train"]) >= 6
    assert len(accents["test"] & accents["train"]) >= 6


def test_holdout_accents_hears_no_accent_in_two_splits() -> None:
    accents = _by_split(plan("default", 0, "accents"), _accent)
    for a, b in (("train", "valid"), ("train", "test"), ("valid", "test")):
        assert not accents[a] & accents[b], f"an accent is heard in both {a} and {b}"


def test_holdout_accents_is_the_corpus_every_earlier_result_used() -> None:
    """Byte for byte the plan of the corpus before holdouts were named (checked against that code)."""
    rows = [(u.split, u.speaker, u.voice, u.rate, u.pitch, list(u.intent), u.text, u.path)
            for u in plan("default", 0, "accents")]
    assert hashlib.sha256(json.dumps(rows).encode()).hexdigest()[:16] == "4d811b9da4b77968"


def test_holdout_phrasings_says_no_test_or_valid_wording_in_training() -> None:
    utterances = plan("default", 0, "phrasings")
    texts = _by_split(utterances, lambda u: u.text)
    assert not texts["train"] & texts["test"] and not texts["train"] & texts["valid"]
    for split in ("train", "valid", "test"):  # every intent is still said in every split
        assert len({u.intent for u in utterances if u.split == split}) == 31
    unseen = _by_split(plan("default", 0, "speakers"), lambda u: u.text)
    assert unseen["test"] <= unseen["train"]  # the other holdouts share one pool of wordings


def test_the_default_test_split_tells_models_apart() -> None:
    test = [u for u in plan("default", 0) if u.split == "test"]
    assert len(test) >= 1200 and len({u.speaker for u in test}) >= 12  # one clip is under 0.1 point


def test_wavs_are_16k_mono_int16_and_fit_3s(small_corpus: Path) -> None:
    for path in (small_corpus / "wavs" / "speakers").glob("*/*.wav"):
        info = sf.info(path)
        assert (info.samplerate, info.channels, info.subtype, info.format) == (16000, 1, "PCM_16", "WAV")
        assert 0.5 < info.duration <= 3.0


def test_deterministic_per_seed(small_corpus: Path, tmp_path: Path) -> None:
    again = synthesize_corpus(tmp_path / "again", "small", 0)
    for split in ("train", "valid", "test"):
        rel = f"data/{split}_data.csv"
        assert (again / rel).read_bytes() == (small_corpus / rel).read_bytes()
    wavs = sorted(p.relative_to(small_corpus) for p in small_corpus.glob("wavs/speakers/*/*.wav"))
    assert wavs == sorted(p.relative_to(again) for p in again.glob("wavs/speakers/*/*.wav"))
    assert all((again / w).read_bytes() == (small_corpus / w).read_bytes() for w in wavs)
    assert [u.text for u in plan("small", 1)] != [u.text for u in plan("small", 0)]


def test_complete_corpus_is_reused_and_others_refused(small_corpus: Path, tmp_path: Path) -> None:
    marker_time = (small_corpus / MARKER).stat().st_mtime_ns
    assert synthesize_corpus(small_corpus, "small", 0) == small_corpus
    assert (small_corpus / MARKER).stat().st_mtime_ns == marker_time
    with pytest.raises(UserError, match="size 'small' seed 0 holdout 'speakers', not size 'default' seed 0"):
        synthesize_corpus(small_corpus, "default", 0)
    with pytest.raises(UserError, match="holdout 'speakers', not size 'small' seed 0 holdout 'accents'"):
        synthesize_corpus(small_corpus, "small", 0, "accents")
    with pytest.raises(UserError, match="unknown synthetic corpus holdout 'voices'"):
        synthesize_corpus(tmp_path / "x", "small", 0, "voices")
    partial = tmp_path / "partial"
    (partial / "wavs").mkdir(parents=True)
    with pytest.raises(UserError, match=f"{partial}: exists but is not a complete synthetic corpus"):
        synthesize_corpus(partial, "small", 0)

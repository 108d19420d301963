"""Shared data fixtures: one small synthetic corpus per session, tiny real-layout FSC and SLURP sets."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from quads_search.data.synth import synthesize_corpus

FSC_INTENTS = [("activate", "lights", "kitchen"), ("deactivate", "music", "none"),
               ("bring", "shoes", "none"), ("change language", "Chinese", "none")]
SLURP_INTENTS = ["alarm_set", "weather_query", "play_music"]


def tone(seconds: float, rate: int = 16000, freq: float = 440.0, channels: int = 1) -> np.ndarray:
    """A sine plus a little noise, [samples] or [samples, channels]."""
    t = np.arange(int(seconds * rate)) / rate
    x = 0.3 * np.sin(2 * np.pi * freq * t) + 0.01 * np.random.default_rng(int(freq)).standard_normal(len(t))
    return np.stack([x] * channels, axis=1) if channels > 1 else x


@pytest.fixture(scope="session")
def small_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synthesize_corpus(tmp_path_factory.mktemp("synth") / "corpus", "small", 0)


@pytest.fixture
def fsc_root(tmp_path: Path) -> Path:
    """Real FSC layout: 2 clips per intent per speaker; speakers disjoint across splits."""
    root = tmp_path / "fsc"
    speakers = {"train": ["spkA", "spkB"], "valid": ["spkC"], "test": ["spkD"]}
    for split, names in speakers.items():
        rows = []
        for speaker in names:
            for k, (action, obj, location) in enumerate(FSC_INTENTS):
                for rep in range(2):
                    rel = f"wavs/speakers/{speaker}/{k}-{rep}.wav"
                    (root / rel).parent.mkdir(parents=True, exist_ok=True)
                    sf.write(root / rel, tone(0.5 + 0.1 * k, freq=300 + 50 * k), 16000, subtype="PCM_16")
                    rows.append([len(rows), rel, speaker, f"{action} {obj}", action, obj, location])
        (root / "data").mkdir(parents=True, exist_ok=True)
        with (root / "data" / f"{split}_data.csv").open("w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["", "path", "speakerId", "transcription", "action", "object", "location"])
            writer.writerows(rows)
    return root


@pytest.fixture
def slurp_root(tmp_path: Path) -> Path:
    """Real SLURP layout: FLAC in slurp_real/, one JSON object per line, two recordings each."""
    root = tmp_path / "slurp"
    (root / "slurp_real").mkdir(parents=True)
    (root / "dataset" / "slurp").mkdir(parents=True)
    for split in ("train", "devel", "test"):
        lines = []
        for k, intent in enumerate(SLURP_INTENTS):
            recordings = []
            for rep, user in enumerate(["u1", None]):
                name = f"audio-{split}-{k}-{rep}.flac"
                sf.write(root / "slurp_real" / name, tone(0.6, freq=200 + 100 * k), 16000, format="FLAC")
                recordings.append({"file": name, "wer": 0.0} | ({"user_id": user} if user else {}))
            scenario, _, action = intent.partition("_")
            lines.append(json.dumps({"slurp_id": k, "sentence": "x", "scenario": scenario, "action": action,
                                     "intent": intent, "entities": [], "recordings": recordings}))
        (root / "dataset" / "slurp" / f"{split}.jsonl").write_text("\n".join(lines) + "\n")
    return root

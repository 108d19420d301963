"""A synthetic Fluent-Speech-Commands-format corpus spoken by eSpeak NG.

Speakers are distinct (accent, variant) pairs with their own rate and pitch; each says every
one of the 31 intents (in a random phrasing) plus extras, with random gain, background noise
at a random SNR, and random leading/trailing silence. Voice variants (timbre: the "person")
never cross splits. What else a split holds out is named by `holdout`:

  speakers   new people from the same population, as in Fluent Speech Commands: every accent
             is heard in every split (the default);
  accents    new people with accents never heard in training (a harder challenge split);
  phrasings  new people, and wordings never heard in training: each intent keeps about a
             third of its phrasings (at least one) for validation and test only.

The same size, holdout and seed give byte-identical files.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import soundfile as sf
import torch
import torchaudio

from quads_search.cache import built_dir, is_built
from quads_search.config.units import SAMPLE_RATE
from quads_search.data import espeak
from quads_search.data.corpus import SPLITS
from quads_search.data.fsc import csv_path, write_csv
from quads_search.data.phrases import PHRASES, Intent
from quads_search.errors import UserError

Size = Literal["small", "default", "large"]
Holdout = Literal["speakers", "accents", "phrasings"]
HOLDOUTS: tuple[str, ...] = ("speakers", "accents", "phrasings")
MAX_SECONDS = 3.0
MARKER = "synthetic.json"
# size -> (train, valid, test speakers, clips per speaker); every speaker says all 31 intents.
# The default test split holds 20 x 62 = 1,240 clips, so one clip is under 0.1 point.
SIZES: dict[str, tuple[int, int, int, int]] = {
    "small": (24, 4, 4, 31), "default": (34, 8, 20, 62), "large": (68, 14, 28, 93)}
# Accents (eSpeak's English base voices) by split under `holdout: accents`; under the other
# holdouts every split draws from all of them. Voice variants (timbre) never cross splits.
ACCENTS = {"train": ["en-us", "en", "en-gb-scotland", "en-029"], "valid": ["en-us-nyc", "en-gb-x-gbcwmd"],
           "test": ["en-gb-x-rp", "en-gb-x-gbclan"]}
VOICES = [voice for split in ACCENTS.values() for voice in split]
VARIANTS = ["m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "f1", "f2", "f3", "f4", "f5", "klatt", "klatt2",
            "klatt3", "klatt4", "klatt5", "Alex", "Alicia", "Andrea", "Andy", "Annie", "Denis", "Diogo", "Gene",
            "Gene2", "Henrique", "Hugo", "Jacky", "Lee", "Marco", "Mario", "Michael", "Mike", "Nguyen", "Reed",
            "Storm", "adam", "anika", "antonio", "aunty", "belinda", "benjamin", "boris", "caleb", "david", "ed",
            "edward", "edward2", "grandma", "grandpa", "gustave", "ian", "iven", "john", "linda", "marcelo", "max",
            "michel", "miguel", "norbert", "pablo", "paul", "pedro", "quincy", "rob", "robert", "sandro", "shelby",
            "steph", "steph2", "travis", "victor", "whisper", "zac"]
VARIANT_SHARES = {"train": 0.55, "valid": 0.15, "test": 0.30}
RATES = range(140, 221, 10)  # words per minute
PITCHES = range(25, 76, 5)


@dataclass(frozen=True)
class Utterance:
    """One planned clip: who says what, and where it goes."""

    split: str
    speaker: str
    voice: str
    rate: int
    pitch: int
    intent: Intent
    text: str
    path: str  # relative to the corpus root


def _variants_by_split(rng: np.random.Generator) -> dict[str, list[str]]:
    """The variants, shuffled and cut into disjoint train / valid / test shares."""
    shuffled = [VARIANTS[i] for i in rng.permutation(len(VARIANTS))]
    n_train = round(VARIANT_SHARES["train"] * len(VARIANTS))
    n_valid = round(VARIANT_SHARES["valid"] * len(VARIANTS))
    return {"train": shuffled[:n_train], "valid": shuffled[n_train:n_train + n_valid],
            "test": shuffled[n_train + n_valid:]}


def _speakers(size: str, holdout: str, rng: np.random.Generator) -> list[tuple[str, str, int, int]]:
    """(split, accent+variant, rate, pitch) per speaker; variants never cross splits, nor do
    accents under `holdout: accents`."""
    counts = dict(zip(("train", "valid", "test"), SIZES[size][:3]))
    variants = _variants_by_split(rng)
    out = []
    for split, n in counts.items():
        accents = ACCENTS[split] if holdout == "accents" else VOICES
        pairs = [f"{accent}+{variant}" for accent in accents for variant in variants[split]]
        if n > len(pairs):
            raise ValueError(f"size {size!r}: {n} {split} speakers need more than {len(pairs)} accent+variant pairs")
        picked = rng.choice(len(pairs), n, replace=False)
        out += [(split, pairs[i], int(rng.choice(RATES)), int(rng.choice(PITCHES))) for i in picked]
    return out


HELD_OUT_SHARE = 1 / 3  # holdout phrasings: the share of each intent's wordings kept from training


def phrasings_by_split(holdout: str, seed: int) -> dict[str, dict[Intent, list[str]]]:
    """The wordings each split may say per intent: all of them, or (holdout phrasings) a
    seeded third of each intent's wordings, at least one, for validation and test only."""
    if holdout != "phrasings":
        return {split: PHRASES for split in SPLITS}
    rng = np.random.default_rng([seed, 1])
    train, held = {}, {}
    for intent, phrases in PHRASES.items():
        order = [phrases[i] for i in rng.permutation(len(phrases))]
        cut = max(1, round(HELD_OUT_SHARE * len(phrases)))
        held[intent], train[intent] = order[:cut], order[cut:]
    return {"train": train, "valid": held, "test": held}


def plan(size: str, seed: int, holdout: str = "speakers") -> list[Utterance]:
    """Every clip of a corpus, in a fixed order."""
    rng = np.random.default_rng(seed)
    intents = list(PHRASES)
    per_speaker = SIZES[size][3]
    wordings = phrasings_by_split(holdout, seed)
    out = []
    for split, voice, rate, pitch in _speakers(size, holdout, rng):
        speaker = f"{voice.replace('+', '_')}_r{rate}_p{pitch}"
        said = np.concatenate([np.arange(len(intents)), rng.choice(len(intents), per_speaker - len(intents))])
        for n, k in enumerate(rng.permutation(said)):
            intent = intents[k]
            text = str(rng.choice(wordings[split][intent]))
            name = "-".join(intent).replace(" ", "_").lower()
            path = f"wavs/speakers/{speaker}/{n:03d}-{name}.wav"
            out.append(Utterance(split, speaker, voice, rate, pitch, intent, text, path))
    return out


def _noise(rng: np.random.Generator, n: int) -> np.ndarray:
    """Unit-RMS white, pink or brown noise."""
    exponent = rng.choice([0.0, 1.0, 2.0])
    length = 1 << (n - 1).bit_length()  # a power of two: FFTs of arbitrary lengths are slow
    spectrum = np.fft.rfft(rng.standard_normal(length))
    freqs = np.arange(len(spectrum), dtype=np.float64)
    spectrum[1:] /= freqs[1:] ** (exponent / 2)
    spectrum[0] = 0
    noise = np.fft.irfft(spectrum, length)[:n]
    return noise / np.sqrt(np.mean(noise ** 2))


def render(speech: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """16 kHz float speech -> an int16 clip with random level, placement and background noise."""
    room = int(MAX_SECONDS * SAMPLE_RATE) - len(speech)
    if room < 0:
        raise RuntimeError(f"an utterance lasts {len(speech) / SAMPLE_RATE:.2f} s, over {MAX_SECONDS} s")
    lead, trail = rng.uniform(0.05, 0.6), rng.uniform(0.05, 0.5)
    scale = min(1.0, room / ((lead + trail) * SAMPLE_RATE))
    lead, trail = int(lead * scale * SAMPLE_RATE), int(trail * scale * SAMPLE_RATE)
    peak = 10 ** (rng.uniform(-20, -2) / 20)
    speech = speech * (peak / max(float(np.abs(speech).max()), 1e-6))
    clip = np.concatenate([np.zeros(lead), speech, np.zeros(trail)])
    snr_db = rng.uniform(5, 35)
    clip += _noise(rng, len(clip)) * np.sqrt(np.mean(speech ** 2) / 10 ** (snr_db / 10))
    return np.round(np.clip(clip, -1, 1) * 32767).astype(np.int16)


def _write_audio(root: Path, utterances: list[Utterance], seed: int) -> None:
    """Speak, resample to 16 kHz, add nuisance (seeded per clip) and write every clip."""
    resample = torchaudio.transforms.Resample(espeak.SAMPLE_RATE, SAMPLE_RATE)
    requests = [(u.text, u.voice, u.rate, u.pitch) for u in utterances]
    for index, (utterance, raw) in enumerate(zip(utterances, espeak.speak_fresh(requests))):
        samples = torch.from_numpy(np.frombuffer(raw, dtype="<i2").astype(np.float32) / 32768)
        clip = render(resample(samples).numpy().astype(np.float64), np.random.default_rng([seed, index]))
        path = root / utterance.path
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(path, clip, SAMPLE_RATE, subtype="PCM_16")


def _write_csvs(root: Path, utterances: list[Utterance]) -> None:
    for split in SPLITS:
        rows = [{"path": u.path, "speakerId": u.speaker, "transcription": u.text[0].upper() + u.text[1:],
                 "action": u.intent[0], "object": u.intent[1], "location": u.intent[2]}
                for u in utterances if u.split == split]
        write_csv(csv_path(root, split), rows)


def _check_reusable(out_dir: Path, size: str, seed: int, holdout: str) -> None:
    """A UserError if `out_dir` holds anything but this corpus (complete) or nothing at all."""
    if not out_dir.exists() or (out_dir.is_dir() and not any(out_dir.iterdir())):
        return
    marker = out_dir / MARKER
    if not marker.is_file() or not is_built(out_dir):
        raise UserError(f"{out_dir}: exists but is not a complete synthetic corpus (no {MARKER}); "
                        "remove it or choose another directory")
    found = json.loads(marker.read_text())
    found_holdout = found.get("holdout", "accents")  # corpora written before holdouts were named
    if (found["size"], found["seed"], found_holdout) != (size, seed, holdout):
        raise UserError(f"{out_dir}: holds the synthetic corpus of size {found['size']!r} seed {found['seed']} "
                        f"holdout {found_holdout!r}, not size {size!r} seed {seed} holdout {holdout!r}; "
                        "choose another directory")


def synthesize_corpus(out_dir: Path, size: Size, seed: int, holdout: Holdout = "speakers") -> Path:
    """Generate (or reuse, if already complete) the corpus at out_dir; returns out_dir."""
    if size not in SIZES:
        raise UserError(f"unknown synthetic corpus size {size!r}; known: {list(SIZES)}")
    if holdout not in HOLDOUTS:
        raise UserError(f"unknown synthetic corpus holdout {holdout!r}; known: {list(HOLDOUTS)}")
    out_dir = Path(out_dir).expanduser()
    _check_reusable(out_dir, size, seed, holdout)

    def build(staging: Path) -> None:
        utterances = plan(size, seed, holdout)
        _write_audio(staging, utterances, seed)
        _write_csvs(staging, utterances)
        counts = {split: sum(u.split == split for u in utterances) for split in SPLITS}
        marker = {"size": size, "seed": seed, "holdout": holdout, "clips": counts}
        (staging / MARKER).write_text(json.dumps(marker, indent=1) + "\n")

    return built_dir(out_dir, build)

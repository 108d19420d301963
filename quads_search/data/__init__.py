"""Speech data: datasets on disk, audio, and cached Whisper log-mel features.

  corpus         the splits every loader returns, and the label map from the train split
  fsc, slurp     Fluent Speech Commands' CSVs and SLURP's JSONL, read as they ship
  synth          the built-in corpus: eSpeak NG voices in FSC's layout, with named holdouts
  espeak, phrases  the speech engine (ctypes) and the 31 intents' wordings
  datasets       a DatasetConfig to a Corpus (synthesised on first use, train split capped)
  audio          WAV/FLAC to 16-kHz mono
  features       Whisper's log-mel in torch, and SpecAugment
  feature_cache  every split's features computed once, memory-mapped after
"""
from quads_search.data.audio import load_audio
from quads_search.data.corpus import SPLITS, Clip, Corpus
from quads_search.data.datasets import read_corpus
from quads_search.data.feature_cache import FeatureData, FeatureSplit, load_features
from quads_search.config.units import frames_for
from quads_search.data.features import N_MELS, log_mel, spec_augment
from quads_search.data.fsc import read_fsc
from quads_search.data.slurp import read_slurp
from quads_search.data.synth import synthesize_corpus

__all__ = ["N_MELS", "SPLITS", "Clip", "Corpus", "FeatureData", "FeatureSplit", "frames_for", "load_audio",
           "load_features", "log_mel", "read_corpus", "read_fsc", "read_slurp", "spec_augment", "synthesize_corpus"]

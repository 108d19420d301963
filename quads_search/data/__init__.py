"""Speech data: datasets on disk (FSC, SLURP, a synthetic FSC-format corpus), audio, and
cached Whisper log-mel features."""
from quads_search.data.audio import load_audio
from quads_search.data.corpus import SPLITS, Clip, Corpus
from quads_search.data.datasets import read_corpus
from quads_search.data.feature_cache import FeatureData, FeatureSplit, load_features
from quads_search.data.features import N_MELS, frames_for, log_mel, spec_augment
from quads_search.data.fsc import read_fsc
from quads_search.data.slurp import read_slurp
from quads_search.data.synth import synthesize_corpus

__all__ = ["N_MELS", "SPLITS", "Clip", "Corpus", "FeatureData", "FeatureSplit", "frames_for", "load_audio",
           "load_features", "log_mel", "read_corpus", "read_fsc", "read_slurp", "spec_augment", "synthesize_corpus"]

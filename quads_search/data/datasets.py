"""From a `DatasetConfig` to a Corpus: pick the loader, synthesise on first use, cap the train split."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from quads_search.config import DatasetConfig
from quads_search.data.corpus import Corpus
from quads_search.data.fsc import read_fsc
from quads_search.data.slurp import read_slurp
from quads_search.data.synth import synthesize_corpus

CAP_SEED = 0  # max_train_clips keeps the same subset whatever the run's seed, so caches are shared


def cap_train(corpus: Corpus, max_clips: int | None) -> Corpus:
    """Keep a seeded random `max_clips` of the training clips, in their original order."""
    train = corpus.splits["train"]
    if max_clips is None or max_clips >= len(train):
        return corpus
    keep = np.sort(np.random.default_rng(CAP_SEED).permutation(len(train))[:max_clips])
    splits = {**corpus.splits, "train": [train[i] for i in keep]}
    return Corpus(corpus.root, splits, corpus.intents)


def synthetic_dir_name(cfg: DatasetConfig) -> str:
    """Where, under the cache, a synthetic corpus lives by default."""
    return f"corpus-{cfg.size}-{cfg.holdout}-{cfg.synth_seed}"


def read_corpus(cfg: DatasetConfig, cache_dir: Path) -> Corpus:
    """The configured dataset (synthesised on first use for kind synthetic), train split capped."""
    if cfg.kind == "synthetic":
        root = Path(cfg.root).expanduser() if cfg.root else Path(cache_dir) / synthetic_dir_name(cfg)
        corpus = read_fsc(synthesize_corpus(root, cfg.size, cfg.synth_seed, cfg.holdout))
    elif cfg.kind == "fsc":
        corpus = read_fsc(Path(cfg.root), cfg.unseen_intents)
    else:
        corpus = read_slurp(Path(cfg.root), cfg.unseen_intents)
    return cap_train(corpus, cfg.max_train_clips)

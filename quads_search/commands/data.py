"""`quads-search data`: synthesise a corpus, or summarise a dataset on disk."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import soundfile as sf

from quads_search.data.corpus import SPLITS, Corpus, require_root
from quads_search.data.fsc import read_fsc
from quads_search.data.slurp import read_slurp
from quads_search.data.synth import HOLDOUTS, MARKER, SIZES, synthesize_corpus
from quads_search.errors import UserError


def add_parser(subparsers: argparse._SubParsersAction, summary: str) -> None:
    parser = subparsers.add_parser("data", help=summary)
    sub = parser.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    synth = sub.add_parser("synth", help="write a synthetic FSC-format corpus (eSpeak NG voices)")
    synth.add_argument("out_dir", type=Path, metavar="OUT_DIR")
    synth.add_argument("--size", choices=list(SIZES), default="default")
    synth.add_argument("--holdout", choices=list(HOLDOUTS), default="speakers",
                       help="what validation and test hold out: new speakers (accents shared, as in FSC), "
                            "new accents, or new phrasings too")
    synth.add_argument("--seed", type=int, default=0)
    synth.set_defaults(func=run_synth)
    info = sub.add_parser("info", help="clips, speakers and seconds per split, and the number of intents")
    info.add_argument("--kind", choices=["fsc", "slurp", "synthetic"], required=True)
    info.add_argument("--root", type=Path, required=True)
    info.add_argument("--json", action="store_true", help="print one JSON object")
    info.set_defaults(func=run_info)


def summarize(corpus: Corpus) -> dict:
    """Counts and total duration (from the audio headers) per split."""
    splits = {}
    for name in SPLITS:
        clips, seconds = corpus.splits[name], 0.0
        for clip in clips:
            try:
                seconds += sf.info(clip.path).duration
            except (RuntimeError, OSError):
                raise UserError(f"{clip.path}: unreadable audio") from None
        splits[name] = {"clips": len(clips), "speakers": len({c.speaker for c in clips}), "seconds": round(seconds, 2)}
    return {"root": str(corpus.root), "num_intents": len(corpus.intents), "splits": splits}


def _print(summary: dict) -> None:
    print(f"{summary['root']}: {summary['num_intents']} intents")
    for name, split in summary["splits"].items():
        print(f"  {name:<5} {split['clips']:>7} clips {split['speakers']:>5} speakers {split['seconds']:>10.1f} s")


def run_synth(args: argparse.Namespace) -> int:
    root = synthesize_corpus(args.out_dir, args.size, args.seed, args.holdout)
    print(f"synthetic corpus (size {args.size}, holdout {args.holdout}, seed {args.seed}) at {root}")
    _print(summarize(read_fsc(root)))
    return 0


def run_info(args: argparse.Namespace) -> int:
    root = require_root(args.root)
    if args.kind == "synthetic" and not (root / MARKER).is_file():
        raise UserError(f"{root}: not a complete synthetic corpus (no {MARKER}); "
                        "create one with `quads-search data synth`")
    corpus = read_slurp(root) if args.kind == "slurp" else read_fsc(root)
    summary = summarize(corpus)
    if args.json:
        print(json.dumps(summary))
    else:
        _print(summary)
    return 0

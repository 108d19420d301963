"""`quads-search whisper convert SRC OUT`: a faster-whisper model as a Hugging Face Whisper directory."""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from quads_search.cache import built_dir
from quads_search.errors import UserError


def add_parser(subparsers: argparse._SubParsersAction, summary: str) -> None:
    parser = subparsers.add_parser("whisper", help=summary, description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="whisper_command", required=True, metavar="ACTION")
    convert = sub.add_parser("convert", help="write a faster-whisper model as a Hugging Face Whisper directory",
                             description="Convert exactly (weights, tokenizer, generation settings); "
                                         "OUT then loads with transformers' from_pretrained.")
    convert.add_argument("src", metavar="SRC",
                         help="a directory with model.bin, config.json and tokenizer.json, or a packaged name "
                              "(whisper-tiny.en, whisper-base)")
    convert.add_argument("out", type=Path, metavar="OUT", help="new directory to write (must not exist, or be empty)")
    convert.set_defaults(func=run_convert)


def run_convert(args: argparse.Namespace) -> int:
    from quads_search.whisper.hf import write_hf_whisper
    from quads_search.whisper.resolve import require_ct2_source

    if args.out.exists() and (not args.out.is_dir() or any(args.out.iterdir())):
        raise UserError(f"{args.out}: already exists and is not an empty directory")
    source = require_ct2_source(args.src)
    start = time.perf_counter()
    built_dir(args.out.absolute(), lambda staging: write_hf_whisper(source, staging))
    print(f"{args.out}: Hugging Face Whisper written in {time.perf_counter() - start:.1f} s")
    return 0

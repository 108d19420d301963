"""`quads-search profile`: params, GMACs, sizes and GBitOPs of a student, without training."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
import yaml

from quads_search.config import ModelConfig
from quads_search.errors import UserError
from quads_search.metrics import COST_NAMES, format_metrics
from quads_search.config.units import VALID_BITS, frames_for


def add_parser(subparsers: argparse._SubParsersAction, summary: str) -> None:
    p = subparsers.add_parser("profile", help=summary, description=__doc__.splitlines()[0])
    p.add_argument("--student", required=True,
                   help="a preset (whisper-tiny|base|small|medium|large), a pretrained name or directory "
                        "(hub:<id> downloads one), or a packed model file")
    p.add_argument("--num-classes", type=int, default=31, help="intent classes of the head (default 31, FSC)")
    p.add_argument("--seconds", type=float, default=30.0, help="input length in seconds (default 30)")
    bits = p.add_mutually_exclusive_group()
    bits.add_argument("--bits", type=int, default=32, help=f"bits of every weight tensor, one of {list(VALID_BITS)}")
    bits.add_argument("--bits-map", type=Path, help="YAML/JSON mapping: default: B, plus tensor name or re:regex -> bits")
    p.add_argument("--activation-bits", type=int, default=32)
    p.add_argument("--method", choices=["kmeans", "affine"], default="kmeans", help="quantizer family (storage format)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from quads_search.core.models import PRESETS, SLUModel, encoder_arch
    from quads_search.core.profile import cost_report
    from quads_search.quant import quantizable_weights, resolve_bits

    frames = frames_for(args.seconds)
    if Path(args.student).is_file():
        from quads_search.core.packed_header import read_packed_metadata

        meta = read_packed_metadata(Path(args.student))
        arch, num_classes = dict(meta["arch"], max_source_positions=frames // 2), meta["num_classes"]
    else:
        cfg = ModelConfig(preset=args.student) if args.student in PRESETS else ModelConfig(pretrained=args.student)
        arch, num_classes = encoder_arch(cfg, frames), args.num_classes
    with torch.device("meta"):
        model = SLUModel(arch, num_classes)
    default, overrides = _bits(args)
    bits = resolve_bits(list(quantizable_weights(model)), default, overrides)
    report = cost_report(model, bits, frames, args.activation_bits, args.method)
    if args.json:
        print(json.dumps(report))
    else:
        print("\n".join(format_metrics(report, COST_NAMES)))
    return 0


def _bits(args: argparse.Namespace) -> tuple[int, dict[str, int]]:
    if args.bits_map is None:
        if args.bits not in VALID_BITS:
            raise UserError(f"--bits: must be one of {list(VALID_BITS)}, got {args.bits}")
        return args.bits, {}
    if not args.bits_map.is_file():
        raise UserError(f"--bits-map {args.bits_map}: no such file")
    try:
        mapping = yaml.safe_load(args.bits_map.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise UserError(f"--bits-map {args.bits_map}: not UTF-8 text (byte {exc.start})") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark else ""
        problem = getattr(exc, "problem", exc)
        raise UserError(f"--bits-map {args.bits_map}{where}: malformed YAML/JSON: {problem}") from None
    if not isinstance(mapping, dict):
        raise UserError(f"{args.bits_map}: expected a mapping of tensor name -> bits")
    bad = {k: v for k, v in mapping.items() if isinstance(v, bool) or not isinstance(v, int) or v not in VALID_BITS}
    if bad:
        raise UserError(f"{args.bits_map}: bits must be one of {list(VALID_BITS)}, got {bad}")
    mapping = {str(k): v for k, v in mapping.items()}
    return mapping.pop("default", 32), mapping

"""`quads-search train SPACE.yaml`: one configuration (the YAML's base values), end to end."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from quads_search.log import show_progress
from quads_search.metrics import format_metrics
from quads_search.sweep.space import load_sweep


def add_parser(subparsers: argparse._SubParsersAction, summary: str) -> None:
    p = subparsers.add_parser("train", help=summary, description=__doc__.splitlines()[0])
    p.add_argument("space", type=Path, help="search-space YAML; its base values are trained, `space` is ignored")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a dotted config key (repeatable), typed as YAML")
    p.add_argument("--smoke", action="store_true", help="apply the YAML's `smoke` overrides (about a minute)")
    p.add_argument("--out", type=Path, default=None, help="output directory (default results/<name>/train)")
    p.add_argument("--json", action="store_true", help="print one JSON object with the metrics")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from quads_search.core.run import run_quads

    config = load_sweep(args.space, args.overrides, smoke=args.smoke).run_config()
    out = args.out or Path("results") / config.name / "train"
    if args.json:  # stdout holds the JSON only
        show_progress("stderr")
    metrics = run_quads(config, out)
    if args.json:
        print(json.dumps(metrics))
    else:
        print(report(metrics))
    return 0


def report(metrics: dict) -> str:
    return "\n".join([*format_metrics(metrics), f"{'model':16s} {metrics['model_path']}"])

"""`quads-search pareto RESULTS`: non-dominated trials, fronts, hypervolumes, plots, selection, export.

Everything is chosen on validation accuracy; test accuracy is printed beside it as the
held-out estimate. Ranking on test needs an explicit `--objectives` and is warned about.
The analysis itself is `quads_search.pareto.analysis`; this module parses arguments around it.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from quads_search.errors import UserError
from quads_search.pareto.analysis import analyse, columns
from quads_search.pareto.front import DEFAULT_OBJECTIVES, held_out, parse_objectives


def add_parser(subparsers: argparse._SubParsersAction, summary: str) -> None:
    p = subparsers.add_parser("pareto", help=summary, description=__doc__.splitlines()[0])
    p.add_argument("results", type=Path, help="a results directory (all experiments in it) or one experiment")
    p.add_argument("--objectives", default=",".join(f"{m}:{d}" for m, d in DEFAULT_OBJECTIVES),
                   help="metric:max|min,... (default valid_accuracy:max,size_mb:min,gmacs:min; a constant "
                        "objective is dropped); test-split metrics (accuracy, f1_macro) are warned about")
    out = p.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="print the front as a JSON list")
    out.add_argument("--csv", action="store_true", help="print the front as CSV")
    p.add_argument("--max-size-mb", type=float, help="select the most accurate trial at most this size")
    p.add_argument("--max-gmacs", type=float, help="... at most this many GMACs")
    p.add_argument("--min-accuracy", type=float,
                   help="... at least this accurate (on the ranking objective: validation accuracy by default)")
    p.add_argument("--export", type=Path, metavar="DIR", help="copy the selected (or front) models with model cards")
    p.add_argument("--onnx", action="store_true",
                   help="with --export: also write each model as model.onnx (weights packed; `evaluate` runs it)")
    p.add_argument("--no-plots", action="store_true", help="skip pareto.png and pareto.html")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    objectives = parse_objectives(args.objectives)
    warn = lambda m: print(m, file=sys.stderr)  # noqa: E731
    if held_out(objectives):
        warn(f"warning: --objectives ranks on {', '.join(held_out(objectives))}, measured on the test split: "
             "the chosen models' test accuracy is then no longer an unbiased estimate")
    budgets = {"max_size_mb": args.max_size_mb, "max_gmacs": args.max_gmacs, "min_accuracy": args.min_accuracy}
    analysis = analyse(args.results, objectives, budgets, warn)
    if args.onnx and not args.export:
        raise UserError("--onnx: give --export DIR too (it writes model.onnx beside each exported model)")
    if args.export:
        _check_writable(args.export)
    analysis.save_front()
    cards = analysis.write_cards()
    if not args.no_plots:
        analysis.draw(cards)
    if args.json:
        print(json.dumps(analysis.records()))
    elif args.csv:
        shown = analysis.shown
        print(shown[columns(shown)].to_csv(index=False), end="")
    else:
        print(analysis.text(plots=not args.no_plots))
    if args.export:
        count = analysis.export(args.export, onnx=args.onnx)
        print(f"exported {count} model(s){' with ONNX files' if args.onnx else ''} to {args.export}", file=sys.stderr)
    return 0


def _check_writable(directory: Path) -> None:
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"--export {directory}: cannot create it ({exc.strerror})") from None
    if not os.access(directory, os.W_OK):
        raise UserError(f"--export {directory}: not writable")

"""`quads-search pareto RESULTS`: non-dominated trials, fronts, hypervolumes, plots, selection, export.

Everything is chosen on validation accuracy; test accuracy is printed beside it as the
held-out estimate. Ranking on test needs an explicit `--objectives` and is warned about.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import pandas as pd

from quads_search.errors import UserError
from quads_search.files import atomic_path, copy_file
from quads_search.pareto.cards import card_data, write_card
from quads_search.pareto.front import (
    DEFAULT_OBJECTIVES,
    finished,
    front,
    held_out,
    hypervolume_2d,
    parse_objectives,
    ranking_metric,
    reference_point,
    select,
    to_costs,
    varying,
)
from quads_search.pareto.table import DROP_COLUMNS, PAPER_BOUND, load_references, tensor_bits, with_drops, with_ratios
from quads_search.results import load_trials

TABLE_COLUMNS = ["trial_id", "experiment", "kind", "valid_accuracy", "accuracy", "f1_macro", "size_mb", "gmacs",
                 "bits_avg"]
RATIO_COLUMNS = ["size_x_teacher", "size_x_student_fp32", "gmacs_x_teacher", "gmacs_x_student_fp32"]


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
    trials = finished(load_trials(args.results, warn), objectives, args.results)
    rank = ranking_metric(objectives)
    constant = [m for m, _ in objectives if (m, _) not in varying(trials, objectives)]
    objectives = varying(trials, objectives)
    budgets = {"max_size_mb": args.max_size_mb, "max_gmacs": args.max_gmacs, "min_accuracy": args.min_accuracy}
    chosen = (select(trials, by=rank, **budgets)
              if any(v is not None for v in budgets.values()) else None)
    if chosen is not None and chosen.empty:
        raise UserError(f"{args.results}: no finished trial fits {({k: v for k, v in budgets.items() if v is not None})}")
    if args.onnx and not args.export:
        raise UserError("--onnx: give --export DIR too (it writes model.onnx beside each exported model)")
    if args.export:
        _check_writable(args.export)
    results_dir = args.results  # load_trials has checked that it is a directory
    references = load_references(trials, results_dir)
    chosen = with_drops(with_ratios(chosen, references), trials, references) if chosen is not None else None
    best = with_drops(with_ratios(front(trials, objectives), references), trials, references)
    with atomic_path(results_dir / "pareto.parquet") as temp:  # model paths relative to it: the folder can move
        best.assign(model_path=_relative(best["model_path"], results_dir)).to_parquet(temp, index=False)
    cards = {row["trial_id"]: write_card(card_data(row, references[row["experiment"]]), Path(row["model_path"]).parent)
             for _, row in best.iterrows()}
    if not args.no_plots:
        _draw(trials, best, references, objectives, constant, rank, cards, results_dir)
    shown = chosen if chosen is not None else best
    if args.json:
        print(json.dumps(_records(shown[_columns(shown)])))
    elif args.csv:
        print(shown[_columns(shown)].to_csv(index=False), end="")
    else:
        print(_report(trials, best, chosen, objectives, constant, rank, results_dir, plots=not args.no_plots))
    if args.export:
        export(shown, references, args.export, onnx=args.onnx)
        print(f"exported {len(shown)} model(s){' with ONNX files' if args.onnx else ''} to {args.export}",
              file=sys.stderr)
    return 0


def _draw(trials, best, references, objectives, constant, rank, cards, results_dir: Path) -> None:
    from quads_search.pareto.plots import plot_png
    from quads_search.pareto.report import write_html

    bits = tensor_bits(best)
    # paths relative to the report, which sits in results_dir: a moved folder's report stays right
    card_paths = dict(zip(cards, _relative([str(p) for p in cards.values()], results_dir)))
    model_paths = dict(zip(trials["trial_id"], _relative(trials["model_path"], results_dir)))
    details = {row["trial_id"]: {"kind": row.get("kind"), "model card": card_paths.get(row["trial_id"], ""),
                                 "model": model_paths[row["trial_id"]],
                                 **{c.removeprefix("param."): row[c] for c in trials.columns if c.startswith("param.")}}
               for _, row in trials.iterrows()}
    write_html(trials, best, bits, references, objectives, constant, rank, details, results_dir / "pareto.html")
    plot_png(trials, bits, references, objectives, rank, results_dir / "pareto.png")


def _records(frame: pd.DataFrame) -> list[dict]:
    """Rows as JSON-ready dicts with full float precision (pandas' to_json rounds to 10 digits)."""
    clean = frame.astype(object).where(frame.notna(), None)
    return [{k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()} for row in clean.to_dict("records")]


def _columns(frame: pd.DataFrame) -> list[str]:
    return (TABLE_COLUMNS + DROP_COLUMNS + RATIO_COLUMNS + ["model_path"]
            + [c for c in frame.columns if c.startswith("param.")])


def _bound_line(front: pd.DataFrame) -> str:
    """How many front models are within the paper's bound of the teacher, on valid and on test."""
    inside = {split: int((front[f"teacher_gap_{split}"] <= PAPER_BOUND).sum()) for split in ("valid", "test")}
    return (f"within the paper's bound ({PAPER_BOUND:.2%} below the teacher): {inside['valid']} of {len(front)} "
            f"front models on validation, {inside['test']} on test (held out)")


def _report(trials, best, chosen, objectives, constant, rank: str, results_dir: Path, plots: bool) -> str:
    lines = [f"{len(trials)} finished trials; {len(best)} non-dominated on "
             + ", ".join(f"{m} ({d})" for m, d in objectives), "", _table(best), _bound_line(best)]
    lines += [f"{m} is the same for every finished trial: left out of the front" for m in constant]
    for cost in [m for m, d in objectives if d == "min"]:
        pair = [(rank, "max"), (cost, "min")]
        hv = hypervolume_2d(to_costs(trials, pair), reference_point(trials, pair))
        lines.append(f"hypervolume {rank} vs {cost}: {hv:.6g} (reference: {rank} 0, {cost} 1.1 x the largest)")
    if chosen is not None:
        lines += ["", f"selected (best {rank} within the budgets):", _table(chosen)]
    lines += ["", f"wrote {results_dir / 'pareto.parquet'}"]
    if plots:
        lines.append(f"plots: {results_dir / 'pareto.png'}, {results_dir / 'pareto.html'}")
    return "\n".join(lines)


def _table(frame: pd.DataFrame) -> str:
    params = [c for c in frame.columns if c.startswith("param.")][:6]
    view = frame[TABLE_COLUMNS + DROP_COLUMNS + RATIO_COLUMNS[:3] + params].copy()
    names = {"accuracy": "test_acc (held out)", "valid_accuracy": "valid_acc", "size_x_teacher": "x<teacher",
             "size_x_student_fp32": "x<pre-tuned", "gmacs_x_teacher": "GMACs x<teacher",
             "teacher_gap_valid": "%<teacher valid", "teacher_gap_test": "%<teacher test",
             "fp32_trial_gap_valid": "%<fp32 trial valid", "fp32_trial_gap_test": "%<fp32 trial test"}
    view[DROP_COLUMNS] = view[DROP_COLUMNS] * 100  # relative drops, in percent
    view.columns = [names.get(c, c.removeprefix("param.")) for c in view.columns]
    return view.to_string(index=False, float_format=lambda v: f"{v:.4g}")


def _check_writable(directory: Path) -> None:
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"--export {directory}: cannot create it ({exc.strerror})") from None
    if not os.access(directory, os.W_OK):
        raise UserError(f"--export {directory}: not writable")


def export(selected: pd.DataFrame, references: dict[str, dict], directory: Path, onnx: bool = False) -> None:
    """Copy each selected packed model with its model card (markdown + JSON), and its ONNX file if `onnx`.

    The model goes first and the card last, each file by temp + fsync + rename: an export cut
    short (a full disk, a kill) leaves no card without its model beside it.
    """
    for _, row in selected.iterrows():
        card = card_data(row, references[row["experiment"]])
        target = directory / str(row["trial_id"])
        target.mkdir(parents=True, exist_ok=True)
        copy_file(Path(str(row["model_path"])), target / "model.safetensors")
        if onnx:  # imported here: onnx is an optional extra, and pareto stays quick without it
            from quads_search.deploy.onnx_export import export_onnx

            export_onnx(target / "model.safetensors", target / "model.onnx")
        write_card(card, target)


def _relative(paths, root: Path) -> list:
    """Each path relative to `root` where it lies under it (POSIX separators), else as it is."""
    base = Path(root).resolve()
    out = []
    for value in paths:
        try:
            out.append(Path(value).resolve().relative_to(base).as_posix() if isinstance(value, str) else value)
        except ValueError:  # outside root
            out.append(value)
    return out

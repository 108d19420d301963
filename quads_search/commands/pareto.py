"""`quads-search pareto RESULTS`: non-dominated trials, fronts, hypervolumes, plots, selection, export.

Everything is chosen on validation accuracy; test accuracy is printed beside it as the
held-out estimate. Ranking on test needs an explicit `--objectives` and is warned about.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

import pandas as pd

from quads_search.errors import UserError
from quads_search.pareto.front import (
    DEFAULT_OBJECTIVES,
    finished,
    front,
    held_out,
    hypervolume_2d,
    load_trials,
    parse_objectives,
    ranking_metric,
    reference_point,
    select,
    to_costs,
    varying,
)

TABLE_COLUMNS = ["trial_id", "experiment", "valid_accuracy", "accuracy", "f1_macro", "size_mb", "gmacs", "bits_avg"]


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("pareto", help="select models on accuracy against size and GMACs",
                              description=__doc__.splitlines()[0])
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
    objectives = varying(trials, objectives)
    best = front(trials, objectives)
    budgets = {"max_size_mb": args.max_size_mb, "max_gmacs": args.max_gmacs, "min_accuracy": args.min_accuracy}
    chosen = (select(trials, by=rank, **budgets)
              if any(v is not None for v in budgets.values()) else None)
    if chosen is not None and chosen.empty:
        raise UserError(f"{args.results}: no finished trial fits {({k: v for k, v in budgets.items() if v is not None})}")
    if args.export:
        _check_writable(args.export)
    results_dir = args.results  # load_trials has checked that it is a directory
    best.to_parquet(results_dir / "pareto.parquet", index=False)
    if not args.no_plots:
        from quads_search.pareto.plots import plot_png, write_html

        plot_png(trials, results_dir / "pareto.png", rank)
        write_html(trials, results_dir / "pareto.html", rank)
    shown = chosen if chosen is not None else best
    if args.json:
        print(json.dumps(_records(shown[_columns(shown)])))
    elif args.csv:
        print(shown[_columns(shown)].to_csv(index=False), end="")
    else:
        print(_report(trials, best, chosen, objectives, rank, results_dir, plots=not args.no_plots))
    if args.export:
        export(shown, args.export)
        print(f"exported {len(shown)} model(s) to {args.export}", file=sys.stderr)
    return 0


def _records(frame: pd.DataFrame) -> list[dict]:
    """Rows as JSON-ready dicts with full float precision (pandas' to_json rounds to 10 digits)."""
    clean = frame.astype(object).where(frame.notna(), None)
    return [{k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()} for row in clean.to_dict("records")]


def _columns(frame: pd.DataFrame) -> list[str]:
    return TABLE_COLUMNS + ["model_path"] + [c for c in frame.columns if c.startswith("param.")]


def _report(trials, best, chosen, objectives, rank: str, results_dir: Path, plots: bool) -> str:
    lines = [f"{len(trials)} finished trials; {len(best)} non-dominated on "
             + ", ".join(f"{m} ({d})" for m, d in objectives), "", _table(best)]
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
    view = frame[TABLE_COLUMNS + params].copy()
    view.columns = [{"accuracy": "test_acc (held out)", "valid_accuracy": "valid_acc"}.get(c, c.removeprefix("param."))
                    for c in view.columns]
    return view.to_string(index=False, float_format=lambda v: f"{v:.4g}")


def _check_writable(directory: Path) -> None:
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"--export {directory}: cannot create it ({exc.strerror})") from None
    if not os.access(directory, os.W_OK):
        raise UserError(f"--export {directory}: not writable")


def export(selected: pd.DataFrame, directory: Path) -> None:
    """Copy each selected packed model and write its model card (markdown + JSON)."""
    from quads_search.core.export import load_packed

    for _, row in selected.iterrows():
        source = Path(str(row["model_path"]))
        if not source.is_file():
            raise UserError(f"{source}: the model file of trial {row['trial_id']} is missing")
        target = directory / str(row["trial_id"])
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target / "model.safetensors")
        _, meta = load_packed(source)
        card = {"trial_id": row["trial_id"], "experiment": row["experiment"], "metrics": meta["metrics"],
                "bits": meta.get("bits", {}), "config": meta["config"], "intents": meta["intents"]}
        (target / "model_card.json").write_text(json.dumps(card, indent=2, default=str))
        (target / "MODEL_CARD.md").write_text(_card_markdown(card))


def _card_markdown(card: dict) -> str:
    m = card["metrics"]
    bits = "\n".join(f"| {name} | {b} |" for name, b in sorted(card["bits"].items()))
    return (f"# quads-search model {card['trial_id']} ({card['experiment']})\n\n"
            f"Chosen on validation accuracy {m['valid_accuracy']:.4f}. Held-out test accuracy {m['accuracy']:.4f}, "
            f"macro F1 {m['f1_macro']:.4f} (the test split never took part in choosing). "
            f"{m['params_m']:.3f} M params, "
            f"{m['gmacs']:.4f} GMACs, {m['size_mb']:.4f} MiB packed ({m['size_mb_nominal']:.4f} MiB nominal), "
            f"{m['bits_avg']:.2f} bits on average.\n\n"
            f"Load it: `from quads_search import load_packed; model, meta = load_packed('model.safetensors')`\n\n"
            f"## Bits per weight tensor\n\n| tensor | bits |\n|---|---|\n{bits}\n\n"
            f"## Configuration\n\n```json\n{json.dumps(card['config'], indent=2, default=str)}\n```\n")

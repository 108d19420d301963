"""One results folder, analysed: its front, the selection within budgets, what `pareto` prints,
draws, writes and exports. The command is argument parsing around this module; Python users
call it directly:

    analysis = analyse(Path("results"), DEFAULT_OBJECTIVES, {"max_size_mb": 0.05})
    analysis.save_front(); print(analysis.text(plots=False)); analysis.export(Path("ship"))

Everything is chosen on validation accuracy; test accuracy is carried beside it as the held-out estimate.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pandas as pd

from quads_search.errors import UserError
from quads_search.files import atomic_path, copy_file
from quads_search.pareto.cards import card_data, write_card
from quads_search.pareto.front import (
    Objectives,
    finished,
    front,
    hypervolume_2d,
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
FRONT_FILE = "pareto.parquet"


@dataclass
class ParetoAnalysis:
    """The finished trials of a results folder, their front and (with budgets) the chosen ones."""

    results_dir: Path
    trials: pd.DataFrame
    best: pd.DataFrame  # the front, with ratios and drops against the references
    chosen: pd.DataFrame | None  # the best within the budgets, where budgets were given
    references: dict[str, dict]
    objectives: Objectives  # the varying ones
    constant: list[str]  # objectives every finished trial shares: left out of the front
    rank: str  # the ranking (accuracy) objective

    @property
    def shown(self) -> pd.DataFrame:
        """What is printed and exported: the selection where there is one, else the front."""
        return self.chosen if self.chosen is not None else self.best

    def save_front(self) -> Path:
        """`pareto.parquet` in the results folder, model paths relative to it (the folder can move)."""
        path = self.results_dir / FRONT_FILE
        with atomic_path(path) as temp:
            self.best.assign(model_path=relative(self.best["model_path"], self.results_dir)).to_parquet(temp, index=False)
        return path

    def write_cards(self) -> dict[str, Path]:
        """A model card beside each front model; trial id -> its path."""
        return {row["trial_id"]: write_card(card_data(row, self.references[row["experiment"]]),
                                            Path(row["model_path"]).parent) for _, row in self.best.iterrows()}

    def draw(self, cards: dict[str, Path]) -> None:
        """`pareto.html` and `pareto.png` in the results folder."""
        from quads_search.pareto.plots import plot_png
        from quads_search.pareto.report import write_html

        bits = tensor_bits(self.best)
        write_html(self, bits, self._details(cards), self.results_dir / "pareto.html")
        plot_png(self.trials, bits, self.references, self.objectives, self.rank, self.results_dir / "pareto.png")

    def _details(self, cards: dict[str, Path]) -> dict[str, dict]:
        """Per trial, what the report's tooltip shows: kind, card and model (relative to the report), params."""
        root, trials = self.results_dir, self.trials
        card_paths = dict(zip(cards, relative([str(p) for p in cards.values()], root)))
        model_paths = dict(zip(trials["trial_id"], relative(trials["model_path"], root)))
        return {row["trial_id"]: {"kind": row.get("kind"), "model card": card_paths.get(row["trial_id"], ""),
                                  "model": model_paths[row["trial_id"]],
                                  **{c.removeprefix("param."): row[c] for c in trials.columns if c.startswith("param.")}}
                for _, row in trials.iterrows()}

    def text(self, plots: bool) -> str:
        """The human-readable report `pareto` prints."""
        lines = [f"{len(self.trials)} finished trials; {len(self.best)} non-dominated on "
                 + ", ".join(f"{m} ({d})" for m, d in self.objectives), "", table(self.best), bound_line(self.best)]
        lines += [f"{m} is the same for every finished trial: left out of the front" for m in self.constant]
        for cost in [m for m, d in self.objectives if d == "min"]:
            pair = [(self.rank, "max"), (cost, "min")]
            hv = hypervolume_2d(to_costs(self.trials, pair), reference_point(self.trials, pair))
            lines.append(f"hypervolume {self.rank} vs {cost}: {hv:.6g} "
                         f"(reference: {self.rank} 0, {cost} 1.1 x the largest)")
        if self.chosen is not None:
            lines += ["", f"selected (best {self.rank} within the budgets):", table(self.chosen)]
        lines += ["", f"wrote {self.results_dir / FRONT_FILE}"]
        if plots:
            lines.append(f"plots: {self.results_dir / 'pareto.png'}, {self.results_dir / 'pareto.html'}")
        return "\n".join(lines)

    def records(self) -> list[dict]:
        """The shown rows as JSON-ready dicts, full float precision (pandas' to_json rounds to 10 digits)."""
        frame = self.shown[columns(self.shown)]
        clean = frame.astype(object).where(frame.notna(), None)
        return [{k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()} for row in clean.to_dict("records")]

    def export(self, directory: Path, onnx: bool = False) -> int:
        """Copy each shown model with its model card (and model.onnx if `onnx`); how many."""
        export_models(self.shown, self.references, directory, onnx)
        return len(self.shown)


def analyse(results: Path, objectives: Objectives, budgets: dict[str, float | None] | None = None,
            warn: Callable[[str], None] = print) -> ParetoAnalysis:
    """Read every finished trial under `results`; its front on the objectives that vary, and the best
    within `budgets` ({max_size_mb, max_gmacs, min_accuracy}; None values are ignored)."""
    trials = finished(load_trials(results, warn), objectives, results)
    rank = ranking_metric(objectives)
    kept = varying(trials, objectives)
    bounds = {k: v for k, v in (budgets or {}).items() if v is not None}
    chosen = select(trials, by=rank, **bounds) if bounds else None
    if chosen is not None and chosen.empty:
        raise UserError(f"{results}: no finished trial fits {bounds}")
    references = load_references(trials, results)
    if chosen is not None:
        chosen = with_drops(with_ratios(chosen, references), trials, references)
    best = with_drops(with_ratios(front(trials, kept), references), trials, references)
    return ParetoAnalysis(Path(results), trials, best, chosen, references, kept,
                          [m for m, d in objectives if (m, d) not in kept], rank)


def columns(frame: pd.DataFrame) -> list[str]:
    """The columns `--json` and `--csv` give: the table's, drops, ratios, the model and every parameter."""
    return (TABLE_COLUMNS + DROP_COLUMNS + RATIO_COLUMNS + ["model_path"]
            + [c for c in frame.columns if c.startswith("param.")])


def bound_line(front_rows: pd.DataFrame) -> str:
    """How many front models are within the paper's bound of the teacher, on valid and on test."""
    inside = {split: int((front_rows[f"teacher_gap_{split}"] <= PAPER_BOUND).sum()) for split in ("valid", "test")}
    return (f"within the paper's bound ({PAPER_BOUND:.2%} below the teacher): {inside['valid']} of {len(front_rows)} "
            f"front models on validation, {inside['test']} on test (held out)")


def table(frame: pd.DataFrame) -> str:
    """A fixed-width table of models: accuracy, costs, drops in percent, ratios and the first parameters."""
    params = [c for c in frame.columns if c.startswith("param.")][:6]
    view = frame[TABLE_COLUMNS + DROP_COLUMNS + RATIO_COLUMNS[:3] + params].copy()
    names = {"accuracy": "test_acc (held out)", "valid_accuracy": "valid_acc", "size_x_teacher": "x<teacher",
             "size_x_student_fp32": "x<pre-tuned", "gmacs_x_teacher": "GMACs x<teacher",
             "teacher_gap_valid": "%<teacher valid", "teacher_gap_test": "%<teacher test",
             "fp32_trial_gap_valid": "%<fp32 trial valid", "fp32_trial_gap_test": "%<fp32 trial test"}
    view[DROP_COLUMNS] = view[DROP_COLUMNS] * 100  # relative drops, in percent
    view.columns = [names.get(c, c.removeprefix("param.")) for c in view.columns]
    return view.to_string(index=False, float_format=lambda v: f"{v:.4g}")


def export_models(selected: pd.DataFrame, references: dict[str, dict], directory: Path, onnx: bool = False) -> None:
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


def relative(paths, root: Path) -> list:
    """Each path relative to `root` where it lies under it (POSIX separators), else as it is."""
    base = Path(root).resolve()
    out = []
    for value in paths:
        try:
            out.append(Path(value).resolve().relative_to(base).as_posix() if isinstance(value, str) else value)
        except ValueError:  # outside root
            out.append(value)
    return out

"""Regenerate every figure that README.md and docs/benchmarks.md show, from saved result files only.

Run from the repository root:
    python -m bench.figures                 # every figure, nothing trained or searched
    python -m bench.figures --save RESULTS  # first: snapshot a default sweep into docs/bench-results/

Each figure and the file it comes from:
  docs/pareto-default.png     <- docs/bench-results/default-sweep/ (trials.parquet, references.json, the
                                 trials' packed models), through `quads-search pareto` as a user runs it
  docs/schedules-default.png  <- docs/bench-results/schedules-default.json  (bench.schedules --reanalyse)
  docs/samplers-smoke.png     <- docs/bench-results/samplers.json           (bench.samplers --reanalyse)
  docs/search-wallclock.png   <- docs/bench-results/search-wallclock.json   (bench.search_wallclock --reanalyse)
  docs/search-wallclock-lr003.png <- docs/bench-results/search-wallclock-lr003.json (the same, rerun at
                                 the quantize lr 0.03 and seed budgets of today's default space)
A figure whose result file is absent is reported and skipped.
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd

from quads_search.results import resolve_model_path, stored_model_path

ROOT = Path(__file__).parents[1]
DOCS = ROOT / "docs"
SWEEP = DOCS / "bench-results" / "default-sweep"
REANALYSED = {"schedules-default.png": ("bench.schedules", "schedules-default.json"),
              "samplers-smoke.png": ("bench.samplers", "samplers.json"),
              "search-wallclock.png": ("bench.search_wallclock", "search-wallclock.json"),
              "search-wallclock-lr003.png": ("bench.search_wallclock", "search-wallclock-lr003.json")}


def save(results: Path) -> None:
    """Copy one experiment's rows, references and models (not Ray's state) with relative model paths."""
    experiment = next(p.parent for p in results.glob("*/trials.parquet"))
    if SWEEP.exists():
        shutil.rmtree(SWEEP)
    target = SWEEP / experiment.name
    trials = pd.read_parquet(experiment / "trials.parquet")
    trials["model_path"] = [stored_model_path(resolve_model_path(p, experiment), experiment) if isinstance(p, str)
                            else None for p in trials["model_path"]]
    for relative in trials["model_path"].dropna():
        (target / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(experiment / relative, target / relative)
    trials.to_parquet(target / "trials.parquet", index=False)
    shutil.copy2(experiment / "references.json", target / "references.json")
    print(f"saved {len(trials)} trials of {experiment} to {target}")


def regenerate() -> None:
    if (SWEEP / "mixed_precision" / "trials.parquet").is_file():
        subprocess.run([sys.executable, "-m", "quads_search.cli", "pareto", str(SWEEP)], check=True,
                       stdout=subprocess.DEVNULL)
        shutil.copy2(SWEEP / "pareto.png", DOCS / "pareto-default.png")
        print(f"docs/pareto-default.png <- {SWEEP.relative_to(ROOT)}")
    else:
        print(f"skipped docs/pareto-default.png: no {SWEEP.relative_to(ROOT)}")
    for figure, (module, result) in REANALYSED.items():
        source = DOCS / "bench-results" / result
        if not source.is_file():
            print(f"skipped docs/{figure}: no {source.relative_to(ROOT)}")
            continue
        subprocess.run([sys.executable, "-m", module, "--reanalyse", str(source), "--plot", str(DOCS / figure)],
                       check=True, stdout=subprocess.DEVNULL)
        print(f"docs/{figure} <- {source.relative_to(ROOT)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--save", type=Path, metavar="RESULTS", help="snapshot this results directory's sweep first")
    args = parser.parse_args()
    if args.save:
        save(args.save)
    regenerate()


if __name__ == "__main__":
    main()

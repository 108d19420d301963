"""`quads-search run SPACE.yaml`: the sweep. Ray Tune runs Optuna's multi-objective search over the space.

Exit codes: 0 every trial finished; 1 some (or all) trials failed or errored, the finished
ones are kept and a one-line summary counts the causes; 2 a user error (bad YAML, key or
value; nothing started); 130 interrupted (Ctrl-C), the state saved for --resume.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from quads_search.sweep.space import load_sweep


def add_parser(subparsers: argparse._SubParsersAction, summary: str) -> None:
    p = subparsers.add_parser("run", help=summary, description=__doc__.splitlines()[0])
    p.add_argument("space", type=Path, help="search-space YAML (see search_spaces/)")
    p.add_argument("--results-dir", type=Path, default=Path("results"),
                   help="where <name>/trials.parquet and Ray Tune's state go (default: results)")
    p.add_argument("--num-samples", type=int, help="number of trials (overrides search.num_samples)")
    p.add_argument("--max-concurrent", type=int, help="trials at once (overrides search.max_concurrent)")
    p.add_argument("--address", help="join an existing Ray cluster (auto or HOST:PORT) instead of a local Ray")
    p.add_argument("--dashboard-host", default="127.0.0.1",
                   help="where a local Ray's dashboard listens (default 127.0.0.1; wider is warned about)")
    p.add_argument("--resume", action="store_true", help="continue the interrupted sweep in --results-dir")
    p.add_argument("--smoke", action="store_true", help="apply the YAML's `smoke` overrides (a few minutes)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a dotted config key (repeatable), typed as YAML")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    overrides = list(args.overrides)
    if args.num_samples is not None:
        overrides.append(f"search.num_samples={args.num_samples}")
    if args.max_concurrent is not None:
        overrides.append(f"search.max_concurrent={args.max_concurrent}")
    config = load_sweep(args.space, overrides, smoke=args.smoke)  # validated before Ray starts
    if not args.address:  # Ray reads this when imported: it keeps a local Ray's processes on 127.0.0.1
        os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    from quads_search.sweep.driver import run_sweep

    outcome = run_sweep(config, args.results_dir, address=args.address, resume=args.resume,
                        dashboard_host=args.dashboard_host)
    if outcome.failures:
        kept = f"the {outcome.finished} finished ones are kept" if outcome.finished else "no trial finished"
        print(f"quads-search: {outcome.failure_summary()}; {kept} (train.log per trial under "
              f"{outcome.experiment_dir / 'models'})", file=sys.stderr)
        return 1
    return 0

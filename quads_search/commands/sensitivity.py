"""`quads-search sensitivity SPACE.yaml`: Hessian-trace sensitivity of each searched bit group, and budgeted allocations.

Ω of a group at b bits = Σ over its tensors of Tr(H)/n · ||W − Q_b(W)||², H the Hessian of the
pre-tuned student's training cross-entropy (Hutchinson estimate), Q_b the space's base
quantizer. Under `search.seeds` size budgets the least-Ω allocations are what
`search.warm_start: sensitivity` enqueues; the greedy ones are shown beside them.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from quads_search.errors import ConfigError
from quads_search.log import show_progress
from quads_search.sweep.search_checks import allocation_problems
from quads_search.sweep.space import load_sweep


def add_parser(subparsers: argparse._SubParsersAction, summary: str) -> None:
    p = subparsers.add_parser("sensitivity", help=summary, description=__doc__.splitlines()[0])
    p.add_argument("space", type=Path, help="search-space YAML; its bits.* parameters are the groups")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a dotted config key (repeatable), typed as YAML; search.seeds sets the budgets")
    p.add_argument("--smoke", action="store_true", help="apply the YAML's `smoke` overrides")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from quads_search.core.prepare import prepare
    from quads_search.sweep.plan_report import plot, summary, table
    from quads_search.sweep.seeding import make_plan

    config = load_sweep(args.space, args.overrides, smoke=args.smoke)
    problems = allocation_problems(config)
    if problems:
        raise ConfigError(str(args.space), problems)
    if args.json:  # stdout holds the JSON only
        show_progress("stderr")
    prepared = prepare(config.run_config())
    plan = make_plan(config, prepared, config.search.seeds)
    plot_path = plan.sensitivity.directory.with_name(f"{plan.sensitivity.directory.name}-{config.name}.png")
    report = summary(plan)
    plot(plan, plot_path)
    report.update(space=str(args.space), plot=str(plot_path))
    print(json.dumps(report) if args.json else table(report))
    return 0

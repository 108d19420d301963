"""A sensitivity plan (`sweep.seeding.Plan`) as data, a table and a plot: what `quads-search sensitivity`
prints and draws, reachable from Python.

    plan = make_plan(config, prepare(config.run_config()), config.search.seeds)
    report = summary(plan); print(table({**report, "plot": "plan.png"})); plot(plan, Path("plan.png"))
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from quads_search.quant.size import MIB

if TYPE_CHECKING:
    from quads_search.core.allocation import Allocation
    from quads_search.sweep.seeding import Plan


def _allocation(allocation: Allocation, fixed: int) -> dict:
    return {"bits": allocation.bits, "size_mb": (allocation.size + fixed) / MIB, "omega": allocation.cost}


def summary(plan: Plan) -> dict:
    """The plan as plain data: settings, groups (Ω and size per width), allocations per budget."""
    sens = plan.sensitivity
    groups = []
    for group in plan.groups:
        traces = [sens.tensors[t] for t in group.tensors]
        params = sum(t.params for t in traces)
        groups.append({"name": group.name, "tensors": list(group.tensors), "params": params,
                       "trace_per_param": sum(t.trace for t in traces) / params if params else 0.0,
                       "omega": {o.bits: o.cost for o in plan.options[group.name]},
                       "size_mb": {o.bits: o.size / MIB for o in plan.options[group.name]}})
    allocations = [{"budget_mb": item.budget / MIB, "exact": _allocation(item.exact, plan.fixed),
                    "greedy": _allocation(item.greedy, plan.fixed), "greedy_gap": item.gap} for item in plan.budgets]
    return {"settings": sens.settings, "seconds": sens.seconds, "cache": str(sens.directory),
            "tensors": {n: {"params": t.params, "trace": t.trace, "trace_sem": t.trace_sem}
                        for n, t in sens.tensors.items()},
            "flat_tensors": sorted(n for n, t in sens.tensors.items() if t.flat),
            "groups": groups, "fixed_size_mb": plan.fixed / MIB, "allocations": allocations,
            "greedy_gap_max": max((a["greedy_gap"] for a in allocations), default=0.0)}


def table(report: dict) -> str:
    return "\n".join([*_group_lines(report), "", *_allocation_lines(report), f"plot: {report['plot']}"])


def _group_lines(report: dict) -> list[str]:
    s, widths = report["settings"], sorted({int(b) for g in report["groups"] for b in g["omega"]})
    lines = [(f"sensitivity of {len(report['groups'])} bit groups of the pre-tuned student ({s['method']} quantizer; "
              f"Hutchinson: {s['probes']} probes x {s['batches']} training batches of {s['batch_size']}, seed "
              f"{s['seed']}; computed in {report['seconds']:.1f} s, cached in {report['cache']})"),
             f"{'#':>2} {'group':34s} {'params':>8s} {'Tr(H)/n':>10s}  " + " ".join(f"{f'Ω@{b}':>9s}" for b in widths)]
    for i, g in enumerate(report["groups"], 1):
        omega = " ".join(f"{g['omega'][b]:9.2e}" if b in g["omega"] else f"{'-':>9s}" for b in widths)
        lines.append(f"{i:2d} {g['name']:34s} {g['params']:8d} {g['trace_per_param']:10.3e}  {omega}")
    if report["flat_tensors"]:
        lines.append(f"no positive curvature measured (Ω counted as 0): {', '.join(report['flat_tensors'])}")
    return lines


def _allocation_lines(report: dict) -> list[str]:
    numbers = " ".join(f"{f'#{i}':>3s}" for i in range(1, len(report["groups"]) + 1))
    lines = [(f"least-Ω allocations under {len(report['allocations'])} size budgets (exact: multiple-choice "
              f"knapsack; greedy: lowest Ω added per byte saved); bits per group #"),
             f"{'budget MiB':>10s} {'size MiB':>9s} {'Ω exact':>9s} {'Ω greedy':>9s} {'gap':>6s}  {numbers}"]
    for a in report["allocations"]:
        bits = " ".join(f"{a['exact']['bits'][g['name']]:3d}" for g in report["groups"])
        lines.append(f"{a['budget_mb']:10.4f} {a['exact']['size_mb']:9.4f} {a['exact']['omega']:9.2e} "
                     f"{a['greedy']['omega']:9.2e} {a['greedy_gap']:6.1%}  {bits}")
    return lines


def plot(plan: Plan, path: Path) -> None:
    """Ω per group against bits, and the least Ω reachable against size with the budgeted allocations."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from quads_search.core.allocation import frontier

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    for i, group in enumerate(plan.groups, 1):
        points = [(o.bits, o.cost) for o in plan.options[group.name] if o.cost > 0]  # log axes: Ω > 0 only
        if points:
            left.plot(*zip(*points), marker="o", label=f"#{i} {group.name[len('bits.'):]}")
    left.set(xscale="log", yscale="log", xlabel="bits", ylabel="Ω = Σ Tr(H)/n · ||W − Q(W)||²",
             title="sensitivity per group")
    widths = sorted({o.bits for options in plan.options.values() for o in options})
    left.set_xticks(widths, labels=[str(b) for b in widths], minor=False)
    left.set_xticks([], minor=True)
    left.legend(fontsize=7)
    front = [a for a in frontier(plan.options) if a.cost > 0]  # log axis: an all-exact allocation is left out
    right.step([(a.size + plan.fixed) / MIB for a in front], [a.cost for a in front], where="post", color="grey",
               label="least Ω at each size (exact)")
    for name, pick, marker in (("exact", lambda b: b.exact, "o"), ("greedy", lambda b: b.greedy, "x")):
        picked = [pick(b) for b in plan.budgets if pick(b).cost > 0]
        right.scatter([(a.size + plan.fixed) / MIB for a in picked], [a.cost for a in picked], marker=marker,
                      zorder=3, label=f"{name} under each budget")
    for b in plan.budgets:
        right.axvline(b.budget / MIB, color="lightgrey", linewidth=0.8, zorder=0)
    right.set(yscale="log", xlabel="packed size (MiB)", ylabel="total Ω", title="budgeted allocations")
    right.legend(fontsize=7)
    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    os.replace(tmp, path)

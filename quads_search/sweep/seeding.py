"""Sensitivity-budgeted bit allocations, and the `seeded` trials that start a sweep with them.

The space's `bits.*` parameters are the groups: `bits.<key>` sets the tensors whose width
that key decides in a trial (the last matching entry of `quantization.bits` wins, as
`resolve_bits` applies them; `bits.default` owns the tensors no other entry names). For
`search.seeds` size budgets spread over the space's range, the allocation of least total
sensitivity (`core.sensitivity`, summed over each group's tensors) is found exactly
(`core.allocation`), and the greedy one beside it. Ray-free: the driver, the
`sensitivity` command and the benches share it.
"""
from __future__ import annotations

import logging
import operator
from dataclasses import dataclass
from typing import Callable

from torch import nn

from quads_search.config import SweepConfig
from quads_search.core.allocation import Allocation, Option, exact, greedy, greedy_gap, spread_budgets
from quads_search.core.prepare import Prepared
from quads_search.core.sensitivity import Sensitivity, sensitivity
from quads_search.quant import quantizable_weights, resolve_bits, stored_bytes
from quads_search.quant.size import MIB
from quads_search.sweep.budget import BudgetCheck, is_over
from quads_search.sweep.search_checks import bit_widths
from quads_search.sweep.params import apply_params
from quads_search.sweep.references import Enqueued, space_values

logger = logging.getLogger(__name__)

SEEDED = "seeded"


@dataclass(frozen=True)
class BitGroup:
    """A searched `bits.*` parameter: the widths it may take and the tensors (full names) it sets."""

    name: str
    widths: tuple[int, ...]
    tensors: tuple[str, ...]


@dataclass(frozen=True)
class Budgeted:
    """The exact and the greedy allocation under one budget (total bytes, fixed tensors included)."""

    budget: int
    exact: Allocation
    greedy: Allocation

    @property
    def gap(self) -> float:
        return greedy_gap(self.exact.cost, self.greedy.cost)


@dataclass(frozen=True)
class Plan:
    """Sensitivities, groups, their options (bytes and Ω per width), the fixed bytes and the budgeted allocations."""

    sensitivity: Sensitivity
    groups: list[BitGroup]
    options: dict[str, list[Option]]
    fixed: int
    budgets: list[Budgeted]


def bit_groups(config: SweepConfig, model: nn.Module) -> tuple[list[BitGroup], dict[str, int]]:
    """The groups of `model`'s quantizable tensors, and the widths of those no group sets.

    The space must pass `allocation_problems` (at least one `bits.*` parameter, all widths valid).
    """
    searched = {n: bit_widths(n, p) for n, p in config.space.items() if n.startswith("bits.")}
    probe = apply_params(config.run_config(), {n: w[0] for n, w in searched.items()}).quantization.bits
    names = list(quantizable_weights(model))
    owner = dict.fromkeys(names, "default")
    for key in (k for k in probe if k != "default"):  # in the order resolve_bits applies them
        owner.update({n: key for n, b in resolve_bits(names, 32, {key: 4}).items() if b == 4})
    widths = resolve_bits(names, probe["default"], {k: v for k, v in probe.items() if k != "default"})
    groups = [BitGroup(name, w, tuple(n for n in names if owner[n] == name[len("bits."):]))
              for name, w in searched.items()]
    grouped = {t for g in groups for t in g.tensors}
    return groups, {n: b for n, b in widths.items() if n not in grouped}


Measure = Callable[[int, int], int]  # (parameters, bit width) -> what they count towards a budget


def fixed_bytes(model: nn.Module, fixed_bits: dict[str, int], grouped: set[str], method: str) -> int:
    """Stored bytes of every trainable parameter outside the groups, as `size_report` counts them."""
    return _fixed(model, fixed_bits, grouped, lambda count, bits: stored_bytes(count, bits, method))


def group_options(groups: list[BitGroup], sens: Sensitivity, method: str) -> dict[str, list[Option]]:
    """Per group and width: stored bytes and Ω summed over the group's tensors."""
    return _options(groups, sens, lambda count, bits: stored_bytes(count, bits, method))


def _fixed(model: nn.Module, fixed_bits: dict[str, int], grouped: set[str], measure: Measure) -> int:
    return sum(measure(p.numel(), fixed_bits.get(n, 32))
               for n, p in model.named_parameters() if p.requires_grad and n not in grouped)


def _options(groups: list[BitGroup], sens: Sensitivity, measure: Measure) -> dict[str, list[Option]]:
    return {g.name: [Option(b, sum(measure(sens.tensors[t].params, b) for t in g.tensors),
                            sum(sens.tensors[t].omega(b) for t in g.tensors)) for b in g.widths]
            for g in groups}


def capped_budgets(options: dict[str, list[Option]], fixed: int, count: int, max_bytes: int | None) -> list[int]:
    """`spread_budgets`, over the range up to `max_bytes` (a `search.budget.size_mb`) where that is lower."""
    spread = spread_budgets(options, fixed, count)
    low = fixed + sum(min(o.size for o in group) for group in options.values())
    high = fixed + sum(max(o.size for o in group) for group in options.values())
    if max_bytes is None or max_bytes >= high or max_bytes <= low:  # at or below the smallest: none fits anyway
        return spread
    return [int(low * (max_bytes / low) ** ((i + 0.5) / count)) for i in range(count)]


def make_plan(config: SweepConfig, prepared: Prepared, count: int, max_bytes: int | None = None) -> Plan:
    """Sensitivity (cached), groups and the allocations under `count` budgets (up to `max_bytes`).

    With `search.seed_low_bits` the lowest budget is replaced by the least-Ω allocation at that
    many average bits, where one exists and fits `max_bytes` (`under_average_bits`)."""
    sens = sensitivity(config.run_config(), prepared)
    method = config.quantization.method
    groups, fixed_bits = bit_groups(config, prepared.student)
    options = group_options(groups, sens, method)
    fixed = fixed_bytes(prepared.student, fixed_bits, {t for g in groups for t in g.tensors}, method)
    budgets = []
    for budget in capped_budgets(options, fixed, count, max_bytes):
        best, quick = exact(options, budget - fixed), greedy(options, budget - fixed)
        if best is None or quick is None:  # budgets lie inside the range: both always fit
            raise RuntimeError(f"no allocation fits {budget} bytes, inside the range spread_budgets chose")
        budgets.append(Budgeted(budget, best, quick))
    low_bits = config.search.seed_low_bits
    lowest = None if low_bits is None else under_average_bits(prepared.student, groups, fixed_bits, sens,
                                                              options, fixed, low_bits)
    if budgets and lowest is not None and (max_bytes is None or lowest.budget <= max_bytes):
        budgets[0] = lowest
    elif budgets and low_bits is not None:
        logger.info(f"search.seed_low_bits={low_bits}: no allocation of the space averages that few bits"
                    + ("" if lowest is None else " within search.budget.size_mb") + "; the lowest seed is the "
                    f"lowest size budget's, at {budgets[0].budget / MIB:.4f} MiB")
    return Plan(sens, groups, options, fixed, budgets)


def under_average_bits(model: nn.Module, groups: list[BitGroup], fixed_bits: dict[str, int], sens: Sensitivity,
                       options: dict[str, list[Option]], fixed: int, bits_avg: float) -> Budgeted | None:
    """The least-Ω allocation whose parameter-weighted bits (`size_report`'s `bits_avg`) are at most
    `bits_avg`, as a budget of its own packed bytes; None if even the narrowest averages more.

    The same knapsack, counting bits (parameters x width) instead of bytes: a byte budget near
    2 bits can hold an allocation at 2.01 average bits, and 2.0 is where low-bit claims are judged.
    """
    total = sum(p.numel() for p in model.parameters() if p.requires_grad)
    fixed_count = _fixed(model, fixed_bits, {t for g in groups for t in g.tensors}, operator.mul)
    best = exact(_options(groups, sens, operator.mul), int(bits_avg * total) - fixed_count)
    if best is None:
        return None
    size = sum(o.size for name, width in best.bits.items() for o in options[name] if o.bits == width)
    quick = greedy(options, size)
    if quick is None:  # the exact allocation itself fits `size`, so some sequence of moves does
        raise RuntimeError(f"the greedy allocation found nothing within {size} bytes, which an allocation fits")
    return Budgeted(fixed + size, Allocation(best.bits, size, best.cost), quick)


def seeded_trials(config: SweepConfig, plan: Plan) -> list[Enqueued]:
    """One trial per distinct exact allocation, every other searched parameter at its base value."""
    out, seen = [], []
    for item in plan.budgets:
        if item.exact.bits not in seen:
            seen.append(item.exact.bits)
            params, _ = space_values(config, item.exact.bits)
            out.append(Enqueued(params, {"kind": SEEDED}))
    return out


def warm_start_trials(config: SweepConfig, prepared: Prepared) -> list[Enqueued]:
    """The trials `search.warm_start` enqueues after the references (none unless it is `sensitivity`).

    Under `search.budget` the size budgets spread up to `size_mb`, and a seed over any budgeted
    key is left out (it would only be rejected)."""
    if config.search.warm_start != "sensitivity":
        return []
    budget = config.search.hard_budget()
    max_bytes = int(budget.size_mb * MIB) if budget is not None and budget.size_mb is not None else None
    plan = make_plan(config, prepared, config.search.seeds, max_bytes=max_bytes)
    trials = seeded_trials(config, plan)
    repeats = len(plan.budgets) - len(trials)
    if budget is not None:
        check = BudgetCheck(budget, config.run_config(), len(prepared.data.intents))
        within = [t for t in trials if not is_over(check.constraints(t.params))]
        over, trials = len(trials) - len(within), within
    logger.info(f"warm start: {len(trials)} sensitivity-budgeted allocations enqueued after the references"
                + (f" ({repeats} budgets repeated an allocation)" if repeats else "")
                + (f" ({over} over search.budget left out)" if budget is not None and over else "")
                + f"; sensitivity in {plan.sensitivity.directory}")
    return trials

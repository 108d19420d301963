"""Bit allocations under a size budget: one width per tensor group, least total sensitivity.

A multiple-choice knapsack: each group takes exactly one of its options (bit width, bytes,
sensitivity Ω), the bytes must fit the budget, the summed Ω is minimised. Groups are few, so
it is solved exactly by dynamic programming over Pareto-optimal partial allocations (a
partial allocation no smaller and no less sensitive than another can never complete into a
better one, so only the (bytes, Ω) front survives each group). The greedy heuristic beside
it is HAWQ's usual one; `greedy_gap` says what it loses.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Option:
    """One width a group may take: its stored bytes and its sensitivity there."""

    bits: int
    size: int
    cost: float


@dataclass(frozen=True)
class Allocation:
    """One width per group, with the groups' bytes and Ω summed (fixed bytes excluded)."""

    bits: dict[str, int]
    size: int
    cost: float


Groups = dict[str, list[Option]]


def frontier(groups: Groups) -> list[Allocation]:
    """Every allocation that no other beats on both bytes and Ω, smallest first."""
    _check(groups)
    states: list[tuple[int, float, tuple[int, ...]]] = [(0, 0.0, ())]
    for options in groups.values():
        states = _pareto([(size + o.size, cost + o.cost, bits + (o.bits,))
                          for size, cost, bits in states for o in options])
    return [Allocation(dict(zip(groups, bits)), size, cost) for size, cost, bits in states]


def _pareto(states: list[tuple[int, float, tuple[int, ...]]]) -> list[tuple[int, float, tuple[int, ...]]]:
    """The states with less Ω than every smaller-or-equal state (ties: the first in (bytes, Ω, bits) order)."""
    kept, best = [], float("inf")
    for state in sorted(states):
        if state[1] < best:
            kept.append(state)
            best = state[1]
    return kept


def exact(groups: Groups, budget: int) -> Allocation | None:
    """The allocation of least Ω within `budget` bytes (None if even the smallest does not fit)."""
    fitting = [a for a in frontier(groups) if a.size <= budget]
    return min(fitting, key=lambda a: (a.cost, a.size)) if fitting else None


def greedy(groups: Groups, budget: int) -> Allocation | None:
    """From every group at its widest, repeatedly lower the width that adds the least Ω per byte saved.

    A move goes to the next lower width of a group that saves bytes (a tiny tensor's 8-bit
    codebook can outweigh its fp16 values). None if no sequence of moves fits `budget`.
    """
    _check(groups)
    current = {name: max(options, key=lambda o: o.bits) for name, options in groups.items()}
    while sum(o.size for o in current.values()) > budget:
        moves = [(_ratio(current[name], lower), -(current[name].size - lower.size), name, lower)
                 for name, options in groups.items() if (lower := _next_lower(options, current[name]))]
        if not moves:
            return None
        _, _, name, lower = min(moves, key=lambda m: m[:3])
        current[name] = lower
    return Allocation({n: o.bits for n, o in current.items()}, sum(o.size for o in current.values()),
                      sum(o.cost for o in current.values()))


def _next_lower(options: list[Option], now: Option) -> Option | None:
    lower = [o for o in options if o.bits < now.bits and o.size < now.size]
    return max(lower, key=lambda o: o.bits) if lower else None


def _ratio(now: Option, lower: Option) -> float:
    return (lower.cost - now.cost) / (now.size - lower.size)


def greedy_gap(exact_cost: float, greedy_cost: float) -> float:
    """How much more Ω the greedy allocation carries, relative to the optimum (0: it found it)."""
    if exact_cost == 0:
        return 0.0 if greedy_cost == 0 else float("inf")
    return (greedy_cost - exact_cost) / exact_cost


def spread_budgets(groups: Groups, fixed: int, count: int) -> list[int]:
    """`count` total-byte budgets, one in the middle of each of `count` equal geometric slices of
    the (smallest, largest) allocation range.

    Geometric, because widths multiply sizes: evenly spaced bytes put every seed of the default
    space at 3.1-6.3 average bits of its 1.7-8.3, none where the low-bit front is. Slice middles,
    not slice edges: the lowest seed then sits just above the narrowest allocation (the default
    space: 2.01 bits; `search.seed_low_bits` moves it to <= 2.0), not a fifth of the range up, and no seed
    lands on an end, whose uniform allocations the reference trials already cover.
    """
    _check(groups)
    low = fixed + sum(min(o.size for o in options) for options in groups.values())
    high = fixed + sum(max(o.size for o in options) for options in groups.values())
    return [int(low * (high / low) ** ((i + 0.5) / count)) for i in range(count)]


def _check(groups: Groups) -> None:
    empty = [name for name, options in groups.items() if not options]
    if not groups or empty:
        raise ValueError(f"every group needs at least one option; got {len(groups)} groups, empty: {empty}")

"""`quads-search sensitivity` on the pre-tuned smoke student: groups, allocations, a plot, and its cache."""
import dataclasses
import itertools
import json
import logging

import pytest

from quads_search.core.planned import planned_costs, planned_size_mb
from quads_search.core.sensitivity import sensitivity
from quads_search.quant.size import MIB
from quads_search.sweep.params import apply_params
from quads_search.sweep.seeding import make_plan
from tests.conftest import SPACE
from tests.runner import run_cli


@pytest.mark.slow
def test_the_sensitivity_command_reports_groups_allocations_and_a_plot_and_caches(smoke_config, prepared, smoke_cache):
    out = run_cli("sensitivity", SPACE, "--smoke", "--json", "--set", f"cache_dir={smoke_cache}",
                  "--set", "search.seeds=3")
    assert out.returncode == 0, out.stderr[-3000:]
    report = json.loads(out.stdout)
    groups = [n for n in smoke_config.space if n.startswith("bits.")]
    assert [g["name"] for g in report["groups"]] == groups and len(groups) == 7
    for group in report["groups"]:
        omega = [group["omega"][str(b)] for b in sorted(map(int, group["omega"]))]
        assert len(omega) >= 3 and all(a > b for a, b in itertools.pairwise(omega)), group  # fewer bits, more damage
    assert len(report["allocations"]) == 3
    base = smoke_config.run_config()
    for item in report["allocations"]:
        exact, greedy = item["exact"], item["greedy"]
        assert exact["size_mb"] <= item["budget_mb"] and greedy["size_mb"] <= item["budget_mb"]
        assert exact["omega"] <= greedy["omega"] * (1 + 1e-12) and item["greedy_gap"] >= 0
        planned = planned_size_mb(apply_params(base, exact["bits"]), len(prepared.data.intents))
        assert exact["size_mb"] == pytest.approx(planned, rel=1e-12)  # sizes as the run will report them
    with open(report["plot"], "rb") as png:
        assert png.read(8) == b"\x89PNG\r\n\x1a\n"
    again = sensitivity(base, prepared)  # from the cache, not recomputed
    assert str(again.directory) == report["cache"] and again.seconds == report["seconds"]


def _seeded(config, prepared, low_bits):
    search = dataclasses.replace(config.search, seed_low_bits=low_bits)
    return make_plan(dataclasses.replace(config, search=search), prepared, 4)


@pytest.mark.slow
def test_the_lowest_seed_is_the_least_sensitive_allocation_at_two_average_bits(smoke_config, prepared):
    base, classes = smoke_config.run_config(), len(prepared.data.intents)
    at_two, by_size = _seeded(smoke_config, prepared, 2.0), _seeded(smoke_config, prepared, None)
    assert at_two.budgets[1:] == by_size.budgets[1:]  # only the lowest seed moves
    lowest = at_two.budgets[0]
    planned = planned_costs(apply_params(base, lowest.exact.bits), classes)
    assert planned["bits_avg"] <= 2.0 and lowest.exact.size + at_two.fixed == lowest.budget
    assert planned["size_mb"] == pytest.approx(lowest.budget / MIB, rel=1e-12)
    assert lowest.greedy.size <= lowest.exact.size and lowest.exact.cost <= lowest.greedy.cost * (1 + 1e-12)
    # no allocation of the space at <= 2 average bits has less Ω (every one enumerated)
    omega = {g.name: {o.bits: o.cost for o in at_two.options[g.name]} for g in at_two.groups}
    params = {g.name: sum(at_two.sensitivity.tensors[t].params for t in g.tensors) for g in at_two.groups}
    trainable = {n: p.numel() for n, p in prepared.student.named_parameters() if p.requires_grad}
    outside = sum(c * 32 for n, c in trainable.items() if n not in {t for g in at_two.groups for t in g.tensors})
    total = sum(trainable.values())
    costs = [sum(omega[g.name][w] for g, w in zip(at_two.groups, widths))
             for widths in itertools.product(*(g.widths for g in at_two.groups))
             if outside + sum(params[g.name] * w for g, w in zip(at_two.groups, widths)) <= 2.0 * total]
    assert lowest.exact.cost == pytest.approx(min(costs), rel=1e-12)
    records, handler, logger = [], logging.Handler(logging.INFO), logging.getLogger("quads_search.sweep.seeding")
    handler.emit, level = records.append, logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        too_few = _seeded(smoke_config, prepared, 0.5)  # below the narrowest allocation
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    assert too_few.budgets == by_size.budgets
    assert any("search.seed_low_bits=0.5: no allocation of the space averages that few bits" in r.getMessage()
               for r in records)

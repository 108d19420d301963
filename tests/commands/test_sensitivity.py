"""`quads-search sensitivity` on the pre-tuned smoke student: groups, allocations, a plot, and its cache."""
import itertools
import json

import pytest

from quads_search.core.planned import planned_size_mb
from quads_search.core.sensitivity import sensitivity
from quads_search.sweep.params import apply_params
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

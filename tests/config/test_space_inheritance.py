"""Spaces inherit: `base: mixed_precision.yaml` and only the differences, each of them visible."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from quads_search.config.convert import to_dict
from quads_search.config.loading import read_space
from quads_search.errors import UserError
from quads_search.sweep.space import load_sweep

SPACES = Path(__file__).parents[2] / "search_spaces"


def _flat(data: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in data.items():
        if isinstance(value, dict) and key not in ("space", "smoke"):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[prefix + key] = value
    return out


@pytest.mark.parametrize("name", ["schedules", "student_shape"])
@pytest.mark.parametrize("smoke", [False, True])
def test_a_derived_space_is_its_base_but_for_the_keys_it_states(name, smoke):
    own = yaml.safe_load((SPACES / f"{name}.yaml").read_text())
    assert own["base"] == "mixed_precision.yaml" and "dataset" not in own and "teacher" not in own
    stated = set(_flat({k: v for k, v in own.items() if k not in ("base", "smoke")}))
    if smoke:
        stated |= set((own.get("smoke") or {}) | (yaml.safe_load((SPACES / "mixed_precision.yaml").read_text())["smoke"]))
    derived = _flat(to_dict(load_sweep(SPACES / f"{name}.yaml", [], smoke=smoke)))
    base = _flat(to_dict(load_sweep(SPACES / "mixed_precision.yaml", [], smoke=smoke)))
    differs = {k for k in derived if derived[k] != base.get(k)} - {"space", "smoke"}
    assert differs - {"name"} and all(any(k == s or k.startswith(s + ".") for s in stated) for k in differs), \
        sorted(differs)
    assert set(derived["space"]) == set(own["space"])  # a space is replaced, not merged into the base's


def test_a_base_chain_reports_inherited_lines_and_refuses_cycles(tmp_path):
    (tmp_path / "a.yaml").write_text("base: b.yaml\nname: a\n")
    (tmp_path / "b.yaml").write_text("name: b\ntraining:\n  alpha: 0.2\n")
    raw, lines = read_space(tmp_path / "a.yaml")
    assert raw == {"name": "a", "training": {"alpha": 0.2}}
    assert lines["training.alpha"] == "3 of b.yaml" and lines["name"] == 2
    (tmp_path / "b.yaml").write_text("base: a.yaml\nname: b\n")
    with pytest.raises(UserError, match="leads back to itself"):
        read_space(tmp_path / "a.yaml")
    (tmp_path / "c.yaml").write_text("base: [x]\n")
    with pytest.raises(UserError, match="base: must be a path"):
        read_space(tmp_path / "c.yaml")

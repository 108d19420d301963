"""Search-space YAML: loading, overrides, every error collected with its key and line."""
from pathlib import Path

import pytest
import yaml

from quads_search.config import (
    CycleSchedule,
    SweepConfig,
    build,
    load_sweep_config,
    to_dict,
)
from quads_search.errors import ConfigError, UserError
from quads_search.sweep.space import load_sweep

SPACE = Path(__file__).parents[2] / "search_spaces" / "mixed_precision.yaml"


def write(tmp_path: Path, mutate) -> Path:
    raw = yaml.safe_load(SPACE.read_text())
    mutate(raw)
    path = tmp_path / "space.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_shipped_space_loads_and_round_trips():
    config = load_sweep_config(SPACE)
    assert config.name == "mixed_precision"
    assert config.space["training.alpha"].uniform == [0.0, 0.03]
    assert build(SweepConfig, to_dict(config), "round trip") == config


def test_every_error_is_reported_together_with_key_and_line(tmp_path):
    def mutate(raw):
        raw["training"]["colour"] = "blue"          # unknown key
        raw["training"]["batch_size"] = "large"     # wrong type
        raw["quantization"]["bits"]["default"] = 9             # out of range
        raw["training"]["alpha"] = 1.5              # out of [0, 1]
    with pytest.raises(ConfigError) as info:
        load_sweep_config(write(tmp_path, mutate))
    text = str(info.value)
    assert len(info.value.problems) == 4, info.value.problems
    assert "training.colour (line" in text and "unknown key" in text
    assert "training.batch_size (line" in text and "expected int" in text
    assert "quantization.bits.default (line" in text and "got 9" in text
    assert "training.alpha (line" in text


def test_set_overrides_are_typed_as_yaml_and_win_over_smoke():
    config = load_sweep_config(SPACE, ["training.gamma=0.25", "search.num_samples=5", "dataset.seconds=2"],
                               smoke=True)
    assert config.training.gamma == 0.25
    assert config.search.num_samples == 5          # --set wins over smoke's 3
    assert config.dataset.seconds == 2.0
    assert config.dataset.size == "small"          # from smoke
    assert config.training.schedule == CycleSchedule(cycles=1, distill=1, quantize=1)


def test_set_can_build_a_schedule_and_a_regex_override():
    config = load_sweep_config(SPACE, ["training.schedule=[{stage: distill, epochs: 1}, {stage: quantize, epochs: 0}]",
                                       r"quantization.bits.re:layers\.0\..*=2"])
    assert [s.stage for s in config.training.schedule] == ["distill", "quantize"]
    assert config.quantization.bits == {"default": 4, r"re:layers\.0\..*": 2}


@pytest.mark.parametrize("override, message", [
    ("quantization.bits.re:nothing_here=4", "matches no"),
    ("space.bits.re:zzz={choice: [2]}", "matches no"),
    ("space.training.alpha={uniform: [0.5, 2.0]}", "must be in [0, 1]"),
    ("space.nowhere.x={choice: [1]}", "must set a key under"),
    ("training.schedule=nonsense", "training.schedule (line"),
    ("search.objectives.speed=max", "unknown metric"),
    ("search.objectives.accuracy=max", "held-out test split: search on valid_accuracy"),
    ("training.schedule={cycles: 0}", "training.schedule.cycles (line"),
    ("training.schedule=[{stage: distill, epochs: 0}]", "training.schedule.0.epochs (line"),
    ("dataset.seconds=0.75", "even number of 10 ms frames"),
    ("search.seed_low_bits=0", "must be a number > 0 or null, got 0.0"),
    ("search.seed_low_bits=two", "search.seed_low_bits (line"),
])
def test_semantic_errors_name_the_key(override, message):
    with pytest.raises(UserError) as info:
        load_sweep(SPACE, [override])
    assert message in str(info.value)


def test_malformed_yaml_names_the_line(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("name: x\ndataset: {kind: synthetic\nteacher: {}\n")
    with pytest.raises(UserError, match=r"bad.yaml:\d+: malformed YAML"):
        load_sweep_config(path)


def test_missing_section_is_named(tmp_path):
    with pytest.raises(ConfigError, match="space: required section is missing"):
        load_sweep_config(write(tmp_path, lambda raw: raw.pop("space")))


@pytest.mark.parametrize("path", sorted(SPACE.parent.glob("*.yaml")), ids=lambda p: p.name)
@pytest.mark.parametrize("smoke", [False, True])
def test_every_shipped_space_validates_and_names_its_command(path, smoke):
    config = load_sweep(path, smoke=smoke)
    assert config.space and config.name == path.stem
    assert f"quads-search run search_spaces/{path.name}" in path.read_text().split("\nname:")[0]


def test_a_config_error_survives_pickling_across_processes():
    import pickle

    error = pickle.loads(pickle.dumps(ConfigError("space.yaml", ["a: bad", "b: worse"])))
    assert (error.source, error.problems, str(error)) == ("space.yaml", ["a: bad", "b: worse"], "space.yaml: a: bad; b: worse")


def _defaults_of(cls) -> dict:
    """Every field of a config dataclass at its default, sections built from their own defaults."""
    import dataclasses
    import typing

    hints, out = typing.get_type_hints(cls), {}
    for f in dataclasses.fields(cls):
        if f.default is not dataclasses.MISSING:
            out[f.name] = f.default
        elif f.default_factory is not dataclasses.MISSING:
            out[f.name] = f.default_factory()
        elif dataclasses.is_dataclass(hints[f.name]):
            out[f.name] = hints[f.name](**_defaults_of(hints[f.name]))
    return out


def test_the_schema_defaults_are_the_shipped_space_so_a_key_left_out_means_the_shipped_value():
    from quads_search.config import RunConfig, SearchConfig, to_dict

    shipped = load_sweep(SPACE)
    defaults = {**to_dict(RunConfig(name=shipped.name, **_defaults_of(RunConfig))),
                "search": to_dict(SearchConfig())}
    loaded = to_dict(shipped)
    assert {k: loaded[k] for k in defaults} == defaults


def test_soft_constraints_with_the_random_sampler_are_an_error_that_names_the_way_out():
    # random search is what docs/decisions.md recommends under search.budget; it cannot prefer feasible trials
    with pytest.raises(ConfigError, match=r"search\.constraints.*need sampler tpe, nsga2 or gp"):
        load_sweep(SPACE, ["search.constraints.size_mb=0.05", "search.sampler=random"])
    assert load_sweep(SPACE, ["search.constraints.size_mb=0.05"]).search.constraints

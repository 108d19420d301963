"""Raw YAML data -> the schema's dataclasses, every problem collected with its key and line.

A hand-written converter rather than pydantic: it range-checks (`problems()`) a section even
when a sibling field failed its type check, so one pass reports every problem, and it names
the one union member a value was meant as (`training.schedule` is a preset, a cycle spec or
a list of stages) instead of one error per member.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

from quads_search.config.schema import RunConfig
from quads_search.errors import ConfigError


def build(cls: type, raw: Any, source: str, lines: dict[str, int] | None = None) -> Any:
    """Convert a raw mapping into `cls`, raising one ConfigError with every problem."""
    problems: list[str] = []
    value = _convert(cls, raw, "", problems, lines or {})
    if problems:
        raise ConfigError(source, problems)
    return value


def _where(key: str, lines: dict[str, int | str]) -> str:
    probe = key
    while probe and probe not in lines:
        probe = probe.rpartition(".")[0]
    return f"{key} (line {lines[probe]})" if probe in lines else key


def _convert(tp: Any, value: Any, key: str, problems: list[str], lines: dict[str, int]) -> Any:
    origin = get_origin(tp)
    if dataclasses.is_dataclass(tp):
        return _convert_dataclass(tp, value, key, problems, lines)
    if origin is Union or (origin is not None and str(origin) == "<class 'types.UnionType'>"):
        return _convert_union(tp, value, key, problems, lines)
    if origin is Literal:
        if value not in get_args(tp):
            problems.append(f"{_where(key, lines)}: must be one of {list(get_args(tp))}, got {value!r}")
        return value
    if origin is list:
        if not isinstance(value, list):
            problems.append(f"{_where(key, lines)}: expected a list, got {type(value).__name__} {value!r}")
            return value
        (item_tp,) = get_args(tp)
        return [_convert(item_tp, v, f"{key}.{i}", problems, lines) for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            problems.append(f"{_where(key, lines)}: expected a mapping, got {type(value).__name__} {value!r}")
            return value
        _, value_tp = get_args(tp)
        return {str(k): _convert(value_tp, v, f"{key}.{k}", problems, lines) for k, v in value.items()}
    return _convert_scalar(tp, value, key, problems, lines)


def _convert_scalar(tp: Any, value: Any, key: str, problems: list[str], lines: dict[str, int]) -> Any:
    if tp is Any:
        return value
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp is float and isinstance(value, str):  # YAML 1.1 reads 1e-3 (no dot) as a string
        try:
            value = float(value)
        except ValueError:
            pass
    if tp is float and isinstance(value, float) and not math.isfinite(value):  # .nan, .inf: no setting means that
        problems.append(f"{_where(key, lines)}: must be a finite number, got {value!r}")
        return value
    if isinstance(value, tp) and not (tp is int and isinstance(value, bool)):
        return value
    problems.append(f"{_where(key, lines)}: expected {tp.__name__}, got {type(value).__name__} {value!r}")
    return value


def _convert_union(tp: Any, value: Any, key: str, problems: list[str], lines: dict[str, int]) -> Any:
    options = get_args(tp)
    if value is None:
        if type(None) in options:
            return None
        problems.append(f"{_where(key, lines)}: must not be empty")
        return value
    for option in options:
        if option is type(None):
            continue
        trial: list[str] = []
        converted = _convert(option, value, key, trial, lines)
        if not trial:
            return converted
    shown = [o for o in options if o is not type(None)]
    same_shape = [o for o in shown if isinstance(value, _raw_type(o))]
    if len(shown) == 1 or len(same_shape) == 1:  # that option's own problems, with their keys
        return _convert(shown[0] if len(shown) == 1 else same_shape[0], value, key, problems, lines)
    problems.append(f"{_where(key, lines)}: {value!r} fits none of {[_type_name(o) for o in shown]}")
    return value


def _raw_type(tp: Any) -> type:
    """The YAML value type an annotation is written as."""
    if dataclasses.is_dataclass(tp):
        return dict
    origin = get_origin(tp)
    if origin is Literal:
        return tuple({type(arg) for arg in get_args(tp)})
    if origin in (list, dict):
        return origin
    return tp if isinstance(tp, type) else object


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _convert_dataclass(cls: type, value: Any, key: str, problems: list[str], lines: dict[str, int]) -> Any:
    prefix = f"{key}." if key else ""
    if not isinstance(value, dict):
        problems.append(f"{_where(key, lines)}: expected a mapping, got {type(value).__name__} {value!r}")
        return None
    hints = get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for unknown in sorted(set(map(str, value)) - set(fields)):
        problems.append(f"{_where(prefix + unknown, lines)}: unknown key; known: {sorted(fields)}")
    kwargs, failed = {}, set()
    for name, f in fields.items():
        before = len(problems)
        if name in value:
            converted = _convert(hints[name], value[name], prefix + name, problems, lines)
            if len(problems) == before:
                kwargs[name] = converted
            else:
                failed.add(name)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            problems.append(f"{_where(prefix + name, lines)}: required key is missing")
    required = {n for n, f in fields.items() if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING}
    if required - set(kwargs):
        return None
    obj = cls(**kwargs)  # fields that failed keep their defaults so the others are still range-checked
    for sub, message in obj.problems() if hasattr(obj, "problems") else []:
        if sub.split(".")[0] in failed:
            continue
        full = prefix + sub if sub else key
        problems.append(f"{_where(full, lines)}: {message}")
    return obj


def to_dict(config: Any) -> Any:
    """A config as plain YAML-ready data (round-trips through `build`)."""
    return dataclasses.asdict(config)


def run_config_from_dict(data: dict, source: str = "<run config>") -> RunConfig:
    """Rebuild a RunConfig from `to_dict` output (used by trials and exported models)."""
    return build(RunConfig, data, source)

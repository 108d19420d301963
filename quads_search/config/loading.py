"""Reading a search-space YAML: safe load with line numbers, `--set` and `--smoke` overrides.

The YAML is read with a safe loader into plain dicts, overridden by `--set key=value`,
then converted (`convert.build`) into the frozen dataclasses of `schema`, which collects
every problem with its dotted key and YAML line into one `ConfigError`.

A space may start from another: `base: mixed_precision.yaml` (a path relative to the file)
reads that file first and lays this one over it, mapping by mapping; a `space` section
replaces the base's whole search space, since a different search is the point of a new file.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from quads_search.config.convert import build
from quads_search.config.schema import SweepConfig
from quads_search.errors import ConfigError, UserError

REQUIRED_SECTIONS = ("name", "dataset", "teacher", "student", "training", "quantization", "search", "space")


def load_sweep_config(path: str | Path, overrides: list[str] = (), smoke: bool = False) -> SweepConfig:
    """Read a search-space YAML, apply `--set` overrides (and the `smoke` section), check the schema.

    What the space does to a student is checked by `sweep.space.load_sweep`, which calls this.
    """
    raw, lines = read_space(path)
    missing = [k for k in REQUIRED_SECTIONS if k not in raw]
    if missing:
        raise ConfigError(str(path), [f"{k}: required section is missing" for k in missing])
    if smoke:  # the YAML's smoke overrides first, so that --set still wins
        smoke_overrides = raw.get("smoke") or {}
        if not isinstance(smoke_overrides, dict):
            raise ConfigError(str(path), ["smoke: must be a mapping of dotted keys to values"])
        for key, value in smoke_overrides.items():
            set_dotted(raw, str(key), value, str(path))
    apply_overrides(raw, overrides, str(path))
    return build(SweepConfig, raw, str(path), lines)


BASE_KEY = "base"
REPLACED = ("space",)  # sections a derived space replaces whole instead of merging into


def read_space(path: str | Path, seen: tuple[Path, ...] = ()) -> tuple[dict, dict[str, int | str]]:
    """A space YAML with its `base:` chain resolved: the base's keys, then this file's over them.

    An inherited key's line names the file it came from.
    """
    path = Path(path)
    raw, lines = read_yaml(path)
    base = raw.pop(BASE_KEY, None)
    if base is None:
        return raw, lines
    if not isinstance(base, str):
        raise UserError(f"{path}: {BASE_KEY}: must be a path to another space YAML, got {base!r}")
    base_path = (path.parent / base).resolve()
    if base_path in seen or base_path == path.resolve():
        raise UserError(f"{path}: {BASE_KEY}: {base} leads back to itself")
    base_raw, base_lines = read_space(base_path, (*seen, path.resolve()))
    inherited = {k: (v if isinstance(v, str) else f"{v} of {base_path.name}") for k, v in base_lines.items()}
    for section in REPLACED:
        if section in raw:
            base_raw.pop(section, None)
            inherited = {k: v for k, v in inherited.items() if k != section and not k.startswith(section + ".")}
    return merge(base_raw, raw), {**inherited, **lines}


def merge(base: dict, over: dict) -> dict:
    """`over` laid over `base`: mappings merge key by key, anything else (values, lists) replaces."""
    out = dict(base)
    for key, value in over.items():
        out[key] = merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def read_yaml(path: str | Path) -> tuple[dict, dict[str, int]]:
    """Safe-load a YAML mapping and remember the line of every dotted key."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such file")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise UserError(f"{path}: not UTF-8 text (byte {exc.start}: {exc.reason}); save it as UTF-8") from None
    except OSError as exc:
        raise UserError(f"{path}: cannot read it ({exc.strerror})") from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark else ""
        raise UserError(f"{path}{where}: malformed YAML: {getattr(exc, 'problem', exc)}") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: the top level must be a mapping of sections, got {type(data).__name__}")
    lines: dict[str, int] = {}
    _record_lines(node, "", lines)
    return data, lines


def _record_lines(node: yaml.Node, prefix: str, lines: dict[str, int]) -> None:
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = f"{prefix}{key_node.value}"
            lines[key] = key_node.start_mark.line + 1
            _record_lines(value_node, key + ".", lines)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            lines[f"{prefix}{i}"] = item.start_mark.line + 1
            _record_lines(item, f"{prefix}{i}.", lines)


def apply_overrides(raw: dict, overrides: list[str], source: str) -> None:
    """Apply `dotted.key=value` strings; values are typed as YAML would type them."""
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise UserError(f"--set {item!r}: expected dotted.key=value")
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError:
            raise UserError(f"--set {item!r}: the value is not valid YAML") from None
        set_dotted(raw, key, value, source)


def set_dotted(raw: dict, key: str, value: Any, source: str) -> None:
    """Set `a.b.0.c` inside nested dicts/lists, creating missing mappings.

    Keys under `space.`, `quantization.bits.` (and the other name-keyed mappings) are names that may contain dots,
    so the remainder after those prefixes is one key.
    """
    for prefix in ("space.", "quantization.bits.", "search.objectives.", "search.constraints.", "smoke."):
        if key.startswith(prefix):
            parts = prefix.rstrip(".").split(".") + [key[len(prefix):]]
            break
    else:
        parts = key.split(".")
    target: Any = raw
    for i, part in enumerate(parts[:-1]):
        if isinstance(target, list):
            if not part.isdigit() or int(part) >= len(target):
                raise UserError(f"{source}: {'.'.join(parts[:i + 1])}: no such list index")
            target = target[int(part)]
        elif isinstance(target, dict):
            if not isinstance(target.get(part), (dict, list)):
                target[part] = {}
            target = target[part]
        else:
            raise UserError(f"{source}: {'.'.join(parts[:i])} is a value, cannot set {key}")
    last = parts[-1]
    if isinstance(target, list):
        if not last.isdigit() or int(last) >= len(target):
            raise UserError(f"{source}: {key}: no such list index")
        target[int(last)] = value
    else:
        target[last] = value

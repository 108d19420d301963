"""Typed, validated configuration for one QUADS run and for a sweep over many.

The YAML is read with a safe loader into plain dicts, overridden by `--set key=value`,
then converted into the frozen dataclasses below. Conversion collects every problem
(unknown key, wrong type, value out of range) with its dotted key and YAML line, and
raises one `ConfigError` listing them all, before anything heavy starts.
"""
from __future__ import annotations

import builtins
import dataclasses
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

import yaml

from quads_search.errors import ConfigError, UserError

VALID_BITS = (1, 2, 3, 4, 5, 6, 7, 8, 16, 32)
StageKind = Literal["pretune", "distill", "quantize", "joint"]


@dataclass(frozen=True)
class DatasetConfig:
    """Where the speech comes from and how it becomes log-mel features."""

    kind: Literal["synthetic", "fsc", "slurp"] = "synthetic"
    root: str | None = None  # synthetic: where to generate (default: <cache_dir>/corpus-<size>-<seed>)
    size: Literal["small", "default", "large"] = "default"  # synthetic only
    synth_seed: int = 0  # synthetic only
    seconds: float = 3.0  # feature length; pretrained Whisper needs 30
    spec_augment: bool = False
    on_error: Literal["raise", "skip"] = "raise"  # unreadable clips: stop, or skip with a count
    max_train_clips: int | None = None  # cap, for smoke runs

    def problems(self) -> list[tuple[str, str]]:
        out = []
        if self.kind != "synthetic" and not self.root:
            out.append(("root", f"is required for kind {self.kind!r}"))
        if not 0.5 <= self.seconds <= 30:
            out.append(("seconds", f"must be in [0.5, 30], got {self.seconds}"))
        elif round(self.seconds * 100) % 2:  # Whisper's stride-2 convolution halves the frames
            out.append(("seconds", f"must give an even number of 10 ms frames, got {self.seconds}"))
        if self.max_train_clips is not None and self.max_train_clips < 1:
            out.append(("max_train_clips", f"must be >= 1, got {self.max_train_clips}"))
        return out


@dataclass(frozen=True)
class LossWeights:
    """Weights of L_1, L_GT (cross-entropy) and L_centroid in one stage's loss."""

    l1: float = 0.0
    ce: float = 1.0
    centroid: float = 0.0

    def problems(self) -> list[tuple[str, str]]:
        return [(k, f"must be >= 0, got {v}") for k, v in dataclasses.asdict(self).items() if v < 0]


@dataclass(frozen=True)
class StageConfig:
    """One stage of the schedule. Unset optimizer fields take the stage kind's defaults."""

    stage: StageKind
    epochs: int
    optimizer: Literal["adam", "adamw", "sgd"] | None = None
    lr: float | None = None  # encoder learning rate
    head_lr: float | None = None
    momentum: float | None = None
    cosine: bool | None = None  # cosine annealing over the stage
    loss: LossWeights | None = None  # None: derived from training.loss, alpha and gamma

    def problems(self) -> list[tuple[str, str]]:
        out = []
        low = 0 if self.stage == "quantize" else 1  # quantize for 0 epochs = post-training quantization
        if self.epochs < low:
            out.append(("epochs", f"must be >= {low} for a {self.stage} stage, got {self.epochs}"))
        for name in ("lr", "head_lr"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                out.append((name, f"must be > 0, got {value}"))
        if self.momentum is not None and not 0 <= self.momentum < 1:
            out.append(("momentum", f"must be in [0, 1), got {self.momentum}"))
        return out


@dataclass(frozen=True)
class CycleSchedule:
    """A generated schedule: `cycles` x (distill, joint, quantize) stages, leaving out those of 0 epochs."""

    cycles: int = 2
    distill: int = 2
    quantize: int = 2
    joint: int = 0

    def problems(self) -> list[tuple[str, str]]:
        out = [(k, f"must be >= 0, got {v}") for k, v in dataclasses.asdict(self).items() if v < 0]
        if self.cycles < 1:
            out.append(("cycles", f"must be >= 1, got {self.cycles}"))
        if self.distill + self.quantize + self.joint == 0:
            out.append(("", "needs at least one of distill, quantize, joint > 0"))
        return out


@dataclass(frozen=True)
class ModelConfig:
    """A Whisper encoder: a pretrained id or local path, a preset shape, or an explicit shape."""

    pretrained: str | None = None
    preset: Literal["whisper-tiny", "whisper-base", "whisper-small", "whisper-medium", "whisper-large"] | None = None
    d_model: int = 64
    layers: int = 2
    heads: int = 4
    ffn: int = 256
    dropout: float = 0.0

    def problems(self) -> list[tuple[str, str]]:
        out = []
        if self.pretrained and self.preset:
            out.append(("preset", "set either pretrained or preset, not both"))
        for name in ("d_model", "layers", "heads", "ffn"):
            if getattr(self, name) < 1:
                out.append((name, f"must be >= 1, got {getattr(self, name)}"))
        if self.heads >= 1 and self.d_model % self.heads:
            out.append(("heads", f"must divide d_model={self.d_model}, got {self.heads}"))
        if not 0 <= self.dropout < 1:
            out.append(("dropout", f"must be in [0, 1), got {self.dropout}"))
        return out


@dataclass(frozen=True)
class PretuneConfig:
    """Task fine-tuning done once per model and dataset, then cached and shared by all trials."""

    epochs: int = 30
    optimizer: Literal["adam", "adamw", "sgd"] = "adamw"
    lr: float = 1e-3
    head_lr: float = 1e-3
    cosine: bool = True

    def problems(self) -> list[tuple[str, str]]:
        out = [] if self.epochs >= 0 else [("epochs", f"must be >= 0, got {self.epochs}")]
        out += [(k, f"must be > 0, got {getattr(self, k)}") for k in ("lr", "head_lr") if getattr(self, k) <= 0]
        return out


@dataclass(frozen=True)
class TeacherConfig(ModelConfig):
    """The frozen teacher Ω; its width is reduced to the student's for L_1."""

    d_model: int = 128
    layers: int = 4
    ffn: int = 512
    pretune: PretuneConfig = field(default_factory=PretuneConfig)
    reduce: Literal["maxpool", "linear"] = "maxpool"  # maxpool falls back to linear where shapes don't fit


@dataclass(frozen=True)
class StudentConfig(ModelConfig):
    """The student Φ that gets distilled and quantized."""

    pretune: PretuneConfig = field(default_factory=PretuneConfig)


@dataclass(frozen=True)
class TrainingConfig:
    """The QUADS schedule and loss: L = γ·(α·L_1 + (1−α)·L_GT) + (1−γ)·(L_centroid + L_GT)."""

    schedule: Union[str, CycleSchedule, list[StageConfig]] = "quads"
    alpha: float = 0.5
    gamma: float = 0.5
    loss: Literal["paper", "authors"] = "paper"
    batch_size: int = 32
    seed: int = 0
    device: Literal["auto", "cpu", "cuda"] = "auto"
    eval_batch_size: int = 128

    def problems(self) -> list[tuple[str, str]]:
        from quads_search.schedule import SCHEDULE_PRESETS

        out = [(k, f"must be in [0, 1], got {getattr(self, k)}") for k in ("alpha", "gamma")
               if not 0 <= getattr(self, k) <= 1]
        if isinstance(self.schedule, str) and self.schedule not in SCHEDULE_PRESETS:
            out.append(("schedule", f"unknown preset {self.schedule!r}; known: {sorted(SCHEDULE_PRESETS)}"))
        if isinstance(self.schedule, list) and not self.schedule:
            out.append(("schedule", "must hold at least one stage"))
        for name in ("batch_size", "eval_batch_size"):
            if getattr(self, name) < 1:
                out.append((name, f"must be >= 1, got {getattr(self, name)}"))
        return out


@dataclass(frozen=True)
class QuantizationConfig:
    """Bits per weight tensor: a default plus overrides keyed by exact name or `re:` regex."""

    method: Literal["kmeans", "affine"] = "kmeans"
    bits: int = 4
    overrides: dict[str, int] = field(default_factory=dict)
    calibration: Literal["minmax", "mse"] = "mse"  # affine only
    kmeans_iters: int = 15
    activation_bits: int = 32  # activations stay float; used only for GBitOPs

    def problems(self) -> list[tuple[str, str]]:
        out = []
        if self.bits not in VALID_BITS:
            out.append(("bits", f"must be one of {list(VALID_BITS)}, got {self.bits}"))
        for name, bits in self.overrides.items():
            if bits not in VALID_BITS:
                out.append((f"overrides.{name}", f"must be one of {list(VALID_BITS)}, got {bits}"))
            if name.startswith("re:"):
                try:
                    re.compile(name[3:])
                except re.error as exc:
                    out.append((f"overrides.{name}", f"is not a valid regex: {exc}"))
        if self.activation_bits not in VALID_BITS:
            out.append(("activation_bits", f"must be one of {list(VALID_BITS)}, got {self.activation_bits}"))
        if self.kmeans_iters < 1:
            out.append(("kmeans_iters", f"must be >= 1, got {self.kmeans_iters}"))
        return out


@dataclass(frozen=True)
class SearchConfig:
    """How Optuna (through Ray Tune) explores `space`."""

    objectives: dict[str, Literal["max", "min"]] = field(
        default_factory=lambda: {"valid_accuracy": "max", "size_mb": "min"})
    constraints: dict[str, float] = field(default_factory=dict)  # metric -> upper bound
    sampler: Literal["tpe", "nsga2", "random"] = "tpe"
    num_samples: int = 12
    max_concurrent: int = 2
    seed: int = 0
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    max_retries: int = 1  # infrastructure failures (a worker dies), per Ray Tune's FailureConfig

    def problems(self) -> list[tuple[str, str]]:
        from quads_search.metrics import METRIC_NAMES

        out = [(f"objectives.{k}", f"unknown metric; known: {sorted(METRIC_NAMES)}")
               for k in self.objectives if k not in METRIC_NAMES]
        out += [(f"constraints.{k}", f"unknown metric; known: {sorted(METRIC_NAMES)}")
                for k in self.constraints if k not in METRIC_NAMES]
        if not self.objectives:
            out.append(("objectives", "must name at least one metric"))
        for name in ("num_samples", "max_concurrent"):
            if getattr(self, name) < 1:
                out.append((name, f"must be >= 1, got {getattr(self, name)}"))
        if self.cpus_per_trial <= 0 or self.gpus_per_trial < 0:
            out.append(("cpus_per_trial", "cpus must be > 0 and gpus >= 0"))
        if self.max_retries < 0:
            out.append(("max_retries", f"must be >= 0, got {self.max_retries}"))
        if self.constraints and self.sampler == "random":
            out.append(("constraints", "need sampler tpe or nsga2 (the random sampler ignores constraints)"))
        return out


@dataclass(frozen=True)
class ParamSpace:
    """One searched parameter: exactly one of choice / uniform / loguniform / int."""

    choice: list[Any] | None = None
    uniform: list[float] | None = None
    loguniform: list[float] | None = None
    int: list[builtins.int] | None = None  # `int` is the YAML key; the annotation needs the builtin

    def problems(self) -> list[tuple[str, str]]:
        given = [k for k in ("choice", "uniform", "loguniform", "int") if getattr(self, k) is not None]
        if len(given) != 1:
            return [("", f"needs exactly one of choice, uniform, loguniform, int; got {given or 'none'}")]
        kind, values = given[0], getattr(self, given[0])
        if kind == "choice":
            bad = [v for v in values if v is not None and not isinstance(v, (bool, int, float, str))]
            if bad:
                return [("choice", f"choices must be numbers, strings, booleans or null, got {bad[0]!r}")]
            return [] if values else [("choice", "must not be empty")]
        if len(values) != 2 or not values[0] < values[1]:
            return [(kind, f"must be [low, high] with low < high, got {values}")]
        if kind == "loguniform" and values[0] <= 0:
            return [(kind, f"low must be > 0, got {values[0]}")]
        return []


@dataclass(frozen=True)
class RunConfig:
    """One QUADS training run: what a trial executes."""

    name: str
    dataset: DatasetConfig
    teacher: TeacherConfig
    student: StudentConfig
    training: TrainingConfig
    quantization: QuantizationConfig
    cache_dir: str = "~/.cache/quads-search"

    def problems(self) -> list[tuple[str, str]]:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", self.name):
            return [("name", f"must be letters, digits, '_', '-' or '.', got {self.name!r}")]
        return []


@dataclass(frozen=True)
class SweepConfig(RunConfig):
    """A search-space YAML: a base run plus what to search and how."""

    search: SearchConfig = field(default_factory=SearchConfig)
    space: dict[str, ParamSpace] = field(default_factory=dict)
    smoke: dict[str, Any] = field(default_factory=dict)  # dotted-key overrides applied by --smoke

    def run_config(self) -> RunConfig:
        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(RunConfig)}
        return RunConfig(**fields)


# ----------------------------------------------------------------------------- loading


REQUIRED_SECTIONS = ("name", "dataset", "teacher", "student", "training", "quantization", "search", "space")


def load_sweep_config(path: str | Path, overrides: list[str] = (), smoke: bool = False) -> SweepConfig:
    """Read a search-space YAML, apply `--set` overrides (and the `smoke` section), validate."""
    raw, lines = read_yaml(path)
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
    config = build(SweepConfig, raw, str(path), lines)
    from quads_search.space import check_space  # applies each parameter once to the base config

    problems = check_space(config)
    if problems:
        raise ConfigError(str(path), problems)
    return config


def read_yaml(path: str | Path) -> tuple[dict, dict[str, int]]:
    """Safe-load a YAML mapping and remember the line of every dotted key."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such file")
    text = path.read_text()
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

    Keys under `space.` and `quantization.overrides.` are names that may contain dots,
    so the remainder after those prefixes is one key.
    """
    for prefix in ("space.", "quantization.overrides.", "search.objectives.", "search.constraints.", "smoke."):
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


def build(cls: type, raw: Any, source: str, lines: dict[str, int] | None = None) -> Any:
    """Convert a raw mapping into `cls`, raising one ConfigError with every problem."""
    problems: list[str] = []
    value = _convert(cls, raw, "", problems, lines or {})
    if problems:
        raise ConfigError(source, problems)
    return value


def _where(key: str, lines: dict[str, int]) -> str:
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
            return float(value)
        except ValueError:
            pass
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

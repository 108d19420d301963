"""The schema of a search-space YAML: frozen dataclasses, one per section.

Each section's `problems()` lists the values out of range as (key, message) pairs;
`convert.build` turns raw YAML into these classes and collects every problem with its
line. The schema checks only what it knows itself: which searched parameters make
sense for a student is checked by the sweep layer (`sweep.space.check_space`).
"""
from __future__ import annotations

import builtins
import dataclasses
import re
from dataclasses import dataclass, field
from typing import Any, Literal, Union, get_args

from quads_search.metrics import METRIC_NAMES, METRICS
from quads_search.config.units import VALID_BITS, frames_for

StageKind = Literal["pretune", "distill", "quantize", "joint"]
Pooling = Literal["mean", "max"]  # over time, to the embedding z the intent head reads
POOLINGS: tuple[str, ...] = get_args(Pooling)


def arch_pooling(arch: dict) -> str:
    """The pooling a saved model's `arch` names; models saved before the key existed pooled by the mean."""
    return arch.get("pooling", "mean")


# Named schedules; `core.schedule.SCHEDULE_PRESETS` defines each (and checks it defines exactly these).
SchedulePreset = Literal["quads", "authors", "authors_recluster", "sequential", "ptq", "joint"]


@dataclass(frozen=True)
class DatasetConfig:
    """Where the speech comes from and how it becomes log-mel features."""

    kind: Literal["synthetic", "fsc", "slurp"] = "synthetic"
    root: str | None = None  # synthetic: where to generate (default: <cache_dir>/corpus-<size>-<holdout>-<seed>)
    size: Literal["small", "default", "large"] = "default"  # synthetic only
    holdout: Literal["speakers", "accents", "phrasings"] = "speakers"  # synthetic only: what valid/test hold out
    synth_seed: int = 0  # synthetic only
    seconds: float = 3.0  # feature length; pretrained Whisper needs 30
    spec_augment: bool = False
    on_error: Literal["raise", "skip"] = "raise"  # unreadable clips: stop, or skip with a count
    unseen_intents: Literal["refuse", "drop"] = "refuse"  # valid/test intents no train clip carries
    max_train_clips: int | None = None  # cap, for smoke runs

    def problems(self) -> list[tuple[str, str]]:
        out = []
        if self.kind != "synthetic" and not self.root:
            out.append(("root", f"is required for kind {self.kind!r}"))
        if not 0.5 <= self.seconds <= 30:
            out.append(("seconds", f"must be in [0.5, 30], got {self.seconds}"))
        elif frames_for(self.seconds) % 2:  # Whisper's stride-2 convolution halves the frames
            out.append(("seconds", f"must give an even number of 10 ms frames, got {self.seconds}"))
        if self.max_train_clips is not None and self.max_train_clips < 1:
            out.append(("max_train_clips", f"must be >= 1, got {self.max_train_clips}"))
        return out


@dataclass(frozen=True)
class LossWeights:
    """Weights of L_1, L_GT (cross-entropy), L_centroid and the teacher's soft labels in one stage's loss."""

    l1: float = 0.0
    ce: float = 1.0
    centroid: float = 0.0
    kd: float = 0.0  # T²·KL(teacher ‖ student) on the intent logits (Hinton), T = training.kd_temperature

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
    cluster: bool | None = None  # quantize/joint: re-fit the grids at the start; None: quantization.clustering

    def problems(self) -> list[tuple[str, str]]:
        out = []
        low = 0 if self.stage == "quantize" else 1  # quantize for 0 epochs = post-training quantization
        if self.epochs < low:
            out.append(("epochs", f"must be >= {low} for a {self.stage} stage, got {self.epochs}"))
        if self.cluster is not None and self.stage not in ("quantize", "joint"):
            out.append(("cluster", f"applies to quantize and joint stages only, not to a {self.stage} stage"))
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

    pretrained: str | None = None  # packaged name or local directory (safetensors); hub:<id> downloads from the hub
    preset: Literal["whisper-tiny", "whisper-base", "whisper-small", "whisper-medium", "whisper-large"] | None = None
    d_model: int = 64
    layers: int = 2
    heads: int = 4
    ffn: int = 256
    dropout: float = 0.0
    pooling: Pooling = "mean"

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
    train: Literal["all", "head"] = "all"  # head: the encoder stays frozen (pretrained teachers)
    optimizer: Literal["adam", "adamw", "sgd"] = "adamw"
    lr: float = 1e-3
    head_lr: float = 1e-3
    cosine: bool = True
    warmup: float = 0.0  # epochs of linear learning-rate warm-up before the cosine
    kd: float = 0.0  # students: weight of the teacher's soft labels, (1 - kd)·L_GT + kd·T²·KL (Hinton)
    kd_temperature: float = 2.0  # T of the soft labels
    dropout: float | None = None  # the encoder's dropout while pre-tuning only; None: the model's own `dropout`

    def problems(self) -> list[tuple[str, str]]:
        out = [] if self.epochs >= 0 else [("epochs", f"must be >= 0, got {self.epochs}")]
        out += [(k, f"must be > 0, got {getattr(self, k)}") for k in ("lr", "head_lr", "kd_temperature")
                if not getattr(self, k) > 0]
        if not self.warmup >= 0:
            out.append(("warmup", f"must be >= 0 epochs, got {self.warmup}"))
        if not 0 <= self.kd <= 1:
            out.append(("kd", f"must be in [0, 1], got {self.kd}"))
        if self.kd and self.train == "head":
            out.append(("kd", "needs train: all (a frozen encoder's head is fitted on labels alone)"))
        if self.dropout is not None and not 0 <= self.dropout < 1:
            out.append(("dropout", f"must be in [0, 1) or null, got {self.dropout}"))
        elif self.dropout and self.train == "head":
            out.append(("dropout", "needs train: all (a frozen encoder embeds each clip once, without dropout)"))
        return out


@dataclass(frozen=True)
class TeacherConfig(ModelConfig):
    """The frozen teacher Ω; its width is reduced to the student's for L_1."""

    pretrained: str | None = "whisper-tiny.en"  # shipped with quads-search
    d_model: int = 160  # the explicit shape, where pretrained and preset are null
    layers: int = 3
    ffn: int = 640
    pretune: PretuneConfig = field(default_factory=lambda: PretuneConfig(epochs=40, train="head", head_lr=1e-2))
    reduce: Literal["maxpool", "linear"] = "maxpool"  # maxpool falls back to linear where shapes don't fit


@dataclass(frozen=True)
class StudentConfig(ModelConfig):
    """The student Φ that gets distilled and quantized."""

    pooling: Pooling = "max"  # docs/decisions.md: student pooling
    pretune: PretuneConfig = field(default_factory=lambda: PretuneConfig(lr=3e-3, head_lr=3e-3, warmup=1, kd=0.5,
                                                                       dropout=0.2))  # docs/decisions.md


@dataclass(frozen=True)
class TrainingConfig:
    """The QUADS schedule and loss: L = γ·(α·L_1 + (1−α)·L_GT) + (1−γ)·(L_centroid + L_GT)."""

    schedule: Union[SchedulePreset, CycleSchedule, list[StageConfig]] = CycleSchedule(cycles=2, distill=1, quantize=3)
    alpha: float = 0.0  # the max-pooled student does better without L_1 to the mean-pooled teacher (docs/decisions.md)
    gamma: float = 0.99
    kd: float = 0.0  # share of L_GT taken by the teacher's soft labels: L_GT = (1 - kd)·CE + kd·T²·KL
    kd_temperature: float = 2.0
    loss: Literal["paper", "authors"] = "paper"
    batch_size: int = 32
    seed: int = 0
    device: Literal["auto", "cpu", "cuda"] = "auto"
    eval_batch_size: int = 128

    def problems(self) -> list[tuple[str, str]]:
        out = [(k, f"must be in [0, 1], got {getattr(self, k)}") for k in ("alpha", "gamma", "kd")
               if not 0 <= getattr(self, k) <= 1]
        if not self.kd_temperature > 0:
            out.append(("kd_temperature", f"must be > 0, got {self.kd_temperature}"))
        if isinstance(self.schedule, list) and not self.schedule:
            out.append(("schedule", "must hold at least one stage"))
        if isinstance(self.schedule, list):
            first = next((i for i, s in enumerate(self.schedule) if s.stage in ("quantize", "joint")), None)
            if first is not None and self.schedule[first].cluster is False:
                out.append((f"schedule.{first}.cluster", "is false on the first quantize/joint stage, "
                            "but there is no grid yet to keep"))
        for name in ("batch_size", "eval_batch_size"):
            if getattr(self, name) < 1:
                out.append((name, f"must be >= 1, got {getattr(self, name)}"))
        return out


@dataclass(frozen=True)
class QuantizationConfig:
    """Bits per weight tensor: `bits.default`, then entries keyed by tensor name or `re:` regex (later wins)."""

    method: Literal["kmeans", "affine"] = "kmeans"
    bits: dict[str, int] = field(default_factory=lambda: {"default": 4})
    calibration: Literal["minmax", "mse"] = "mse"  # affine only
    affine_scale: Literal["calibrated", "learned"] = "calibrated"  # affine only; learned: LSQ
    kmeans_iters: int = 15
    kmeans_update: Literal["mean", "gradient", "ste"] = "ste"  # kmeans only; see quant.kmeans
    recluster_every: int = 1  # kmeans_update ste only: re-assign labels every N optimizer steps
    clustering: Literal["once", "every_stage"] = "every_stage"  # when quantize/joint stages re-fit the grids
    activation_bits: int = 32  # activations stay float; used only for GBitOPs

    def problems(self) -> list[tuple[str, str]]:
        out = [] if "default" in self.bits else [("bits.default", "is required (the bits of every other tensor)")]
        for name, bits in self.bits.items():
            if bits not in VALID_BITS:
                out.append((f"bits.{name}", f"must be one of {list(VALID_BITS)}, got {bits}"))
            if name.startswith("re:"):
                try:
                    re.compile(name[3:])
                except re.error as exc:
                    out.append((f"bits.{name}", f"is not a valid regex: {exc}"))
        if self.activation_bits not in VALID_BITS:
            out.append(("activation_bits", f"must be one of {list(VALID_BITS)}, got {self.activation_bits}"))
        for name in ("kmeans_iters", "recluster_every"):
            if getattr(self, name) < 1:
                out.append((name, f"must be >= 1, got {getattr(self, name)}"))
        return out


@dataclass(frozen=True)
class EarlyStopConfig:
    """Stop a trial after stage `after_stage` when, of at least `grace` trials that already reported
    that stage, one is no larger (size within 1 %) and at least `margin` more accurate on validation."""

    after_stage: int
    margin: float
    grace: int

    def problems(self) -> list[tuple[str, str]]:
        out = [] if self.after_stage >= 1 else [("after_stage", f"must be >= 1, got {self.after_stage}")]
        if not 0 <= self.margin <= 1:
            out.append(("margin", f"must be a validation-accuracy difference in [0, 1], got {self.margin}"))
        if self.grace < 1:
            out.append(("grace", f"must be >= 1, got {self.grace}"))
        return out


EARLY_STOP_OBJECTIVES = {"valid_accuracy": "max", "size_mb": "min"}  # what the early-stop rule compares


@dataclass(frozen=True)
class BudgetConfig:
    """Hard upper bounds on what a trial may cost, checked before it trains (any subset of the keys).

    Each is the metric of the same name as a finished trial reports it: `size_mb` the true packed
    MiB (what `pareto --max-size-mb` bounds), `bits_avg` the parameter-weighted bits, `gmacs` per
    forward pass. A draw over any of them is never trained (`sweep.budget`).
    """

    size_mb: float | None = None
    bits_avg: float | None = None
    gmacs: float | None = None

    def bounds(self) -> dict[str, float]:
        """The keys that are set, with their bounds."""
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}

    def problems(self) -> list[tuple[str, str]]:
        return [(k, f"must be a number > 0, got {v}") for k, v in self.bounds().items() if not v > 0]


@dataclass(frozen=True)
class SearchConfig:
    """How Optuna (through Ray Tune) explores `space`."""

    objectives: dict[str, Literal["max", "min"]] = field(
        default_factory=lambda: {"valid_accuracy": "max", "size_mb": "min"})
    constraints: dict[str, float] = field(default_factory=dict)  # metric -> upper bound
    sampler: Literal["tpe", "nsga2", "gp", "random"] = "tpe"
    num_samples: int = 14
    max_concurrent: int = 2
    seed: int = 0
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    max_retries: int = 1  # infrastructure failures (a worker dies), per Ray Tune's FailureConfig
    references: list[int] = field(default_factory=lambda: [32, 8, 4, 2])  # uniform-bit anchor trials, run first
    checkpoint_every_s: float = 60.0  # a stage-end checkpoint only after this long (0: after every stage)
    warm_start: Literal["none", "sensitivity"] = "sensitivity"  # sensitivity: seeded bit allocations after the references
    seeds: int = 4  # size budgets (seeded trials) of warm_start: sensitivity
    seed_low_bits: float | None = 2.0  # the lowest seed: least Ω at <= this many average bits (null: the lowest
    #   size slice); 2.0 is where the paper's low-bit claims are judged
    early_stop: EarlyStopConfig | None = None  # null: every trial runs to its end
    budget: BudgetConfig | None = None  # hard bounds checked before training: {size_mb, bits_avg, gmacs}, any subset

    def hard_budget(self) -> BudgetConfig | None:
        """`budget` where it bounds something (null and `{}` bound nothing)."""
        return self.budget if self.budget is not None and self.budget.bounds() else None

    def problems(self) -> list[tuple[str, str]]:
        out = [(f"objectives.{k}", f"unknown metric; known: {sorted(METRIC_NAMES)}")
               for k in self.objectives if k not in METRIC_NAMES]
        out += [(f"constraints.{k}", f"unknown metric; known: {sorted(METRIC_NAMES)}")
                for k in self.constraints if k not in METRIC_NAMES]
        out += [(f"{part}.{k}", f"is measured on the held-out test split: search on {METRICS[k].valid_twin} instead")
                for part in ("objectives", "constraints") for k in getattr(self, part)
                if k in METRICS and METRICS[k].held_out]
        if not self.objectives:
            out.append(("objectives", "must name at least one metric"))
        for name in ("num_samples", "max_concurrent"):
            if getattr(self, name) < 1:
                out.append((name, f"must be >= 1, got {getattr(self, name)}"))
        if self.cpus_per_trial <= 0 or self.gpus_per_trial < 0:
            out.append(("cpus_per_trial", "cpus must be > 0 and gpus >= 0"))
        if self.seed_low_bits is not None and not self.seed_low_bits > 0:
            out.append(("seed_low_bits", f"must be a number > 0 or null, got {self.seed_low_bits}"))
        if self.max_retries < 0:
            out.append(("max_retries", f"must be >= 0, got {self.max_retries}"))
        out += [("references", f"must be bit widths in {list(VALID_BITS)}, got {b}")
                for b in self.references if b not in VALID_BITS]
        if len(self.references) > self.num_samples:
            out.append(("references", f"{len(self.references)} reference trials do not fit in "
                                      f"num_samples={self.num_samples}"))
        if self.checkpoint_every_s < 0:
            out.append(("checkpoint_every_s", f"must be >= 0, got {self.checkpoint_every_s}"))
        if self.constraints and self.sampler == "random":
            out.append(("constraints", "need sampler tpe, nsga2 or gp (the random sampler ignores constraints)"))
        return out + self._warm_start_and_early_stop_problems()

    def _warm_start_and_early_stop_problems(self) -> list[tuple[str, str]]:
        out = [] if self.seeds >= 1 else [("seeds", f"must be >= 1, got {self.seeds}")]
        enqueued = len(self.references) + self.seeds
        if self.warm_start == "sensitivity" and enqueued > self.num_samples:
            out.append(("seeds", f"{len(self.references)} reference and {self.seeds} seeded trials do not fit in "
                                 f"num_samples={self.num_samples}"))
        if self.early_stop is not None and self.objectives != EARLY_STOP_OBJECTIVES:
            out.append(("early_stop", f"compares validation accuracy among trials no larger in size_mb, so it needs "
                                      f"objectives {EARLY_STOP_OBJECTIVES}, got {self.objectives}"))
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
        if self.teacher.pretune.kd:
            return [("teacher.pretune.kd", "must be 0: the teacher has no teacher to learn soft labels from")]
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


"""The one registry of metrics a finished run reports: name, direction, label and format.

Sweep objectives and constraints, the trials table, `train`, `profile` and `pareto` all
read from here, so a metric is added (or renamed) in one place.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class Metric:
    name: str
    better: Literal["max", "min"]
    label: str  # axis and column label
    fmt: str  # how tables print one value
    held_out: bool = False  # measured on the test split: reported, never used to choose

    @property
    def valid_twin(self) -> str:
        """The same measure on the validation split (what a held-out metric's user should choose on)."""
        return self.name.removesuffix("_test") + "_valid" if self.name.endswith("_test") else f"valid_{self.name}"


METRICS: dict[str, Metric] = {m.name: m for m in (
    Metric("accuracy", "max", "test accuracy (held out)", "{:.4f}", held_out=True),
    Metric("f1_macro", "max", "test macro F1 (held out)", "{:.4f}", held_out=True),
    Metric("valid_accuracy", "max", "validation accuracy", "{:.4f}"),
    Metric("valid_f1_macro", "max", "validation macro F1", "{:.4f}"),
    Metric("teacher_gap_valid", "min", "drop against the teacher, validation (relative)", "{:.2%}"),
    Metric("teacher_gap_test", "min", "drop against the teacher, test (relative, held out)", "{:.2%}", held_out=True),
    Metric("size_mb", "min", "model size (MiB, packed)", "{:.4f} MiB"),
    Metric("size_mb_nominal", "min", "model size (MiB, params x bits)", "{:.4f} MiB"),
    Metric("gmacs", "min", "GMACs per forward pass", "{:.4f}"),
    Metric("gbitops", "min", "GBitOPs per forward pass", "{:.2f}"),
    Metric("params_m", "min", "parameters (M)", "{:.3f} M"),
    Metric("bits_avg", "min", "average bits per parameter", "{:.2f}"),
)}
METRIC_NAMES = tuple(METRICS)
COST_NAMES = ("params_m", "gmacs", "gbitops", "size_mb", "size_mb_nominal", "bits_avg")  # known before training


def format_metrics(values: dict, names: tuple[str, ...] = METRIC_NAMES) -> list[str]:
    """`name  value` lines for the metrics of `names` present in `values`."""
    return [f"{name:16s} {METRICS[name].fmt.format(values[name])}" for name in names if values.get(name) is not None]


def relative_drop(reference: float, value: float) -> float:
    """(reference - value) / reference: how far `value` falls below `reference`, as the paper counts its
    5.56 % (the student against its teacher)."""
    return (reference - value) / reference

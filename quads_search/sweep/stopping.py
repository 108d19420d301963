"""The early-stop rule (`search.early_stop`), Ray-free: which trial is hopeless after stage K.

After stage K every trial reports its validation accuracy and its planned packed size (known
from its configuration before training). A trial is stopped when, among the trials that
reported stage K before it, at least `grace` exist and one of them is no larger (size within
`SIZE_TOLERANCE`) and at least `margin` more accurate: it will very likely be dominated at
the end, so it cannot reach the front. The front itself is still chosen only on final
results; a stopped trial has none and never joins it. The sweep applies the rule through a
Ray Tune scheduler (`sweep.scheduler`), the wall-clock bench in-process.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from quads_search.config.schema import EarlyStopConfig

SIZE_TOLERANCE = 0.01  # a witness may be up to 1 % larger and still count as "no larger"
EPSILON = 1e-9  # accuracies are ratios of counts: `margin` apart means apart up to rounding
PLANNED_SIZE_KEY = "planned_size_mb"  # in every stage report: the trial's packed size, known before training


@dataclass(frozen=True)
class StageScore:
    """What one trial reported after the rule's stage."""

    trial_id: str
    size_mb: float
    valid_accuracy: float


def dominating_witness(mine: StageScore, reported: Iterable[StageScore], rule: EarlyStopConfig) -> StageScore | None:
    """The most accurate trial that makes `mine` hopeless, or None (fewer than `grace` others, or no witness)."""
    others = [s for s in reported if s.trial_id != mine.trial_id]
    if len(others) < rule.grace:
        return None
    witnesses = [s for s in others if s.size_mb <= mine.size_mb * (1 + SIZE_TOLERANCE)
                 and s.valid_accuracy - mine.valid_accuracy >= rule.margin - EPSILON]
    return max(witnesses, key=lambda s: (s.valid_accuracy, -s.size_mb)) if witnesses else None


def was_stopped(result: dict | None) -> bool:
    """A trial's last result is a stage report, not a final one: a scheduler stopped it after that stage."""
    return result is not None and "stage" in result and "status" not in result


def stop_reason(mine: StageScore, witness: StageScore, stage: int) -> str:
    """One line for the trial's row: why it was stopped."""
    return (f"stopped after stage {stage}: valid accuracy {mine.valid_accuracy:.4f} at {mine.size_mb:.4f} MiB; "
            f"trial {witness.trial_id} had {witness.valid_accuracy:.4f} at {witness.size_mb:.4f} MiB")

"""The front as a table a person reads: compression against the references, and the bits of every tensor.

References come from `<experiment>/references.json`, which the sweep writes: the teacher's
and the pre-tuned student's accuracy, fp32 size (MiB) and GMACs. A ratio reads "x times
smaller (or cheaper) than the reference". A drop is relative, as the paper counts its bound
(the student against its teacher): (reference - model) / reference, against the teacher and
against the fp32 trial (the `reference` trial at 32 bits: the student trained under the same
schedule, unquantized), on validation (where models are chosen) and test (held out).
"""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from quads_search.core.packed_header import read_packed_metadata
from quads_search.tensor_names import readable_name
from quads_search.results import REFERENCES_FILE

REFERENCE_ROLES = {"teacher": "teacher", "student_fp32": "pre-tuned student"}
# The abstract's "degradations of up to 5.56 %": SLURP, (75.32 - 71.13) / 75.32, the student against its teacher.
PAPER_BOUND = 0.0556
SPLIT_METRICS = {"valid": "valid_accuracy", "test": "accuracy"}
DROP_COLUMNS = [f"{ref}_gap_{split}" for ref in ("teacher", "fp32_trial") for split in SPLIT_METRICS]


def load_references(trials: pd.DataFrame, root: Path) -> dict[str, dict]:
    """experiment -> its references (empty where the sweep wrote none, e.g. older results)."""
    out = {}
    for experiment in trials["experiment"].unique():
        for path in (root / experiment / REFERENCES_FILE, root / REFERENCES_FILE):
            if path.is_file():
                out[experiment] = json.loads(path.read_text())
                break
        else:
            out[experiment] = {}
    return out


def with_ratios(front: pd.DataFrame, references: dict[str, dict]) -> pd.DataFrame:
    """`front` plus `size_x_<role>` and `gmacs_x_<role>`: how many times smaller / cheaper than each reference."""
    out = front.copy()
    for role in REFERENCE_ROLES:
        for metric in ("size_mb", "gmacs"):
            ref = out["experiment"].map(lambda e, key=f"{role}_{metric}": references.get(e, {}).get(key))
            out[f"{metric.split('_')[0]}_x_{role}"] = ref.astype(float) / out[metric].astype(float)
    return out


def fp32_trials(trials: pd.DataFrame) -> dict[str, pd.Series]:
    """experiment -> its fp32 trial: the finished `reference` trial at 32 bits (absent where none ran)."""
    fp32 = trials[(trials["kind"] == "reference") & (trials["bits_avg"].astype(float) >= 32)]
    return {experiment: rows.iloc[0] for experiment, rows in fp32.groupby("experiment")}


def with_drops(front: pd.DataFrame, trials: pd.DataFrame, references: dict[str, dict]) -> pd.DataFrame:
    """`front` plus `teacher_gap_<split>` and `fp32_trial_gap_<split>`: relative drops on valid and test."""
    out = front.copy()
    fp32 = fp32_trials(trials)
    teacher_keys = {"valid": "teacher_valid_accuracy", "test": "teacher_accuracy"}
    for split, metric in SPLIT_METRICS.items():
        teacher = out["experiment"].map(lambda e, key=teacher_keys[split]: references.get(e, {}).get(key)).astype(float)
        fp32_value = out["experiment"].map(lambda e, m=metric: fp32[e][m] if e in fp32 else None).astype(float)
        out[f"teacher_gap_{split}"] = (teacher - out[metric].astype(float)) / teacher
        out[f"fp32_trial_gap_{split}"] = (fp32_value - out[metric].astype(float)) / fp32_value
    return out


def tensor_bits(front: pd.DataFrame) -> pd.DataFrame:
    """Bits of every weight tensor of each front model (rows: trial id; columns: readable tensor names)."""
    rows = {}
    for _, row in front.iterrows():
        bits = read_packed_metadata(Path(str(row["model_path"]))).get("bits", {})
        rows[row["trial_id"]] = {readable_name(name): b for name, b in bits.items()}
    return pd.DataFrame.from_dict(rows, orient="index")

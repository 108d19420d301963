"""The front as a table a person reads: compression against the references, and the bits of every tensor.

References come from `<experiment>/references.json`, which the sweep writes: the teacher's
and the fp32 pre-tuned student's accuracy, fp32 size (MiB) and GMACs. A ratio reads "x times
smaller (or cheaper) than the reference".
"""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from quads_search.core.packed_header import read_packed_metadata
from quads_search.tensor_names import readable_name
from quads_search.results import REFERENCES_FILE

REFERENCE_ROLES = {"teacher": "teacher", "student_fp32": "pre-tuned fp32 student"}


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


def tensor_bits(front: pd.DataFrame) -> pd.DataFrame:
    """Bits of every weight tensor of each front model (rows: trial id; columns: readable tensor names)."""
    rows = {}
    for _, row in front.iterrows():
        bits = read_packed_metadata(Path(str(row["model_path"]))).get("bits", {})
        rows[row["trial_id"]] = {readable_name(name): b for name, b in bits.items()}
    return pd.DataFrame.from_dict(rows, orient="index")

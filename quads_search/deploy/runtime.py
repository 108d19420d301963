"""Running an exported student with ONNX Runtime (CPU): sessions, its metadata, logits in batches.

Imports onnxruntime and numpy only (no torch, no `onnx`), so a process that just runs the
model carries nothing else; `bench.export` measures memory that way.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
from onnxruntime.capi import onnxruntime_pybind11_state as ort_errors

from quads_search.errors import UserError

METADATA_KEY = "quads_search"  # as deploy.onnx_export writes it
RUNTIME = f"onnxruntime {ort.__version__}"


def open_session(path: str | Path, threads: int = 0, fold: bool = True) -> ort.InferenceSession:
    """A CPU session; `threads` intra-op threads (0: ONNX Runtime's choice), one inter-op thread.

    `fold=False` turns constant folding off, so the packed codes stay packed in memory and are
    unpacked at every run (ONNX Runtime otherwise folds them into float weights at load).
    """
    if not Path(path).is_file():
        raise UserError(f"{path}: no such model file")
    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    options.log_severity_level = 3  # errors only: its warnings about unused initializers are expected
    disabled = [] if fold else ["ConstantFolding"]
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"],
                                    disabled_optimizers=disabled)
    except (ort_errors.Fail, ort_errors.InvalidGraph, ort_errors.InvalidProtobuf, ort_errors.NoSuchFile) as exc:
        raise UserError(f"{path}: ONNX Runtime cannot load it: {str(exc).splitlines()[0]}") from None


def session_metadata(session: ort.InferenceSession, path: str | Path) -> dict[str, Any]:
    """The packed model's metadata that `export_onnx` stored (architecture, label map, config, metrics)."""
    stored = session.get_modelmeta().custom_metadata_map.get(METADATA_KEY)
    if stored is None:
        raise UserError(f"{path}: not exported by quads-search (no {METADATA_KEY!r} metadata)")
    return json.loads(stored)


def run_logits(session: ort.InferenceSession, features: np.ndarray, batch_size: int = 128) -> np.ndarray:
    """Logits [n, classes] of features [n, mels, frames], `batch_size` examples per run."""
    name = session.get_inputs()[0].name
    parts = [session.run(None, {name: np.ascontiguousarray(features[i:i + batch_size], dtype=np.float32)})[0]
             for i in range(0, len(features), batch_size)]
    return np.concatenate(parts) if parts else np.zeros((0, session.get_outputs()[0].shape[1]), np.float32)

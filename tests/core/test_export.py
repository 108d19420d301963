"""Packed model files are written whole or not at all (temp file, fsync, rename), and so are exports of them
with their cards (`pareto --export`)."""
import errno
import shutil
from pathlib import Path

import pandas as pd
import pytest
import torch

METRICS = {"valid_accuracy": 0.5, "accuracy": 0.5, "f1_macro": 0.5, "params_m": 0.01, "gmacs": 0.001,
           "size_mb": 0.01, "size_mb_nominal": 0.01, "bits_avg": 4.0}


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.rglob(".*.tmp"))


def packed_model(path: Path) -> Path:
    from quads_search.core.export import save_packed

    save_packed(torch.nn.Linear(4, 3), None, path, {"metrics": METRICS, "config": {"name": "t"}, "intents": ["a"],
                                                    "bits": {}, "arch": {}, "num_classes": 3})
    return path


def test_a_model_file_cut_short_is_never_left_in_place(tmp_path, monkeypatch):
    import quads_search.core.export as export_module

    path = packed_model(tmp_path / "model.safetensors")
    before = path.read_bytes()

    def killed(tensors, filename, metadata=None):
        Path(filename).write_bytes(b"\x00" * 64)  # torn
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(export_module, "save_file", killed)
    with pytest.raises(OSError):
        packed_model(path)
    assert path.read_bytes() == before and leftovers(tmp_path) == []  # the old file, whole


def test_an_export_cut_short_leaves_no_card_without_its_model(tmp_path, monkeypatch):
    from quads_search.pareto.analysis import export_models as export

    row = pd.DataFrame([{"trial_id": "t1", "experiment": "e", "kind": "searched",
                         "model_path": str(packed_model(tmp_path / "model.safetensors"))}])

    def disk_full(source, target, *args, **kwargs):
        Path(target).write_bytes(Path(source).read_bytes()[:100])  # half-written, then the disk is full
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(shutil, "copy2", disk_full)
    monkeypatch.setattr(shutil, "copyfile", disk_full)
    with pytest.raises(OSError, match="No space left"):
        export(row, {"e": {}}, tmp_path / "export")
    target = tmp_path / "export" / "t1"
    assert not [p.name for p in target.iterdir()] if target.exists() else True  # no card, no torn model, no temp
    monkeypatch.undo()
    export(row, {"e": {}}, tmp_path / "export")
    assert sorted(p.name for p in target.iterdir()) == ["MODEL_CARD.md", "model.safetensors", "model_card.json"]
    assert (target / "model.safetensors").read_bytes() == (tmp_path / "model.safetensors").read_bytes()

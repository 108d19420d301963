"""A damaged cache entry is noticed and rebuilt with one line naming the file, never trusted (#27)."""
import json
import types

import numpy as np
import pytest
import soundfile as sf
import torch
from safetensors.torch import save_file

from quads_search.cache import COMPLETE, cached_dir
from quads_search.config import (
    DatasetConfig,
    PretuneConfig,
    QuantizationConfig,
    RunConfig,
    StudentConfig,
    TeacherConfig,
    TrainingConfig,
)

INTENTS = [("activate", "lights", "kitchen"), ("deactivate", "music", "none"), ("bring", "shoes", "none")]


def truncate(path, keep: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def three_files(out):
    np.save(out / "big.npy", np.arange(600_000, dtype=np.float32).reshape(1000, 600))  # 2.4 MB: sampled hash
    save_file({"z": torch.arange(12.0).reshape(3, 4)}, str(out / "z.safetensors"))
    (out / "record.json").write_text(json.dumps({"accuracy": 0.5}))


def rebuilt_lines(capsys) -> list[str]:
    return [line for line in capsys.readouterr().err.splitlines() if "rebuilding it" in line]


@pytest.mark.parametrize("damage, why", [
    (lambda e: truncate(e / "big.npy"), "big.npy has 1200064 bytes, the manifest says 2400128"),
    (lambda e: truncate(e / "z.safetensors", 0.9), "z.safetensors has"),
    (lambda e: truncate(e / "record.json"), "record.json has"),
    (lambda e: (e / "z.safetensors").unlink(), "z.safetensors is missing"),
    (lambda e: e.joinpath("big.npy").write_bytes(b"\0" * 2400128), "big.npy has other content"),  # same size
])
def test_a_damaged_entry_is_rebuilt_with_one_line_naming_the_file(tmp_path, capsys, damage, why):
    builds = []
    entry = cached_dir(tmp_path, "kind", "key", lambda out: (builds.append(out), three_files(out)))
    assert cached_dir(tmp_path, "kind", "key", three_files) == entry and len(builds) == 1  # intact: used as it is
    damage(entry)
    capsys.readouterr()
    assert cached_dir(tmp_path, "kind", "key", lambda out: (builds.append(out), three_files(out))) == entry
    (line,) = rebuilt_lines(capsys)
    assert str(entry) in line and why in line and len(builds) == 2
    assert np.load(entry / "big.npy")[999, 599] == 599_999


def test_the_manifest_holds_sizes_and_whole_or_sampled_hashes(tmp_path):
    from quads_search.cache import entry_problem

    entry = cached_dir(tmp_path, "kind", "key", three_files)
    manifest = json.loads((entry / COMPLETE).read_text())
    assert set(manifest["files"]) == {"big.npy", "z.safetensors", "record.json"}
    assert all(record["size"] == (entry / name).stat().st_size for name, record in manifest["files"].items())
    assert manifest["files"]["big.npy"]["sampled"] and "sampled" not in manifest["files"]["record.json"]
    assert entry_problem(entry) is None
    truncate(entry / "record.json")
    assert entry_problem(entry).startswith("record.json has ")


def test_an_entry_written_before_manifests_is_checked_once_then_given_one(tmp_path, capsys):
    entry = cached_dir(tmp_path, "kind", "key", three_files)
    (entry / COMPLETE).write_text("")  # how every entry was marked before manifests
    assert cached_dir(tmp_path, "kind", "key", lambda out: pytest.fail("an intact entry was rebuilt")) == entry
    assert json.loads((entry / COMPLETE).read_text())["files"]["z.safetensors"]["size"] > 0
    (entry / COMPLETE).write_text("")
    truncate(entry / "z.safetensors", 0.95)  # shorter than its header says
    cached_dir(tmp_path, "kind", "key", three_files)
    (line,) = rebuilt_lines(capsys)
    assert "z.safetensors is damaged" in line


def tiny_fsc(root):
    """FSC layout, 3 intents x 2 clips per speaker; speakers disjoint across splits."""
    speakers = {"train": ["spkA", "spkB"], "valid": ["spkC"], "test": ["spkD"]}
    rng = np.random.default_rng(0)
    for split, names in speakers.items():
        rows = ["index,path,speakerId,transcription,action,object,location"]
        for speaker in names:
            for k, (action, obj, location) in enumerate(INTENTS):
                for rep in range(2):
                    rel = f"wavs/speakers/{speaker}/{k}-{rep}.wav"
                    (root / rel).parent.mkdir(parents=True, exist_ok=True)
                    t = np.arange(8000) / 16000
                    clip = 0.3 * np.sin(2 * np.pi * (300 + 80 * k) * t) + 0.01 * rng.standard_normal(len(t))
                    sf.write(root / rel, clip, 16000, subtype="PCM_16")
                    rows.append(f"{len(rows) - 1},{rel},{speaker},{action} {obj},{action},{obj},{location}")
        (root / "data").mkdir(parents=True, exist_ok=True)
        (root / "data" / f"{split}_data.csv").write_text("\n".join(rows) + "\n")
    return root


def test_damaged_features_teacher_and_pretuned_entries_are_rebuilt_not_trusted(tmp_path, capsys):
    from quads_search.core.pretune import FitSettings, pretuned_model
    from quads_search.core.teacher import teacher_embeddings
    from quads_search.data import load_features

    tiny = dict(d_model=16, layers=1, heads=2, ffn=32, pretune=PretuneConfig(epochs=1))
    cfg = RunConfig(name="damage", dataset=DatasetConfig(kind="fsc", root=str(tiny_fsc(tmp_path / "fsc")), seconds=1.0),
                    teacher=TeacherConfig(pretrained=None, **tiny), student=StudentConfig(**tiny),
                    training=TrainingConfig(batch_size=4), quantization=QuantizationConfig(),
                    cache_dir=str(tmp_path / "cache"))
    cache, cpu = tmp_path / "cache", torch.device("cpu")

    def load_all():
        data = load_features(cfg.dataset, cache, progress=False)
        student = pretuned_model("student", cfg.student, data, cache, FitSettings.of(cfg, cpu))
        z, record = teacher_embeddings(cfg, data, cache, cpu)
        return data, student, z, record

    data, student, z, record = load_all()
    features, z = data.train.features.clone(), z.clone()  # both map their files, which are truncated below
    damaged = [next((cache / "features").glob("*/train.npy")), student.directory / "model.safetensors",
               next((cache / "teacher-embeddings").glob("*/z.safetensors")),
               next((cache / "teacher-embeddings").glob("*/record.json"))]
    for path in damaged:
        truncate(path)
    capsys.readouterr()
    again, student_again, z_again, record_again = load_all()  # before: ValueError, SafetensorError, no path named
    lines = rebuilt_lines(capsys)
    assert len(lines) == 3, lines  # one per damaged entry (the teacher's holds two damaged files)
    for entry in {path.parent for path in damaged}:  # the line names the entry and a damaged file of it
        names = [path.name for path in damaged if path.parent == entry]
        assert sum(f"{entry}: " in line and any(n in line for n in names) for line in lines) == 1, (entry, lines)
    assert torch.equal(again.train.features, features)
    assert torch.allclose(z_again, z) and record_again == record
    assert all(torch.equal(a, b) for a, b in zip(student_again.model.state_dict().values(),
                                                  student.model.state_dict().values()))


def test_a_packaged_model_is_hashed_once_per_file_version(tmp_path, monkeypatch):
    from quads_search.whisper import ct2

    hashed = []
    monkeypatch.setattr(ct2, "hashlib", types.SimpleNamespace(sha256=lambda: hashed.append(1) or __import__(
        "hashlib").sha256()))
    part = tmp_path / "model.bin"
    part.write_bytes(b"a" * 1000)
    first = ct2.sha256_of([part])
    assert ct2.sha256_of([part]) == first and len(hashed) == 1  # memoised
    part.write_bytes(b"b" * 1000)  # same size, new content: a new mtime (and ctime)
    assert ct2.sha256_of([part]) != first and len(hashed) == 2

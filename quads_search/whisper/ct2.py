"""Read a CTranslate2 `model.bin` (the format faster-whisper ships) into named torch tensors.

Layout, little-endian (CTranslate2's `ModelSpec._serialize`, binary version 6):
u32 version, string spec name, u32 spec revision, u32 variable count, then per variable
string name, u8 rank, u32 x rank shape, u8 dtype id, u32 byte count, raw bytes; then
u32 alias count and (alias, target) string pairs. A string is u16 length (with the
terminating NUL), UTF-8 bytes, NUL.

A model may come split into parts (wheels have a size limit); the parts are read in order
as one stream, so no joined copy is ever written. Every defect raises one UserError line
naming the file and what is wrong.
"""
from __future__ import annotations

import hashlib
import math
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch

from quads_search.errors import UserError

BINARY_VERSION = 6
DTYPES = {0: torch.float32, 1: torch.int8, 2: torch.int16, 3: torch.int32, 4: torch.float16, 5: torch.bfloat16}
MAX_RANK = 8
MAX_NAME = 4096  # longer "strings" mean the bytes are not a model


@dataclass
class Ct2Model:
    """The variables of one model as stored (quantized weights still quantized) and its aliases."""

    source: str
    spec: str
    revision: int
    variables: dict[str, torch.Tensor]
    aliases: dict[str, str]  # alias -> the variable it names (CTranslate2 stores tied weights once)


class _Stream:
    """The parts of one model.bin as a single read-only byte stream that knows what remains."""

    def __init__(self, parts: Sequence[Path]):
        self.label = describe(parts)
        self.remaining = sum(p.stat().st_size for p in parts)
        self._parts = list(parts)
        self._file = None

    def __enter__(self) -> "_Stream":
        return self

    def __exit__(self, *exc) -> None:
        if self._file:
            self._file.close()

    def require(self, size: int, what: str) -> None:
        """UserError unless `size` more bytes remain (checked before allocating for them)."""
        if size > self.remaining:
            raise UserError(f"{self.label}: truncated: {what} needs {size} bytes, only {self.remaining} left")

    def readinto(self, buffer: bytearray, what: str) -> None:
        """Fill `buffer` exactly, crossing part boundaries."""
        self.require(len(buffer), what)
        view, filled = memoryview(buffer), 0
        while filled < len(view):
            if self._file is None:
                self._file = open(self._parts.pop(0), "rb")
            got = self._file.readinto(view[filled:])
            if not got:  # this part is done: the next one continues the stream
                self._file.close()
                self._file = None
            filled += got
        self.remaining -= filled

    def read(self, n: int, what: str) -> bytes:
        buffer = bytearray(n)
        self.readinto(buffer, what)
        return bytes(buffer)

    def unpack(self, fmt: str, what: str) -> int:
        return struct.unpack("<" + fmt, self.read(struct.calcsize(fmt), what))[0]

    def string(self, what: str) -> str:
        size = self.unpack("H", what)
        raw = self.read(size, what)
        if size == 0 or size > MAX_NAME or raw[-1] != 0:
            raise UserError(f"{self.label}: {what} is not a NUL-terminated string (corrupt file)")
        try:
            return raw[:-1].decode("utf-8")
        except UnicodeDecodeError:
            raise UserError(f"{self.label}: {what} is not UTF-8 (corrupt file)") from None


def describe(parts: Sequence[Path]) -> str:
    """How messages name a model: its file, or its parts joined by '+'."""
    return " + ".join(str(p) for p in parts)


def read_model(parts: Sequence[Path]) -> Ct2Model:
    """Every variable of the CTranslate2 model stored in `parts` (one file, or its pieces in order)."""
    missing = [p for p in parts if not p.is_file()]
    if missing:
        raise UserError(f"{missing[0]}: no such file")
    with _Stream(parts) as stream:
        spec, revision = _header(stream)
        variables = {}
        for index in range(stream.unpack("I", "the variable count")):
            name, tensor = _variable(stream, index)
            variables[name] = tensor
        aliases = dict(_aliases(stream))
        for alias, target in aliases.items():
            if target not in variables:
                raise UserError(f"{stream.label}: alias {alias} points to {target}, which the file lacks")
        if stream.remaining:
            raise UserError(f"{stream.label}: {stream.remaining} unexpected bytes after the last alias "
                            "(parts in the wrong order, or not one model)")
    return Ct2Model(stream.label, spec, revision, variables, aliases)


def _header(stream: _Stream) -> tuple[str, int]:
    version = stream.unpack("I", "the header")
    if version != BINARY_VERSION:
        if version > 100:  # CTranslate2 has had single-digit versions; this is some other file
            raise UserError(f"{stream.label}: not a CTranslate2 model.bin (header {version:#010x})")
        raise UserError(f"{stream.label}: CTranslate2 binary version {version} is not supported "
                        f"(expected {BINARY_VERSION}, CTranslate2 3 or later)")
    spec = stream.string("the spec name")
    return spec, stream.unpack("I", "the spec revision")


def _variable(stream: _Stream, index: int) -> tuple[str, torch.Tensor]:
    name = stream.string(f"the name of variable {index}")
    rank = stream.unpack("B", name)
    if rank > MAX_RANK:
        raise UserError(f"{stream.label}: variable {name} has rank {rank} (corrupt file)")
    shape = [stream.unpack("I", name) for _ in range(rank)]
    dtype_id = stream.unpack("B", name)
    if dtype_id not in DTYPES:
        raise UserError(f"{stream.label}: variable {name} has unknown dtype id {dtype_id} "
                        f"(known: {', '.join(f'{k}={str(v)[6:]}' for k, v in DTYPES.items())})")
    dtype = DTYPES[dtype_id]
    size = stream.unpack("I", name)
    expected = math.prod(shape) * dtype.itemsize
    if size != expected:
        raise UserError(f"{stream.label}: variable {name} declares {size} bytes, but shape {shape} of "
                        f"{str(dtype)[6:]} needs {expected}")
    stream.require(size, f"variable {name}")
    buffer = bytearray(size)
    stream.readinto(buffer, f"variable {name}")
    tensor = torch.frombuffer(buffer, dtype=dtype) if size else torch.empty(0, dtype=dtype)
    return name, tensor.reshape(shape)


def _aliases(stream: _Stream) -> list[tuple[str, str]]:
    count = stream.unpack("I", "the alias count")
    return [(stream.string(f"alias {i}"), stream.string(f"the target of alias {i}")) for i in range(count)]


def float_variables(model: Ct2Model) -> dict[str, torch.Tensor]:
    """Every variable, aliases included, weights as float32; int8/int16 weights dequantized.

    CTranslate2 quantizes a weight W to rint(W * s) and stores s as `<name>_scale`: one scale
    per output row for int8 (a row of a conv weight being its whole kernel), one scalar for
    int16. Flags and counts (0-d integer variables) keep their type.
    """
    out = {}
    for name, value in model.variables.items():
        if name.endswith("_scale") and name[: -len("_scale")] in model.variables:
            continue
        scale = model.variables.get(name + "_scale")
        if scale is not None:
            out[name] = _dequantized(model.source, name, value, scale)
        elif value.dtype in (torch.int8, torch.int16) and value.dim() > 0:
            raise UserError(f"{model.source}: variable {name} is {str(value.dtype)[6:]} but has no {name}_scale")
        else:
            out[name] = value.float() if value.is_floating_point() else value
    out.update({alias: out[target] for alias, target in model.aliases.items()})
    return out


def _dequantized(source: str, name: str, value: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    rows = value.shape[0] if value.dim() else 0
    if value.dtype == torch.int8 and scale.shape == (rows,):
        return value.float() / scale.float().reshape(-1, *[1] * (value.dim() - 1))
    if value.dtype == torch.int16 and scale.dim() == 0:
        return value.float() / scale.float()
    raise UserError(f"{source}: variable {name} ({str(value.dtype)[6:]}, shape {list(value.shape)}) does not fit "
                    f"its scale of shape {list(scale.shape)}; CTranslate2 stores int8 with one scale per row "
                    "and int16 with one scalar")


_SHA256_MEMO: dict[tuple, str] = {}  # (path, inode, size, mtime, ctime) of each part -> the digest


def sha256_of(parts: Sequence[Path]) -> str:
    """The sha256 of the parts read as one file (the digest of the joined model.bin).

    Memoised in this process per (path, inode, size, mtime, ctime) of every part: a run resolves
    the same packaged model several times (config, teacher, student), and each hash reads ~75 MB;
    a file replaced or rewritten in place changes one of those stamps, and is hashed again.
    """
    stamps = []
    for part in parts:
        stat = os.stat(part)
        stamps.append((str(Path(part).resolve()), stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns))
    key = tuple(stamps)
    if key not in _SHA256_MEMO:
        digest = hashlib.sha256()
        for part in parts:
            with open(part, "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    digest.update(block)
        _SHA256_MEMO[key] = digest.hexdigest()
    return _SHA256_MEMO[key]

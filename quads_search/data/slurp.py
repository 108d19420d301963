"""SLURP's layout: `dataset/slurp/{train,devel,test}.jsonl`, audio in `slurp_real/`."""
from __future__ import annotations

import json
from pathlib import Path

from quads_search.data.corpus import Clip, Corpus, make_corpus, require_root
from quads_search.errors import UserError

FILES = {"train": "train", "valid": "devel", "test": "test"}
JSON_KINDS = {list: "an array", str: "a string", int: "a number", float: "a number", bool: "a boolean",
              type(None): "null"}


def jsonl_path(root: Path, split: str) -> Path:
    return root / "dataset" / "slurp" / f"{FILES[split]}.jsonl"


def _recording_file(recording: object, where: str) -> str:
    """The audio file a recording names, relative to slurp_real/."""
    if not isinstance(recording, dict) or not isinstance(recording.get("file"), str) or not recording["file"]:
        raise UserError(f"{where} has no 'file' (each recording names its audio in slurp_real/)")
    return recording["file"]


def _record_clips(root: Path, record: object, path: Path, line: int) -> list[Clip]:
    """One clip per recording of an utterance; the speaker is the recording's user_id if given."""
    where = f"{path}:{line}"
    if not isinstance(record, dict):
        raise UserError(f"{where}: expected a JSON object, got {JSON_KINDS[type(record)]}")
    for key in ("intent", "recordings"):
        if key not in record:
            raise UserError(f"{where}: missing key {key!r}")
    if not isinstance(record["intent"], str) or not record["intent"]:
        raise UserError(f"{where}: 'intent' must be a non-empty string, got {record['intent']!r:.60}")
    recordings = record["recordings"]
    if not isinstance(recordings, list) or not recordings:
        raise UserError(f"{where}: 'recordings' must be a non-empty list, got {recordings!r:.60}")
    files = [_recording_file(recording, f"{where}: recording {i}") for i, recording in enumerate(recordings)]
    speakers = [str(recording.get("user_id", "unknown")) for recording in recordings]
    return [Clip(root / "slurp_real" / file, record["intent"], speaker, line) for file, speaker in zip(files, speakers)]


def read_split(root: Path, split: str) -> list[Clip]:
    """A split's clips; every line must be one JSON object (a blank line is an error, not a skip)."""
    path = jsonl_path(root, split)
    if not path.is_file():
        raise UserError(f"{path}: missing SLURP split file (SLURP keeps dataset/slurp/train.jsonl, "
                        f"devel.jsonl and test.jsonl under the dataset root)")
    clips = []
    with path.open() as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                raise UserError(f"{path}:{number}: blank line (SLURP holds one JSON object per line)")
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise UserError(f"{path}:{number}: malformed JSON: {exc.msg}") from None
            clips += _record_clips(root, record, path, number)
    return clips


def read_slurp(root: Path, unseen: str = "refuse") -> Corpus:
    """Load SLURP's real recordings; `devel` becomes the valid split."""
    root = require_root(root)
    splits = {split: read_split(root, split) for split in FILES}
    return make_corpus(root, splits, {s: jsonl_path(root, s) for s in FILES}, unseen)

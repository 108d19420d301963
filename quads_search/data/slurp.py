"""SLURP's layout: `dataset/slurp/{train,devel,test}.jsonl`, audio in `slurp_real/`."""
from __future__ import annotations

import json
from pathlib import Path

from quads_search.data.corpus import Clip, Corpus, make_corpus, require_root
from quads_search.errors import UserError

FILES = {"train": "train", "valid": "devel", "test": "test"}


def jsonl_path(root: Path, split: str) -> Path:
    return root / "dataset" / "slurp" / f"{FILES[split]}.jsonl"


def _record_clips(root: Path, record: object, where: str) -> list[Clip]:
    """One clip per recording of an utterance; the speaker is the recording's user_id if given."""
    if not isinstance(record, dict):
        raise UserError(f"{where}: expected a JSON object")
    for key in ("intent", "recordings"):
        if key not in record:
            raise UserError(f"{where}: missing key {key!r}")
    clips = []
    for recording in record["recordings"]:
        if not isinstance(recording, dict) or "file" not in recording:
            raise UserError(f"{where}: a recording without 'file'")
        speaker = str(recording.get("user_id", "unknown"))
        clips.append(Clip(root / "slurp_real" / recording["file"], record["intent"], speaker))
    return clips


def read_split(root: Path, split: str) -> list[Clip]:
    path = jsonl_path(root, split)
    if not path.is_file():
        raise UserError(f"{path}: missing SLURP split file")
    clips = []
    with path.open() as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise UserError(f"{path}:{number}: malformed JSON: {exc.msg}") from None
            clips += _record_clips(root, record, f"{path}:{number}")
    return clips


def read_slurp(root: Path) -> Corpus:
    """Load SLURP's real recordings; `devel` becomes the valid split."""
    root = require_root(root)
    splits = {split: read_split(root, split) for split in FILES}
    return make_corpus(root, splits, {s: jsonl_path(root, s) for s in FILES})

"""Fluent Speech Commands' on-disk layout: `data/{split}_data.csv` + `wavs/speakers/<id>/*.wav`."""
from __future__ import annotations

import csv
from pathlib import Path

from quads_search.data.corpus import SPLITS, Clip, Corpus, make_corpus, require_root
from quads_search.errors import UserError

COLUMNS = ["path", "speakerId", "transcription", "action", "object", "location"]
REQUIRED = ["path", "speakerId", "action", "object", "location"]


def csv_path(root: Path, split: str) -> Path:
    return root / "data" / f"{split}_data.csv"


def intent_name(action: str, obj: str, location: str) -> str:
    """FSC's intent is the triple; joined so it reads as one label."""
    return f"{action}|{obj}|{location}"


def write_csv(path: Path, rows: list[dict[str, str]]) -> None:
    """Write rows as FSC does: an unnamed index column, then COLUMNS."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["", *COLUMNS])
        for i, row in enumerate(rows):
            writer.writerow([i, *(row[c] for c in COLUMNS)])


def read_split(root: Path, split: str) -> list[Clip]:
    path = csv_path(root, split)
    if not path.is_file():
        raise UserError(f"{path}: missing FSC split file")
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        missing = [c for c in REQUIRED if c not in (reader.fieldnames or [])]
        if missing:
            raise UserError(f"{path}: missing column {missing[0]!r} (needs {', '.join(REQUIRED)})")
        clips = []
        for row in reader:
            if any(not row[c] for c in REQUIRED):
                empty = next(c for c in REQUIRED if not row[c])
                raise UserError(f"{path}:{reader.line_num}: empty {empty!r}")
            intent = intent_name(row["action"], row["object"], row["location"])
            clips.append(Clip(root / row["path"], intent, row["speakerId"]))
    return clips


def read_fsc(root: Path) -> Corpus:
    """Load an FSC-format dataset (the real one or our synthetic one)."""
    root = require_root(root)
    splits = {split: read_split(root, split) for split in SPLITS}
    return make_corpus(root, splits, {s: csv_path(root, s) for s in SPLITS})

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


def _check_header(path: Path, fieldnames: list[str] | None) -> None:
    """Every REQUIRED column is named in the header (line 1); the unnamed index column is optional."""
    missing = [c for c in REQUIRED if c not in (fieldnames or [])]
    if missing:
        found = ", ".join(repr(c) for c in fieldnames or []) or "nothing"
        raise UserError(f"{path}:1: missing column(s) {', '.join(map(repr, missing))} "
                        f"(needs {', '.join(REQUIRED)}; the header has {found})")


def _row_clip(root: Path, path: Path, line: int, row: dict, width: int) -> Clip:
    """One row's clip, or a UserError for a row of the wrong width or an empty required field."""
    if None in row or None in row.values():  # csv.DictReader's marks of a long or a short row
        fields = width + len(row.get(None, [])) - sum(v is None for v in row.values())
        raise UserError(f"{path}:{line}: {fields} field(s) where the header has {width}")
    empty = [c for c in REQUIRED if not row[c].strip()]
    if empty:
        raise UserError(f"{path}:{line}: empty {', '.join(map(repr, empty))}")
    intent = intent_name(row["action"], row["object"], row["location"])
    return Clip(root / row["path"], intent, row["speakerId"], line)


def read_split(root: Path, split: str) -> list[Clip]:
    path = csv_path(root, split)
    if not path.is_file():
        raise UserError(f"{path}: missing FSC split file (FSC keeps data/train_data.csv, valid_data.csv "
                        f"and test_data.csv under the dataset root)")
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        _check_header(path, reader.fieldnames)
        width = len(reader.fieldnames)
        return [_row_clip(root, path, reader.line_num, row, width) for row in reader]


def read_fsc(root: Path, unseen: str = "refuse") -> Corpus:
    """Load an FSC-format dataset (the real one or our synthetic one)."""
    root = require_root(root)
    splits = {split: read_split(root, split) for split in SPLITS}
    return make_corpus(root, splits, {s: csv_path(root, s) for s in SPLITS}, unseen)

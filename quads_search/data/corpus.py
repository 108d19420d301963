"""The structure every dataset loader returns."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from quads_search.errors import UserError

SPLITS = ("train", "valid", "test")


@dataclass(frozen=True)
class Clip:
    """One labelled recording."""

    path: Path
    intent: str
    speaker: str


@dataclass
class Corpus:
    """A dataset's three splits; `intents` is the sorted label map over all splits."""

    root: Path
    splits: dict[str, list[Clip]]
    intents: list[str]
    index_files: list[Path]  # the CSV/JSONL files the splits came from

    def labels(self, split: str) -> list[int]:
        """Integer labels of a split's clips, in order."""
        index = {name: i for i, name in enumerate(self.intents)}
        return [index[clip.intent] for clip in self.splits[split]]


def make_corpus(root: Path, splits: dict[str, list[Clip]], index_files: dict[str, Path]) -> Corpus:
    """Check every split holds clips and derive the label map."""
    for name in SPLITS:
        if not splits[name]:
            raise UserError(f"{index_files[name]}: the {name} split has no clips")
    intents = sorted({clip.intent for clips in splits.values() for clip in clips})
    return Corpus(root, splits, intents, [index_files[name] for name in SPLITS])


def require_root(root: Path) -> Path:
    """The dataset root, or a UserError naming it."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise UserError(f"{root}: dataset root does not exist")
    return root


"""The structure every dataset loader returns."""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from quads_search.errors import UserError

SPLITS = ("train", "valid", "test")


@dataclass(frozen=True)
class Clip:
    """One labelled recording."""

    path: Path
    intent: str
    speaker: str
    line: int  # its line in the split's index file, so errors about it can point there


@dataclass
class Corpus:
    """A dataset's three splits; `intents` is the sorted label map, the train split's intents."""

    root: Path
    splits: dict[str, list[Clip]]
    intents: list[str]

    def labels(self, split: str) -> list[int]:
        """Integer labels of a split's clips, in order."""
        index = {name: i for i, name in enumerate(self.intents)}
        return [index[clip.intent] for clip in self.splits[split]]


def make_corpus(root: Path, splits: dict[str, list[Clip]], index_files: dict[str, Path],
                unseen: Literal["refuse", "drop"] = "refuse") -> Corpus:
    """Check every split holds clips and every intent has train clips; derive the label map.

    `unseen: drop` removes valid/test clips of intents no train clip carries, with one warning
    that counts them (real SLURP has a few such intents); `refuse` stops with the list.
    """
    for name in SPLITS:
        if not splits[name]:
            raise UserError(f"{index_files[name]}: the {name} split has no clips")
    intents = sorted({clip.intent for clip in splits["train"]})
    if unseen == "drop":
        splits = _drop_untrained(splits, index_files, set(intents))
    _refuse_untrained(splits, index_files, set(intents))
    return Corpus(root, splits, intents)


def _drop_untrained(splits: dict[str, list[Clip]], index_files: dict[str, Path],
                    trained: set[str]) -> dict[str, list[Clip]]:
    dropped = {split: sum(map(len, _by_intent(splits[split], trained).values())) for split in SPLITS}
    if any(dropped.values()):
        counts = ", ".join(f"{n} of {len(splits[s])} {s} clips ({index_files[s].name})" for s, n in dropped.items() if n)
        warnings.warn(f"dataset.unseen_intents: drop: dropped {counts} whose intent no train clip carries",
                      stacklevel=3)
    kept = {split: [c for c in clips if c.intent in trained] for split, clips in splits.items()}
    for name in SPLITS:
        if not kept[name]:
            raise UserError(f"{index_files[name]}: the {name} split has no clip of a trained intent")
    return kept


def _refuse_untrained(splits: dict[str, list[Clip]], index_files: dict[str, Path], trained: set[str]) -> None:
    """Refuse intents no train clip carries: each would be a class no model can learn.

    Left in, they would widen the head and lower every accuracy without a word; the message
    gives each such intent's split, clip count and first line, so the user can fix the data.
    """
    found = [(split, intent, clips) for split in SPLITS if split != "train"
             for intent, clips in sorted(_by_intent(splits[split], trained).items())]
    if not found:
        return
    listed = ", ".join(f"{intent!r} ({len(clips)} {split} clip(s), first at {index_files[split].name}:"
                       f"{clips[0].line})" for split, intent, clips in found)
    split, _, clips = found[0]
    count = len({intent for _, intent, _ in found})
    raise UserError(f"{index_files[split]}:{clips[0].line}: {count} intent(s) have no train clip, so no model "
                    f"can learn them: {listed}; move such clips into train or drop them")


def _by_intent(clips: list[Clip], known: set[str]) -> dict[str, list[Clip]]:
    """The clips whose intent is not in `known`, grouped by intent, in file order."""
    grouped: dict[str, list[Clip]] = {}
    for clip in clips:
        if clip.intent not in known:
            grouped.setdefault(clip.intent, []).append(clip)
    return grouped


def require_root(root: Path) -> Path:
    """The dataset root, or a UserError naming it."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise UserError(f"{root}: dataset root does not exist")
    return root


"""FSC and SLURP layouts load into the common Corpus; bad input is a one-line UserError."""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from quads_search.config import DatasetConfig
from quads_search.data import read_corpus, read_fsc, read_slurp
from quads_search.errors import UserError

from .conftest import FSC_INTENTS, SLURP_INTENTS


def test_read_fsc(fsc_root: Path) -> None:
    corpus = read_fsc(fsc_root)
    assert corpus.intents == sorted("|".join(t) for t in FSC_INTENTS)
    assert {s: len(c) for s, c in corpus.splits.items()} == {"train": 16, "valid": 8, "test": 8}
    clip = corpus.splits["train"][0]
    assert clip.path == fsc_root / "wavs/speakers/spkA/0-0.wav" and clip.speaker == "spkA"
    assert clip.intent == "activate|lights|kitchen"
    assert corpus.labels("train")[0] == corpus.intents.index("activate|lights|kitchen")


def test_fsc_missing_split_file_names_the_layout(fsc_root: Path) -> None:
    path = fsc_root / "data" / "valid_data.csv"
    path.unlink()
    with pytest.raises(UserError, match=re.escape(f"{path}: missing FSC split file (FSC keeps data/train_data.csv")):
        read_fsc(fsc_root)


def _edit_line(path: Path, number: int, edit) -> None:
    """Replace line `number` (1-based) of a text file by edit(line)."""
    lines = path.read_text().splitlines()
    lines[number - 1] = edit(lines[number - 1])
    path.write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize("number, edit, problem", [
    (1, lambda line: line.replace(",location", ",place"),
     "1: missing column(s) 'location' (needs path, speakerId, action, object, location; the header has "
     "'', 'path', 'speakerId', 'transcription', 'action', 'object', 'place')"),
    (3, lambda line: line.replace("wavs/speakers/spkC/0-1.wav", ""), "3: empty 'path'"),
    (3, lambda line: line.replace("wavs/speakers/spkC/0-1.wav", " "), "3: empty 'path'"),
    (4, lambda line: line.split(",")[0], "4: 1 field(s) where the header has 7"),
    (4, lambda line: line + ",extra", "4: 8 field(s) where the header has 7"),
], ids=["missing-column", "empty-path", "blank-path", "short-row", "long-row"])
def test_fsc_bad_rows_are_named(fsc_root: Path, number: int, edit, problem: str) -> None:
    path = fsc_root / "data" / "valid_data.csv"
    _edit_line(path, number, edit)
    with pytest.raises(UserError, match="^" + re.escape(f"{path}:{problem}") + "$"):
        read_fsc(fsc_root)


def test_fsc_intent_missing_from_train_is_refused_with_counts(fsc_root: Path) -> None:
    valid, test = fsc_root / "data" / "valid_data.csv", fsc_root / "data" / "test_data.csv"
    _edit_line(valid, 3, lambda line: line.replace("activate,lights,kitchen", "activate,lamp,bedroom"))
    _edit_line(valid, 5, lambda line: line.replace(",none", ",kitchen"))
    _edit_line(test, 4, lambda line: line.replace(",none", ",kitchen"))
    with pytest.raises(UserError) as caught:
        read_fsc(fsc_root)
    assert str(caught.value) == (
        f"{valid}:3: 2 intent(s) have no train clip, so no model can learn them: "
        "'activate|lamp|bedroom' (1 valid clip(s), first at valid_data.csv:3), "
        "'deactivate|music|kitchen' (1 valid clip(s), first at valid_data.csv:5), "
        "'deactivate|music|kitchen' (1 test clip(s), first at test_data.csv:4); "
        "move such clips into train or drop them")


def test_unseen_intents_can_be_dropped_with_a_count(fsc_root: Path) -> None:
    test = fsc_root / "data" / "test_data.csv"
    _edit_line(test, 4, lambda line: line.replace(",none", ",kitchen"))
    with pytest.warns(UserWarning, match=r"dropped 1 of 8 test clips \(test_data.csv\) whose intent no train clip"):
        corpus = read_fsc(fsc_root, "drop")
    assert len(corpus.splits["test"]) == 7 and len(corpus.intents) == 4
    assert all(c.intent in corpus.intents for c in corpus.splits["test"])


def test_missing_root_and_empty_split(fsc_root: Path, tmp_path: Path) -> None:
    with pytest.raises(UserError, match=f"{tmp_path / 'nope'}: dataset root does not exist"):
        read_fsc(tmp_path / "nope")
    path = fsc_root / "data" / "test_data.csv"
    path.write_text(path.read_text().splitlines()[0] + "\n")
    with pytest.raises(UserError, match=f"{path}: the test split has no clips"):
        read_fsc(fsc_root)


def test_read_slurp(slurp_root: Path) -> None:
    corpus = read_slurp(slurp_root)
    assert corpus.intents == sorted(SLURP_INTENTS)
    assert {s: len(c) for s, c in corpus.splits.items()} == {"train": 6, "valid": 6, "test": 6}
    first, second = corpus.splits["valid"][:2]
    assert first.path == slurp_root / "slurp_real" / "audio-devel-0-0.flac"
    assert (first.speaker, second.speaker) == ("u1", "unknown")
    assert first.intent == "alarm_set"


def test_slurp_missing_split_file_names_the_layout(slurp_root: Path) -> None:
    path = slurp_root / "dataset" / "slurp" / "devel.jsonl"
    path.unlink()
    with pytest.raises(UserError, match=re.escape(f"{path}: missing SLURP split file (SLURP keeps "
                                                  "dataset/slurp/train.jsonl, devel.jsonl and test.jsonl")):
        read_slurp(slurp_root)


def _edit_record(record: dict, **changes) -> str:
    return json.dumps(record | changes)


@pytest.mark.parametrize("number, edit, problem", [
    (2, lambda line: "", "2: blank line (SLURP holds one JSON object per line)"),
    (3, lambda line: "   ", "3: blank line (SLURP holds one JSON object per line)"),
    (2, lambda line: '{"intent": "x"', "2: malformed JSON: Expecting ',' delimiter"),
    (2, lambda line: "[1, 2]", "2: expected a JSON object, got an array"),
    (1, lambda line: '{"intent": "x"}', "1: missing key 'recordings'"),
    (1, lambda line: _edit_record(json.loads(line), intent=""), "1: 'intent' must be a non-empty string, got ''"),
    (1, lambda line: _edit_record(json.loads(line), recordings=[]), "1: 'recordings' must be a non-empty list, got []"),
    (3, lambda line: _edit_record(json.loads(line), recordings=[{"file": "a.flac"}, {"wer": 0.0}]),
     "3: recording 1 has no 'file' (each recording names its audio in slurp_real/)"),
], ids=["blank", "whitespace", "malformed", "array", "no-recordings-key", "empty-intent", "empty-recordings",
        "recording-without-file"])
def test_slurp_bad_lines_are_named(slurp_root: Path, number: int, edit, problem: str) -> None:
    path = slurp_root / "dataset" / "slurp" / "train.jsonl"
    _edit_line(path, number, edit)
    with pytest.raises(UserError, match="^" + re.escape(f"{path}:{problem}") + "$"):
        read_slurp(slurp_root)


def test_slurp_intent_missing_from_train_is_refused_with_counts(slurp_root: Path) -> None:
    devel, test = (slurp_root / "dataset" / "slurp" / f"{name}.jsonl" for name in ("devel", "test"))
    _edit_line(test, 2, lambda line: _edit_record(json.loads(line), intent="cooking_recipe"))
    _edit_line(test, 3, lambda line: _edit_record(json.loads(line), intent="cooking_recipe"))
    with pytest.raises(UserError) as caught:
        read_slurp(slurp_root)
    assert str(caught.value) == (
        f"{test}:2: 1 intent(s) have no train clip, so no model can learn them: "
        "'cooking_recipe' (4 test clip(s), first at test.jsonl:2); move such clips into train or drop them")
    _edit_line(devel, 1, lambda line: _edit_record(json.loads(line), intent="cooking_recipe"))
    with pytest.raises(UserError) as caught:
        read_slurp(slurp_root)
    assert str(caught.value).startswith(f"{devel}:1: 1 intent(s) have no train clip, so no model can learn them: "
                                        "'cooking_recipe' (2 valid clip(s), first at devel.jsonl:1), "
                                        "'cooking_recipe' (4 test clip(s), first at test.jsonl:2);")


def test_read_corpus_dispatch_and_cap(fsc_root: Path, slurp_root: Path, small_corpus: Path, tmp_path: Path) -> None:
    full = read_corpus(DatasetConfig(kind="fsc", root=str(fsc_root)), tmp_path)
    capped = read_corpus(DatasetConfig(kind="fsc", root=str(fsc_root), max_train_clips=5), tmp_path)
    again = read_corpus(DatasetConfig(kind="fsc", root=str(fsc_root), max_train_clips=5), tmp_path)
    assert len(capped.splits["train"]) == 5 and capped.splits["train"] == again.splits["train"]
    order = [full.splits["train"].index(c) for c in capped.splits["train"]]
    assert order == sorted(order) and capped.splits["test"] == full.splits["test"]
    assert capped.intents == full.intents
    assert read_corpus(DatasetConfig(kind="slurp", root=str(slurp_root)), tmp_path).intents == sorted(SLURP_INTENTS)
    os.symlink(small_corpus, tmp_path / "corpus-small-speakers-0")  # the default synthetic root, already complete
    synthetic = read_corpus(DatasetConfig(kind="synthetic", size="small"), tmp_path)
    assert synthetic.root == tmp_path / "corpus-small-speakers-0" and len(synthetic.intents) == 31

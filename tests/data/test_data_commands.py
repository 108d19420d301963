"""`quads-search data synth|info` through the CLI's parser, in this process."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from quads_search.cli import build_parser
from quads_search.errors import UserError


def _run(argv: list[str]) -> int:
    args = build_parser(argv).parse_args(argv)
    return args.func(args)


@pytest.mark.parametrize("kind", ["synthetic", "fsc"])
def test_info_json_schema(small_corpus: Path, kind: str, capsys: pytest.CaptureFixture) -> None:
    assert _run(["data", "info", "--kind", kind, "--root", str(small_corpus), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["num_intents"] == 31
    assert set(summary["splits"]) == {"train", "valid", "test"}
    for split in summary["splits"].values():
        assert isinstance(split["clips"], int) and isinstance(split["speakers"], int)
        assert 0 < split["seconds"] <= 3.0 * split["clips"]
    assert summary["splits"]["train"]["clips"] == 744 and summary["splits"]["test"]["speakers"] == 4


def test_info_slurp_text(slurp_root: Path, capsys: pytest.CaptureFixture) -> None:
    assert _run(["data", "info", "--kind", "slurp", "--root", str(slurp_root)]) == 0
    out = capsys.readouterr().out
    assert "3 intents" in out and "valid" in out


def test_info_refuses_a_non_synthetic_root(fsc_root: Path) -> None:
    with pytest.raises(UserError, match=f"{fsc_root}: not a complete synthetic corpus"):
        _run(["data", "info", "--kind", "synthetic", "--root", str(fsc_root)])


def test_synth_reports_counts(small_corpus: Path, capsys: pytest.CaptureFixture) -> None:
    assert _run(["data", "synth", str(small_corpus), "--size", "small", "--seed", "0"]) == 0
    out = capsys.readouterr().out
    assert str(small_corpus) in out and "744 clips" in out and "31 intents" in out

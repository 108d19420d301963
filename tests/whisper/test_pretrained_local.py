"""Pretrained weights load from local files and safetensors only; `hub:<id>` is the one way to the hub (#27)."""
import pytest
import torch
from transformers import WhisperConfig, WhisperForAudioClassification, WhisperForConditionalGeneration

from quads_search.config import ModelConfig
from quads_search.core.models import build_model
from quads_search.errors import UserError
from quads_search.whisper.resolve import resolve_pretrained
from tests.runner import run_cli


def save_whisper(path, pickled: bool = False):
    """A tiny Whisper checkpoint as `save_pretrained` writes it, or with its weights pickled only."""
    torch.manual_seed(0)
    config = WhisperConfig(d_model=32, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
                           decoder_attention_heads=2, encoder_ffn_dim=64, decoder_ffn_dim=64,
                           num_mel_bins=80, max_source_positions=1500)
    model = WhisperForConditionalGeneration(config)
    model.save_pretrained(path)
    if pickled:  # what older tools write: only pytorch_model.bin, which loading would unpickle
        (path / "model.safetensors").unlink()
        torch.save(model.state_dict(), path / "pytorch_model.bin")
    return model


def test_a_hub_id_is_refused_unless_asked_for_with_hub(tmp_path):
    with pytest.raises(UserError, match=r"neither a packaged model .* nor a local directory.*hub:<id>"):
        resolve_pretrained("openai/whisper-tiny", tmp_path / "cache")
    assert resolve_pretrained("hub:openai/whisper-tiny", tmp_path / "cache") == "openai/whisper-tiny"


def test_pickled_weights_are_refused_and_never_unpickled(tmp_path, monkeypatch):
    save_whisper(tmp_path, pickled=True)

    def no_unpickling(*args, **kwargs):
        raise AssertionError("torch.load was called: a pickle was about to be loaded")

    monkeypatch.setattr(torch, "load", no_unpickling)
    with pytest.raises(UserError, match=r"no model\.safetensors \(it has pytorch_model\.bin, pickled weights"):
        build_model(ModelConfig(pretrained=str(tmp_path)), 7, 300)


def test_weights_load_from_local_safetensors_only(tmp_path, monkeypatch):
    full = save_whisper(tmp_path)
    calls = []
    original = WhisperForAudioClassification.from_pretrained.__func__

    def spy(cls, *args, **kwargs):
        calls.append(kwargs)
        return original(cls, *args, **kwargs)

    monkeypatch.setattr(WhisperForAudioClassification, "from_pretrained", classmethod(spy))
    model = build_model(ModelConfig(pretrained=str(tmp_path)), 7, 300)
    assert calls and all(c.get("local_files_only") is True and c.get("use_safetensors") is True for c in calls)
    assert torch.equal(model.encoder.layers[0].fc1.weight, full.model.encoder.layers[0].fc1.weight)


def test_a_pretrained_directory_without_weights_exits_2_naming_it(tmp_path):
    save_whisper(tmp_path)
    (tmp_path / "model.safetensors").unlink()
    with pytest.raises(UserError, match="holds no model.safetensors"):
        build_model(ModelConfig(pretrained=str(tmp_path)), 7, 300)
    out = run_cli("profile", "--student", tmp_path, "--seconds", "3")
    assert out.returncode == 2, out.stderr[-2000:]
    assert str(tmp_path) in out.stderr and len(out.stderr.strip().splitlines()) == 1

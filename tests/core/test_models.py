"""Models from pretrained checkpoints saved locally, as users' Whisper ids load them."""
import pytest
import torch
from transformers import WhisperConfig, WhisperForConditionalGeneration

from quads_search.config import ModelConfig
from quads_search.core.models import build_model, model_from_arch
from quads_search.errors import UserError


def save_whisper(path, n_mels=80):
    torch.manual_seed(0)
    config = WhisperConfig(d_model=64, encoder_layers=2, decoder_layers=1, encoder_attention_heads=4,
                           decoder_attention_heads=4, encoder_ffn_dim=128, decoder_ffn_dim=128,
                           num_mel_bins=n_mels, max_source_positions=1500)
    model = WhisperForConditionalGeneration(config)
    model.save_pretrained(path)
    return model


def test_a_saved_whisper_checkpoint_loads_its_encoder_weights(tmp_path):
    full = save_whisper(tmp_path)
    model = build_model(ModelConfig(pretrained=str(tmp_path)), 7, 300)  # 3 s: 150 positions
    reference = full.model.encoder.state_dict()
    for name, value in model.encoder.state_dict().items():
        expected = reference[name][:150] if name == "embed_positions.weight" else reference[name]
        assert torch.equal(value, expected), name
    logits, z = model(torch.randn(2, 80, 300))
    assert logits.shape == (2, 7) and z.shape == (2, 64)


def test_a_128_mel_checkpoint_is_refused_clearly(tmp_path):
    save_whisper(tmp_path, n_mels=128)
    with pytest.raises(UserError, match="128 mel bins"):
        build_model(ModelConfig(pretrained=str(tmp_path)), 7, 300)


def test_pooling_max_takes_each_channels_peak_over_time_and_survives_a_rebuild():
    torch.manual_seed(0)
    model = build_model(ModelConfig(pooling="max"), 5, 300).eval()
    features = torch.randn(3, 80, 300)
    with torch.no_grad():
        hidden = model.encoder(features).last_hidden_state
        logits, z = model(features)
        assert torch.equal(z, hidden.amax(dim=1)) and not torch.allclose(z, hidden.mean(dim=1))
        rebuilt = model_from_arch(model.arch, 5).eval()
        rebuilt.load_state_dict(model.state_dict())
        assert torch.equal(rebuilt(features)[0], logits)


def test_an_arch_saved_before_pooling_was_named_pools_by_the_mean():
    torch.manual_seed(0)
    arch = {k: v for k, v in build_model(ModelConfig(), 5, 300).arch.items() if k != "pooling"}
    model = model_from_arch(arch, 5).eval()
    features = torch.randn(2, 80, 300)
    with torch.no_grad():
        assert torch.equal(model(features)[1], model.encoder(features).last_hidden_state.mean(dim=1))


def test_an_unknown_pooling_in_a_saved_arch_is_refused():
    arch = dict(build_model(ModelConfig(), 5, 300).arch, pooling="median")
    with pytest.raises(UserError, match="pooling='median'"):
        model_from_arch(arch, 5)

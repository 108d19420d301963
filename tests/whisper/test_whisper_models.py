"""`pretrained: whisper-tiny.en` gives the SLU model the real packaged encoder weights."""
from __future__ import annotations

import torch

from quads_search.config import ModelConfig
from quads_search.core.models import build_model


def test_build_model_loads_the_packaged_tiny_en_encoder(tmp_path, tiny_variables):
    model = build_model(ModelConfig(pretrained="whisper-tiny.en"), 5, 300, cache_dir=tmp_path)
    assert [p.name for p in (tmp_path / "whisper-hf").iterdir() if p.is_dir()] != []
    encoder = model.encoder.state_dict()
    assert torch.equal(encoder["conv2.weight"], tiny_variables["encoder/conv2/weight"])
    assert torch.equal(encoder["embed_positions.weight"], tiny_variables["encoder/position_encodings/encodings"][:150])
    fused = tiny_variables["encoder/layer_3/self_attention/linear_0/weight"]
    assert torch.equal(torch.cat([encoder[f"layers.3.self_attn.{p}_proj.weight"] for p in "qkv"]), fused)
    assert torch.equal(encoder["layer_norm.bias"], tiny_variables["encoder/layer_norm/beta"])
    logits, z = model(torch.randn(2, 80, 300))
    assert logits.shape == (2, 5) and z.shape == (2, 384)

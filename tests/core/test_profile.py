"""Cost accounting on the meta device, with the paper's conventions."""
import json

import pytest

from quads_search.config import ModelConfig
from quads_search.core.models import (
    SLUModel,
    build_model,
    encoder_arch,
    trainable_parameters,
)
from quads_search.core.profile import cost_report
from quads_search.quant import quantizable_weights, resolve_bits
from tests.runner import run_cli


def profile(*args):
    out = run_cli("profile", *args, "--json")
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_whisper_presets_match_published_encoder_sizes():
    tiny = profile("--student", "whisper-tiny")
    large = profile("--student", "whisper-large")
    # Whisper encoders: tiny 7.63 M (+ the 384x31 head), large 635 M, at 30 s of input.
    assert tiny["params_m"] == pytest.approx(7.644, abs=1e-3)
    assert large["params_m"] == pytest.approx(634.9, abs=0.1)
    assert tiny["size_mb_nominal"] == pytest.approx(tiny["params_m"] * 1e6 * 4 / 2**20)
    assert 60 <= large["gmacs"] / tiny["gmacs"] <= 73  # the paper's "60-73x fewer GMACs"


def test_bits_shrink_size_and_bitops_but_not_macs():
    full, four = profile("--student", "whisper-tiny"), profile("--student", "whisper-tiny", "--bits", "4")
    assert four["gmacs"] == full["gmacs"]
    assert four["size_mb_nominal"] == pytest.approx(full["size_mb_nominal"] / 8)  # every parameter at 4 bits
    assert round(four["size_mb_nominal"], 2) == 3.65  # the paper's Table 1: 7.64 M x 4 bits
    assert four["gbitops"] < full["gbitops"] / 2  # attention products stay 32 x 32 bits
    assert 4 < four["bits_avg"] < 4.2  # stored: biases and norms stay at 32 bits
    assert four["size_mb"] > four["size_mb_nominal"] * 1.01


def test_macs_counted_on_meta_match_a_real_forward_and_hand_count():
    cfg = ModelConfig(d_model=64, layers=2, heads=4, ffn=256)
    model = build_model(cfg, 31, 300)
    bits = resolve_bits(list(quantizable_weights(model)), 32, {})
    report = cost_report(model, bits, 300)
    t, d, f = 150, 64, 256
    conv = 300 * d * 80 * 3 + t * d * d * 3
    per_layer = 4 * t * d * d + 2 * t * d * f + 2 * t * t * d
    assert report["gmacs"] * 1e9 == pytest.approx(conv + 2 * per_layer + d * 31)
    conv_params = d * 80 * 3 + d + d * d * 3 + d
    layer_params = 4 * d * d + 3 * d + 2 * d * f + f + d + 4 * d  # k_proj has no bias; two LayerNorms
    assert round(report["params_m"] * 1e6) == conv_params + 2 * layer_params + 2 * d + d * 31 + 31  # no positions


def test_profile_reads_a_packed_model_file(tmp_path):
    from quads_search.config import QuantizationConfig
    from quads_search.core.export import save_packed
    from quads_search.core.quantizer import make_quantizer

    model = SLUModel(encoder_arch(ModelConfig(), 300), 5)
    q = make_quantizer(model, QuantizationConfig(bits={"default": 2}))
    q.attach()
    save_packed(model, q, tmp_path / "m.safetensors", {"arch": model.arch, "num_classes": 5})
    report = profile("--student", str(tmp_path / "m.safetensors"), "--seconds", "3", "--bits", "2")
    assert report["params_m"] * 1e6 == pytest.approx(trainable_parameters(model))

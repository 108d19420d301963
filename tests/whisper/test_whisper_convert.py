"""The packaged Whisper tiny.en, converted from faster-whisper's format, against references
computed straight from the CTranslate2 tensors, and transcribing real synthetic speech."""
from __future__ import annotations

import json
import re

import numpy as np
import torch
import torch.nn.functional as F
import torchaudio

PHRASE = "turn on the lights in the kitchen"


def test_the_converted_directory_loads_without_missing_or_unexpected_weights(converted, hf_tiny):
    names = {p.name for p in converted.iterdir()}
    assert {"config.json", "model.safetensors", "generation_config.json", "preprocessor_config.json",
            "tokenizer.json"} <= names
    _, info = hf_tiny
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"]


def test_generation_settings_are_english_only_whispers(converted, tiny_dir):
    generation = json.loads((converted / "generation_config.json").read_text())
    ct2 = json.loads((tiny_dir / "config.json").read_text())
    assert generation["decoder_start_token_id"] == 50257  # <|startoftranscript|> of English-only models
    assert generation["no_timestamps_token_id"] == 50362
    assert generation["eos_token_id"] == 50256 and generation["is_multilingual"] is False
    assert generation["suppress_tokens"] == ct2["suppress_ids"]
    assert generation["begin_suppress_tokens"] == ct2["suppress_ids_begin"] == [220, 50256]
    assert "lang_to_id" not in generation and "task" not in generation


def test_it_transcribes_espeak_speech(converted, hf_tiny):
    from transformers import WhisperProcessor

    from quads_search.data import espeak

    raw = next(espeak.speak_fresh([(PHRASE, "en-us", 160, 50)]))
    samples = torch.from_numpy(np.frombuffer(raw, dtype="<i2").astype(np.float32) / 32768)
    audio = torchaudio.transforms.Resample(espeak.SAMPLE_RATE, 16000)(samples).numpy()
    processor = WhisperProcessor.from_pretrained(converted)
    features = processor(audio, sampling_rate=16000, return_tensors="pt").input_features
    with torch.no_grad():
        tokens = hf_tiny[0].generate(features)
    text = processor.batch_decode(tokens, skip_special_tokens=True)[0]
    assert PHRASE in " ".join(re.sub(r"[^a-z ]", " ", text.lower()).split()), text


def test_split_projections_equal_the_fused_ct2_projections(tiny_variables, hf_tiny):
    v, model = tiny_variables, hf_tiny[0].model
    x = torch.randn(7, 384, generator=torch.Generator().manual_seed(0))
    fused = {f"{side}/layer_{i}/self_attention/linear_0": [layer.self_attn.q_proj, layer.self_attn.k_proj,
                                                            layer.self_attn.v_proj]
             for side, stack in (("encoder", model.encoder), ("decoder", model.decoder))
             for i, layer in enumerate(stack.layers)}
    fused.update({f"decoder/layer_{i}/attention/linear_1": [layer.encoder_attn.k_proj, layer.encoder_attn.v_proj]
                  for i, layer in enumerate(model.decoder.layers)})
    assert len(fused) == 12
    with torch.no_grad():
        for name, projections in fused.items():
            reference = x @ v[f"{name}/weight"].T + v[f"{name}/bias"]
            torch.testing.assert_close(torch.cat([p(x) for p in projections], dim=-1), reference, msg=name)


def test_the_output_projection_is_the_token_embedding(ct2_tiny, hf_tiny):
    model = hf_tiny[0]
    assert ct2_tiny.aliases == {"decoder/projection/weight": "decoder/embeddings/weight"}
    assert torch.equal(model.proj_out.weight, ct2_tiny.variables["decoder/embeddings/weight"].float())
    assert model.proj_out.weight.data_ptr() == model.model.decoder.embed_tokens.weight.data_ptr()


def test_encoder_and_first_decoder_step_equal_a_reference_from_the_ct2_tensors(tiny_variables, hf_tiny):
    v, model = tiny_variables, hf_tiny[0]
    mel = 0.5 * torch.randn(80, 3000, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        encoded = model.model.encoder(mel[None]).last_hidden_state[0]
        logits = model(encoder_outputs=(encoded[None],), decoder_input_ids=torch.tensor([[50257]])).logits[0, 0]
    reference = _encoder(v, mel)
    torch.testing.assert_close(encoded, reference, atol=2e-4, rtol=1e-4)
    torch.testing.assert_close(logits, _first_step_logits(v, reference, token=50257), atol=2e-4, rtol=1e-4)


# ------------------------------------------------- Whisper written directly on CTranslate2's variables


def _norm(v, x, name):
    return F.layer_norm(x, x.shape[-1:], v[f"{name}/gamma"], v[f"{name}/beta"], eps=1e-5)


def _linear(v, x, name):
    return x @ v[f"{name}/weight"].T + v[f"{name}/bias"]


def _attend(q, k, v, heads):
    split = [t.reshape(len(t), heads, -1).transpose(0, 1) for t in (q, k, v)]
    weights = torch.softmax(split[0] @ split[1].transpose(1, 2) / split[0].shape[-1] ** 0.5, dim=-1)
    return (weights @ split[2]).transpose(0, 1).reshape(len(q), -1)


def _block(v, x, name, heads, memory=None):
    """One pre-norm layer; with `memory` (the encoder output) it has cross-attention too."""
    normed = _norm(v, x, f"{name}/self_attention/layer_norm")
    q, k, val = _linear(v, normed, f"{name}/self_attention/linear_0").chunk(3, -1)
    x = x + _linear(v, _attend(q, k, val, heads), f"{name}/self_attention/linear_1")
    if memory is not None:
        q = _linear(v, _norm(v, x, f"{name}/attention/layer_norm"), f"{name}/attention/linear_0")
        k, val = _linear(v, memory, f"{name}/attention/linear_1").chunk(2, -1)
        x = x + _linear(v, _attend(q, k, val, heads), f"{name}/attention/linear_2")
    hidden = F.gelu(_linear(v, _norm(v, x, f"{name}/ffn/layer_norm"), f"{name}/ffn/linear_0"))
    return x + _linear(v, hidden, f"{name}/ffn/linear_1")


def _encoder(v, mel):
    x = F.gelu(F.conv1d(mel, v["encoder/conv1/weight"], v["encoder/conv1/bias"], padding=1))
    x = F.gelu(F.conv1d(x, v["encoder/conv2/weight"], v["encoder/conv2/bias"], stride=2, padding=1))
    x = x.T + v["encoder/position_encodings/encodings"]
    for i in range(4):
        x = _block(v, x, f"encoder/layer_{i}", int(v["encoder/num_heads"]))
    return _norm(v, x, "encoder/layer_norm")


def _first_step_logits(v, memory, token):
    x = (v["decoder/embeddings/weight"][token] + v["decoder/position_encodings/encodings"][0])[None]
    for i in range(4):
        x = _block(v, x, f"decoder/layer_{i}", int(v["decoder/num_heads"]), memory)
    return (_norm(v, x, "decoder/layer_norm") @ v["decoder/projection/weight"].T)[0]

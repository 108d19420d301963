"""Write a faster-whisper (CTranslate2) model as a Hugging Face Whisper directory.

The directory holds config.json, model.safetensors (float32: exact for fp16 and fp32 sources),
generation_config.json, preprocessor_config.json and the tokenizer, so transformers'
`from_pretrained` loads the model and `WhisperProcessor` for it, and `generate` transcribes.
"""
from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import save_file
from transformers import (
    GenerationConfig,
    WhisperConfig,
    WhisperFeatureExtractor,
    WhisperForConditionalGeneration,
    WhisperTokenizerFast,
)

from quads_search.errors import UserError
from quads_search.whisper.convert import hf_state_dict
from quads_search.whisper.ct2 import float_variables, read_model
from quads_search.whisper.source import Ct2Source, read_json

SPEC, REVISION = "WhisperSpec", 3
SPECIAL = {"eot": "<|endoftext|>", "sot": "<|startoftranscript|>", "translate": "<|translate|>",
           "transcribe": "<|transcribe|>", "prev": "<|startofprev|>", "no_timestamps": "<|notimestamps|>"}
MULTILINGUAL_VOCAB = 51865  # OpenAI's test: English-only models have a smaller vocabulary


def write_hf_whisper(source: Ct2Source, out: Path) -> None:
    """Convert `source` into the existing empty directory `out`."""
    ct2_config = source.read_config()
    model = read_model(source.model_parts)
    if (model.spec, model.revision) != (SPEC, REVISION):
        raise UserError(f"{model.source}: holds a {model.spec} (revision {model.revision}); "
                        f"expected a {SPEC} revision {REVISION}")
    state, arch = hf_state_dict(model.source, float_variables(model))
    tokens, languages = special_tokens(source.tokenizer, arch["vocab_size"])
    config = WhisperConfig(**arch, activation_function="gelu", scale_embedding=False, tie_word_embeddings=True,
                           bos_token_id=tokens["eot"], eos_token_id=tokens["eot"], pad_token_id=tokens["eot"],
                           decoder_start_token_id=tokens["sot"], architectures=["WhisperForConditionalGeneration"],
                           begin_suppress_tokens=None)  # generation_config.json has it (the default is English-only's)
    _check_loadable(model.source, config, state)
    save_file(state, str(out / "model.safetensors"), metadata={"format": "pt"})
    config.save_pretrained(out)
    generation_config(arch, tokens, languages, ct2_config).save_pretrained(out)
    # Saved separately (not as a WhisperProcessor) so the files are the ones every transformers version reads.
    WhisperFeatureExtractor(feature_size=arch["num_mel_bins"]).save_pretrained(out)
    WhisperTokenizerFast(tokenizer_file=str(source.tokenizer), pad_token=SPECIAL["eot"]).save_pretrained(out)


def special_tokens(path: Path, vocab_size: int) -> tuple[dict[str, int], dict[str, int]]:
    """Ids of Whisper's control tokens by role (English-only and multilingual models number them
    differently), and of the language tokens, which sit between <|startoftranscript|> and <|translate|>."""
    added = read_json(path).get("added_tokens")
    if not isinstance(added, list):
        raise UserError(f"{path}: no added_tokens list (not a Hugging Face tokenizer.json)")
    by_content = {t.get("content"): t.get("id") for t in added if isinstance(t, dict)}
    ids = {}
    for role, content in SPECIAL.items():
        token = by_content.get(content)
        if not isinstance(token, int) or not 0 <= token < vocab_size:
            raise UserError(f"{path}: token {content} is {'missing' if token is None else token}; "
                            f"a Whisper tokenizer for this {vocab_size}-token model has it")
        ids[role] = token
    languages = {c: i for c, i in by_content.items() if isinstance(i, int) and ids["sot"] < i < ids["translate"]}
    return ids, languages


def generation_config(arch: dict, tokens: dict[str, int], languages: dict[str, int], ct2: dict) -> GenerationConfig:
    """Decoding as OpenAI's Whisper does it; the suppressed tokens come from CTranslate2's config.json."""
    multilingual = arch["vocab_size"] >= MULTILINGUAL_VOCAB
    extra = {}
    if multilingual:
        extra["lang_to_id"] = languages
        extra["task_to_id"] = {"transcribe": tokens["transcribe"], "translate": tokens["translate"]}
        extra["task"] = "transcribe"  # OpenAI's default; without it the prompt lacks a task token
    if ct2.get("alignment_heads"):
        extra["alignment_heads"] = ct2["alignment_heads"]
    return GenerationConfig(
        decoder_start_token_id=tokens["sot"], bos_token_id=tokens["eot"], eos_token_id=tokens["eot"],
        pad_token_id=tokens["eot"], max_length=arch["max_target_positions"],
        suppress_tokens=ct2["suppress_ids"], begin_suppress_tokens=ct2["suppress_ids_begin"],
        no_timestamps_token_id=tokens["no_timestamps"], prev_sot_token_id=tokens["prev"],
        is_multilingual=multilingual, return_timestamps=False, max_initial_timestamp_index=50, **extra)


def _check_loadable(source: str, config: WhisperConfig, state: dict[str, torch.Tensor]) -> None:
    """The state dict must fill a transformers Whisper of `config` exactly (proj_out is tied)."""
    try:
        with torch.device("meta"):
            reference = WhisperForConditionalGeneration(config).state_dict()
    except ValueError as exc:  # e.g. heads that do not divide d_model
        raise UserError(f"{source}: not a valid Whisper shape: {exc}") from None
    reference.pop("proj_out.weight")
    wrong = sorted(set(reference) ^ set(state))
    wrong += [k for k in reference.keys() & state.keys() if reference[k].shape != state[k].shape]
    if wrong:
        raise UserError(f"{source}: the converted weights do not fit a Whisper of this shape: {', '.join(wrong[:5])}")

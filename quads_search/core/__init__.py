"""The QUADS training core, in plain PyTorch (no Ray): what one sweep trial runs.

  models         Whisper-encoder teacher and student: pretrained, preset or explicit shape
  pretune        task tuning of either, cached (the student may learn the teacher's soft labels)
  teacher        the teacher's cached embeddings and logits, and the width reduction for L_1
  schedule       stage presets, generated cycles and per-stage optimizer defaults
  losses         L_1, L_GT, soft labels and their combination per stage
  epochs         optimizers, one training pass, evaluation
  quantizer      a quantizer from the configuration (quant does the work)
  prepare        what trials share, built once: features, teacher targets, pre-tuned student, references
  run            one configuration end to end: stages, checkpoints, export
  export         the packed safetensors file and back; packed_header reads its header torch-free
  profile        params, GMACs, GBitOPs and sizes; planned: a run's size, bits and GMACs before it trains
  sensitivity    Hutchinson curvature x quantization error per tensor and width (hutchinson: the trace)
  allocation     bit allocations under a size budget (exact knapsack and greedy)
"""

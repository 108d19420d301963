"""The QUADS core end to end on the synthetic corpus: real audio, real training, tiny models."""
import json
import subprocess
import sys

import pytest
import torch

from quads_search import load_packed
from quads_search.core.run import QuadsRun, prepare, run_quads
from quads_search.sweep.space import apply_params

pytestmark = pytest.mark.slow


def test_smoke_train_cli_beats_chance_and_its_export_reloads_exactly(smoke_cache, tmp_path):
    from tests.conftest import SPACE

    out = subprocess.run([sys.executable, "-m", "quads_search.cli", "train", str(SPACE), "--smoke", "--json",
                          "--set", f"cache_dir={smoke_cache}", "--out", str(tmp_path / "run")],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    metrics = json.loads(out.stdout)
    assert metrics["accuracy"] > 4 / 31, metrics  # chance is 1/31
    for key in ("f1_macro", "params_m", "gmacs", "size_mb", "size_mb_nominal", "bits_avg", "gbitops"):
        assert metrics[key] > 0
    model, meta = load_packed(metrics["model_path"])
    weights = dict(model.named_parameters())
    for name, bits in metrics["bits"].items():
        if bits <= 8:
            assert torch.unique(weights[name]).numel() <= 2 ** bits, name
    evaluated = subprocess.run([sys.executable, "-m", "quads_search.cli", "evaluate", metrics["model_path"], "--json"],
                               capture_output=True, text=True, timeout=300)
    assert evaluated.returncode == 0, evaluated.stderr[-2000:]
    assert json.loads(evaluated.stdout)["accuracy"] == metrics["accuracy"]


def test_resuming_from_a_stage_checkpoint_gives_the_same_model(smoke_config, prepared, tmp_path):
    schedule = [{"stage": "distill", "epochs": 1}, {"stage": "joint", "epochs": 1}, {"stage": "quantize", "epochs": 1}]
    config = apply_params(smoke_config.run_config(), {"training.schedule": schedule, "bits.default": 2})
    saved = {}

    def keep_first(record, save):
        if record["stage"] == 1:
            save(tmp_path / "ckpt")
            saved["after"] = record

    full = run_quads(config, tmp_path / "full", log=lambda m: None, on_stage_end=keep_first)
    resumed = run_quads(config, tmp_path / "resumed", log=lambda m: None, resume_from=tmp_path / "ckpt")
    assert saved["after"]["kind"] == "distill"
    assert resumed["accuracy"] == full["accuracy"] and resumed["size_mb"] == full["size_mb"]
    a, _ = load_packed(full["model_path"])
    b, _ = load_packed(resumed["model_path"])
    for (name, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items()):
        assert torch.equal(x, y), name


def test_joint_stage_pulls_weights_to_the_codebook_and_ends_snapped(smoke_config, tmp_path):
    config = apply_params(smoke_config.run_config(), {"training.gamma": 0.2, "bits.default": 3,
                                                      "training.schedule": [{"stage": "joint", "epochs": 1}]})
    run = QuadsRun(config, prepare(config, log=lambda m: None), log=lambda m: None)
    record = run.run_stage(0)
    assert record["quantized"] and run.quantizer.distinct_ok()
    assert run.quantizer.centroid_loss().item() == 0.0  # snapped at the stage end


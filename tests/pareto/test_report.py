"""The HTML report, opened in headless Chromium: the front table with per-tensor bits, references, plots."""
from __future__ import annotations

import collections
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.runner import run_cli

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
# (trial, kind, valid accuracy, test accuracy, default bits); sizes follow the bits.
TRIALS = [("ref32", "reference", 0.80, 0.78, 32), ("ref2", "reference", 0.55, 0.50, 2),
          ("a", "searched", 0.78, 0.74, 4), ("b", "searched", 0.70, 0.72, 3), ("c", "searched", 0.60, 0.58, 4)]


def write_sweep(root: Path) -> None:
    """A results directory of real (tiny) packed models, quantized at the given bits, with references."""
    import torch

    from quads_search.config import ModelConfig, QuantizationConfig
    from quads_search.core.export import save_model
    from quads_search.core.models import build_model
    from quads_search.core.profile import cost_report
    from quads_search.core.quantizer import make_quantizer
    from quads_search.results import KIND_KEY, REFERENCES_FILE, TrialTable, trial_row

    table = TrialTable(root / "exp")
    for trial_id, kind, valid, test, bits in TRIALS:
        torch.manual_seed(0)
        model = build_model(ModelConfig(d_model=16, layers=1, heads=2, ffn=32), 3, 20)
        q = make_quantizer(model, QuantizationConfig(bits={"default": bits, "head": 8}))
        q.attach()
        metrics = {"valid_accuracy": valid, "accuracy": test, "f1_macro": test, "valid_f1_macro": valid,
                   **cost_report(model, q.bits, 20)}
        path = root / "exp" / "models" / trial_id / "model.safetensors"
        path.parent.mkdir(parents=True)
        save_model(model, q, path, config={}, intents=["a", "b", "c"], metrics=metrics, dataset_key="x")
        table.record(trial_row(trial_id, "exp", {KIND_KEY: kind, "bits.default": bits},
                               {**metrics, "status": "finished", "model_path": str(path)}))
    (root / "exp" / REFERENCES_FILE).write_text(json.dumps({
        "teacher_accuracy": 0.9, "teacher_valid_accuracy": 0.92, "teacher_size_mb": 10.0, "teacher_gmacs": 1.0,
        "teacher_params_m": 2.6, "student_fp32_accuracy": 0.77, "student_fp32_valid_accuracy": 0.79,
        "student_fp32_size_mb": 0.05, "student_fp32_gmacs": 0.001, "student_fp32_params_m": 0.01}))


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("results")
    write_sweep(root)
    out = run_cli("pareto", root)
    assert out.returncode == 0, out.stderr
    return root


def chromium(*args: str) -> subprocess.CompletedProcess:
    """Chromium run headless; a failure (non-zero exit) fails the test."""
    if CHROMIUM is None:
        pytest.skip("Chromium is not installed (Debian: apt-get install chromium); .ci/run installs it")
    out = subprocess.run([CHROMIUM, *FLAGS, *args], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, f"chromium exited {out.returncode}: {out.stderr[-2000:]}"
    return out


def rgb(colour: str) -> tuple[int, int, int]:
    return tuple(int(colour[i:i + 2], 16) for i in (1, 3, 5))


def test_the_report_shows_the_front_table_bits_and_references_in_a_browser(report, tmp_path):
    dom = chromium(f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom",
                   (report / "pareto.html").as_uri()).stdout
    rows = re.findall(r'<tr class="front-row" data-trial="([^"]+)"', dom)
    assert sorted(rows) == ["a", "b", "ref2", "ref32"]  # "c" (4 bits) is dominated by "a" (4 bits)
    row_a = dom[dom.index('data-trial="a"><td>'):].split("</tr>")[0]
    assert re.findall(r'data-bits="(\d+)"', row_a).count("4") >= 4 and 'data-bits="8"' in row_a  # head at 8
    assert "× smaller than teacher" in dom and "test acc (held out)" in dom
    assert len(re.findall(r'<line class="reference" data-role="(teacher|student_fp32)"', dom)) == 2
    assert 'id="panel-size_mb"' in dom and 'id="panel-gmacs"' not in dom
    assert "is the same for every finished trial" in dom  # GMACs do not vary here
    assert len(re.findall(r'class="xtick"', dom)) >= 2 and len(re.findall(r'class="ytick"', dom)) >= 3
    assert '<polyline class="front"' in dom and len(re.findall(r'<rect class="trial', dom)) == 2  # references


def test_the_report_renders_the_heat_map_and_the_front_in_a_screenshot(report, tmp_path):
    from PIL import Image

    from quads_search.pareto.report import BIT_COLOURS

    shot = tmp_path / "report.png"
    chromium(f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={shot}", "--window-size=1400,1200",
             (report / "pareto.html").as_uri())
    image = Image.open(shot).convert("RGB")
    assert image.size == (1400, 1200)
    pixels = collections.Counter(image.get_flattened_data())
    # The front table's heat map: a cell per tensor in its width's colour. The front holds 2-bit (ref2),
    # 3-bit (b), 8-bit (a's head) and 32-bit (ref32) tensors: each colour covers 2,400 to 4,900 pixels
    # here. Chromium's error page for a missing file (exit code 0 too) shows none of them.
    for bits in (2, 3, 8, 32):
        assert pixels[rgb(BIT_COLOURS[bits])] >= 1000, (bits, pixels[rgb(BIT_COLOURS[bits])])
    assert pixels[rgb("#d62728")] >= 300  # the front's staircase and its points, in red (about 930 pixels)
    assert pixels[rgb("#ffffff")] > 0.5 * 1400 * 1200  # on the page's white


def test_front_models_get_model_cards_and_the_png_has_the_heat_map(report):
    for trial in ("a", "b", "ref2", "ref32"):
        card = (report / "exp" / "models" / trial / "MODEL_CARD.md").read_text()
        assert "Against the references" in card and "x smaller" in card
    assert not (report / "exp" / "models" / "c" / "MODEL_CARD.md").exists()
    assert (report / "pareto.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

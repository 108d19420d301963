"""The CLI contract: nine subcommands, one-line user errors with exit code 2, no Ray for bad YAML.

Checked in this process (`run_cli`), except what only the installed entry point shows."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from tests.conftest import SPACE
from tests.runner import run_cli

# The `quads-search --help` command table, exactly (argparse at 200 columns).
COMMANDS = {
    "run": "run a sweep (Ray Tune + Optuna) over a search-space YAML",
    "train": "train one configuration end to end (no search)",
    "pareto": "select models on accuracy against size and GMACs",
    "profile": "cost of a student (meta device: no memory, no training)",
    "data": "synthesise a corpus or summarise a dataset",
    "evaluate": "evaluate a packed model (default: on the dataset it was trained on)",
    "export": "export a packed model as ONNX (weights kept packed) for a device",
    "whisper": "pretrained Whisper from faster-whisper (CTranslate2) models",
    "sensitivity": "Hessian-trace sensitivity of each bit group and budgeted allocations (cached)",
}
WIDE = {"COLUMNS": "200"}  # argparse wraps help at the terminal width


def command_table(help_text: str) -> dict[str, str]:
    """{command: summary} from the COMMAND block of `--help` (a long name puts its summary on the next line)."""
    block = help_text.split("  COMMAND\n", 1)[1].split("\n\n", 1)[0].splitlines()
    table, name = {}, None
    for line in block:
        parts = line.strip().split(None, 1)
        if line.startswith("    ") and not line.startswith("     "):  # a command's own line
            name = parts[0]
            table[name] = parts[1] if len(parts) > 1 else ""
        else:  # its summary, wrapped under it
            table[name] = (table[name] + " " + line.strip()).strip()
    return table


def test_help_lists_every_subcommand_with_its_summary_exactly():
    out = run_cli("--help", env=WIDE)
    assert out.returncode == 0 and out.stderr == ""
    assert out.stdout.splitlines()[0] == "usage: quads-search [-h] [--debug] COMMAND ..."
    assert command_table(out.stdout) == COMMANDS
    assert list(command_table(out.stdout)) == list(COMMANDS)  # in this order
    for command in COMMANDS:
        sub = run_cli(command, "--help", env=WIDE)
        assert sub.returncode == 0 and sub.stderr == "", command
        assert sub.stdout.splitlines()[0].startswith(f"usage: quads-search {command} [-h]"), sub.stdout[:200]


def test_the_installed_entry_points_print_the_same_help():
    expected = run_cli("--help", env=WIDE).stdout
    script = shutil.which("quads-search")
    assert script, "pip install -e . installs the quads-search script"
    for argv in ([script, "--help"], [sys.executable, "-m", "quads_search.cli", "--help"]):
        out = subprocess.run(argv, capture_output=True, text=True, timeout=120, env={**os.environ, **WIDE})
        assert out.returncode == 0 and out.stdout == expected, argv


def test_bad_yaml_exits_2_with_all_errors_and_never_starts_ray(tmp_path):
    raw = yaml.safe_load(SPACE.read_text())
    raw["student"]["wings"] = 2                    # unknown key
    raw["search"]["num_samples"] = "many"          # wrong type
    raw["quantization"]["bits"] = {"default": 4, "conv1": 3, "head": 12}  # 12 is out of range
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(raw))
    out = run_cli("run", path, "--results-dir", tmp_path / "results", cwd=tmp_path)
    assert out.returncode == 2, out.stderr
    assert "student.wings" in out.stderr and "search.num_samples" in out.stderr
    assert "quantization.bits.head" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    assert "Traceback" not in out.stderr and "Ray" not in out.stdout + out.stderr
    assert not (tmp_path / "results").exists()


def test_missing_file_and_bad_argument_exit_2(tmp_path):
    out = run_cli("run", tmp_path / "nope.yaml")
    assert out.returncode == 2 and "nope.yaml: no such file" in out.stderr
    assert run_cli("profile", "--student", "whisper-tiny", "--bits", "9").returncode == 2
    assert run_cli("run").returncode == 2


def interrupted_sweep(tmp_path, *overrides: str) -> Path:
    """An experiment directory as an interrupted sweep leaves it (its config saved with `overrides`)."""
    from quads_search.config import load_sweep_config, to_dict

    experiment = tmp_path / "mixed_precision"
    experiment.mkdir()
    (experiment / "experiment_state-2026.json").write_text("{}")
    saved = to_dict(load_sweep_config(SPACE, list(overrides)))
    (experiment / "config.yaml").write_text(yaml.safe_dump(saved))
    return experiment


def test_resume_with_a_different_config_is_refused(tmp_path):
    interrupted_sweep(tmp_path, "training.gamma=0.9")
    out = run_cli("run", SPACE, "--resume", "--results-dir", tmp_path)
    assert out.returncode == 2 and "differs" in out.stderr and "training" in out.stderr


def test_resume_with_a_changed_space_is_refused(tmp_path):
    interrupted_sweep(tmp_path)
    out = run_cli("run", SPACE, "--resume", "--results-dir", tmp_path,
                  "--set", "space.training.gamma={uniform: [0.2, 0.8]}")
    assert out.returncode == 2 and "differs" in out.stderr and "space" in out.stderr


def test_resume_where_nothing_was_run_is_refused(tmp_path):
    out = run_cli("run", SPACE, "--resume", "--results-dir", tmp_path)
    assert out.returncode == 2 and "holds no sweep to resume" in out.stderr


def test_resume_without_the_saved_config_is_refused(tmp_path):
    (interrupted_sweep(tmp_path) / "config.yaml").unlink()
    out = run_cli("run", SPACE, "--resume", "--results-dir", tmp_path)
    assert out.returncode == 2 and "config.yaml is missing" in out.stderr

"""The CLI contract: eight subcommands, one-line user errors with exit code 2, no Ray for bad YAML."""
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from quads_search.cli import main

SPACE = Path(__file__).parents[1] / "search_spaces" / "mixed_precision.yaml"


def cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "quads_search.cli", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=120)


COMMANDS = ("run", "train", "pareto", "profile", "data", "evaluate", "whisper", "sensitivity")


def test_help_lists_every_subcommand(capsys):
    out = cli("--help")  # the installed entry point, once
    assert out.returncode == 0
    for command in COMMANDS:
        assert command in out.stdout
        with pytest.raises(SystemExit) as exit_:  # each subcommand's help in this process: imports paid once
            main([command, "--help"])
        assert exit_.value.code == 0 and f"quads-search {command}" in capsys.readouterr().out


def test_bad_yaml_exits_2_with_all_errors_and_never_starts_ray(tmp_path):
    raw = yaml.safe_load(SPACE.read_text())
    raw["student"]["wings"] = 2                    # unknown key
    raw["search"]["num_samples"] = "many"          # wrong type
    raw["quantization"]["bits"] = {"default": 4, "conv1": 3, "head": 12}  # 12 is out of range
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(raw))
    out = cli("run", str(path), "--results-dir", str(tmp_path / "results"), cwd=tmp_path)
    assert out.returncode == 2, out.stderr
    assert "student.wings" in out.stderr and "search.num_samples" in out.stderr
    assert "quantization.bits.head" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    assert "Traceback" not in out.stderr and "Ray" not in out.stdout + out.stderr
    assert not (tmp_path / "results").exists()


def test_missing_file_and_bad_argument_exit_2(tmp_path):
    out = cli("run", str(tmp_path / "nope.yaml"))
    assert out.returncode == 2 and "nope.yaml: no such file" in out.stderr
    assert cli("profile", "--student", "whisper-tiny", "--bits", "9").returncode == 2
    assert cli("run").returncode == 2


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
    out = cli("run", str(SPACE), "--resume", "--results-dir", str(tmp_path))
    assert out.returncode == 2 and "differs" in out.stderr and "training" in out.stderr


def test_resume_with_a_changed_space_is_refused(tmp_path):
    interrupted_sweep(tmp_path)
    out = cli("run", str(SPACE), "--resume", "--results-dir", str(tmp_path),
              "--set", "space.training.gamma={uniform: [0.2, 0.8]}")
    assert out.returncode == 2 and "differs" in out.stderr and "space" in out.stderr


def test_resume_where_nothing_was_run_is_refused(tmp_path):
    out = cli("run", str(SPACE), "--resume", "--results-dir", str(tmp_path))
    assert out.returncode == 2 and "holds no sweep to resume" in out.stderr


def test_resume_without_the_saved_config_is_refused(tmp_path):
    (interrupted_sweep(tmp_path) / "config.yaml").unlink()
    out = cli("run", str(SPACE), "--resume", "--results-dir", str(tmp_path))
    assert out.returncode == 2 and "config.yaml is missing" in out.stderr

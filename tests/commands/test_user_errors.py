"""Every user error is one line and exit code 2, found before Ray starts (#27, items 4 and 5); the commands
run in this process (tests/runner.py)."""
import json
from pathlib import Path

import pytest
import torch

from quads_search.config import load_sweep_config
from quads_search.errors import ConfigError
from quads_search.sweep.space import load_sweep
from tests.conftest import SPACE
from tests.runner import run_cli

# A dataset that cannot be read: had a check been missed, the run would stop there (exit 2, another
# message) instead of synthesising a corpus and starting Ray.
NO_DATA = ["--set", "dataset.kind=fsc", "--set", "dataset.root=/nonexistent/fsc"]


def one_line_exit_2(out, *expected: str) -> str:
    assert out.returncode == 2, out.stdout[-2000:] + out.stderr[-2000:]
    assert len(out.stderr.strip().splitlines()) == 1 and "Traceback" not in out.stderr, out.stderr
    for text in expected:
        assert text in out.stderr, out.stderr
    assert "Ray dashboard" not in out.stdout and "preparing shared data" not in out.stdout  # nothing started
    return out.stderr


@pytest.mark.parametrize("override, named", [
    ("space.bits.conv1={int: [4, 16]}", "space.bits.conv1: [9, 10, 11, 12, 13, 14, 15] are no bit widths"),
    ("space.student.heads={int: [2, 4]}", "space.student.heads=3"),  # 3 does not divide d_model 64
])
def test_every_value_of_an_int_range_is_checked_not_only_its_ends(override, named, tmp_path):
    # search.warm_start: none (as under --smoke): no sensitivity seeding, whose own check lists bit widths
    with pytest.raises(ConfigError, match=named.replace("[", r"\[").replace("]", r"\]")):
        load_sweep(SPACE, [override, "search.warm_start=none", f"cache_dir={tmp_path}"])


def test_an_int_range_of_bit_widths_exits_2_before_ray_starts(tmp_path):
    out = run_cli("run", SPACE, "--smoke", "--results-dir", tmp_path / "results",
                  "--set", "space.bits.conv1={int: [4, 16]}", "--set", f"cache_dir={tmp_path / 'cache'}", *NO_DATA)
    one_line_exit_2(out, "space.bits.conv1: [9, 10, 11, 12, 13, 14, 15] are no bit widths")
    assert not (tmp_path / "results").exists()


@pytest.mark.parametrize("override, key", [
    ("search.cpus_per_trial=.inf", "search.cpus_per_trial"),
    ("search.cpus_per_trial=.nan", "search.cpus_per_trial"),
    ("student.pretune.lr=.nan", "student.pretune.lr"),
    ("teacher.pretune.head_lr=.inf", "teacher.pretune.head_lr"),
    ("training.schedule=[{stage: distill, epochs: 1, lr: .nan}]", "training.schedule.0.lr"),
    ("training.schedule=[{stage: distill, epochs: 1, loss: {l1: .inf}}]", "training.schedule.0.loss.l1"),
    ("space.training.alpha={uniform: [0.0, .nan]}", "space.training.alpha.uniform.1"),
])
def test_nan_and_inf_are_refused_wherever_a_number_is_read(override, key):
    with pytest.raises(ConfigError, match=rf"{key.replace('.', '[.]')}.*must be a finite number"):
        load_sweep_config(SPACE, [override])


def test_earlier_rows_without_a_sweep_state_are_refused_not_folded_in(tmp_path):
    rows = tmp_path / "results" / "mixed_precision" / "rows"
    rows.mkdir(parents=True)
    (rows / "old_trial.json").write_text(json.dumps({"trial_id": "old_trial", "status": "finished"}))
    out = run_cli("run", SPACE, "--results-dir", tmp_path / "results", "--set", f"cache_dir={tmp_path / 'cache'}",
                  *NO_DATA)
    one_line_exit_2(out, "holds the trials of an earlier sweep (rows)")
    assert not (tmp_path / "results" / "mixed_precision" / "trials.parquet").exists()


def test_a_yaml_file_that_is_not_utf8_exits_2(tmp_path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes(SPACE.read_bytes().replace(b"name: mixed_precision", b"name: caf\xe9"))
    one_line_exit_2(run_cli("run", path, "--results-dir", tmp_path), f"{path}: not UTF-8")
    assert not (tmp_path / "mixed_precision").exists()


@pytest.mark.parametrize("content, named", [(b"default: [4\n", "malformed"), (b"default: \xff\n", "not UTF-8")])
def test_a_malformed_bits_map_exits_2(tmp_path, content, named):
    path = tmp_path / "bits.yaml"
    path.write_bytes(content)
    one_line_exit_2(run_cli("profile", "--student", "whisper-tiny", "--bits-map", path), str(path), named)


@pytest.mark.parametrize("metadata", [{}, None])
def test_evaluate_on_a_packed_file_without_its_metadata_exits_2(tmp_path, metadata):
    from safetensors.torch import save_file

    from quads_search.core.export import save_packed
    from quads_search.core.packed_header import FORMAT

    path = tmp_path / "model.safetensors"
    if metadata is None:  # our format mark, but no metadata at all
        save_file({"w": torch.zeros(2)}, str(path), metadata={"format": FORMAT})
    else:  # a packed tensor file (save_packed) without what save_model adds
        save_packed(torch.nn.Linear(2, 2), None, path, metadata)
    one_line_exit_2(run_cli("evaluate", path), str(path))


def test_debug_shows_the_traceback_and_keeps_exit_2(tmp_path):
    out = run_cli("--debug", "run", tmp_path / "nope.yaml")
    assert out.returncode == 2 and "Traceback" in out.stderr and "nope.yaml: no such file" in out.stderr


def test_a_second_run_into_a_locked_experiment_folder_is_refused(tmp_path):
    from filelock import FileLock

    from quads_search.sweep.driver import LOCK_FILE

    experiment = tmp_path / "results" / "mixed_precision"
    experiment.mkdir(parents=True)
    with FileLock(str(experiment / LOCK_FILE)):  # as a running `quads-search run` holds it
        out = run_cli("run", SPACE, "--results-dir", tmp_path / "results", "--set", f"cache_dir={tmp_path / 'c'}",
                      *NO_DATA)
    one_line_exit_2(out, str(experiment), "another `quads-search run` is writing into it")
    assert [p.name for p in experiment.iterdir()] == [LOCK_FILE]  # nothing written, not even config.yaml


def test_the_config_check_never_loads_a_non_finite_float_from_a_string():
    # YAML 1.1 reads `1e-3` as a string, which the schema converts; "nan" and "inf" strings are not numbers either
    with pytest.raises(ConfigError, match="must be a finite number"):
        load_sweep_config(SPACE, ["search.cpus_per_trial=nan"])
    assert Path(SPACE).is_file()

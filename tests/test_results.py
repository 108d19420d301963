"""Results that move and survive (#27): relocatable result folders, outputs written whole or not at
all, stop signals that save the state, and a suite that keeps out of the real home."""
import errno
import json
import os
import pwd
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pandas as pd
import pytest
import torch

from quads_search.results import TrialTable
from tests.conftest import run_cli, shared_dir
from tests.test_reliability import _wait_for, sweep_args

METRICS = {"valid_accuracy": 0.5, "accuracy": 0.5, "f1_macro": 0.5, "params_m": 0.01, "gmacs": 0.001,
           "size_mb": 0.01, "size_mb_nominal": 0.01, "bits_avg": 4.0}


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.rglob(".*.tmp"))


@pytest.mark.slow
def test_a_results_folder_moved_elsewhere_gives_the_same_pareto_output(smoke_sweep, tmp_path, tmp_path_factory):
    trials = pd.read_parquet(smoke_sweep / "mixed_precision" / "trials.parquet")
    assert trials["model_path"].notna().any()
    assert all(p.startswith("models/") for p in trials["model_path"].dropna()), "stored relative to the experiment"
    here = tmp_path / "here" / "results"
    shutil.copytree(smoke_sweep, here)
    first = run_cli("pareto", here, "--json")
    assert first.returncode == 0, first.stderr[-3000:]
    outputs = {name: (here / name).read_bytes() for name in ("pareto.parquet", "pareto.html")}
    there = tmp_path / "there" / "moved"
    shutil.move(here, there)
    second = run_cli("pareto", there, "--json")
    assert second.returncode == 0, second.stderr[-3000:]
    front = json.loads(second.stdout)
    assert front and all(row["model_path"].startswith(str(there)) for row in front)
    assert json.loads(second.stdout.replace(str(there), str(here))) == json.loads(first.stdout)
    assert {name: (there / name).read_bytes() for name in outputs} == outputs  # relative paths inside
    for row in front:  # the cards went beside the moved folder's models, not into the folder it came from
        assert (Path(row["model_path"]).parent / "MODEL_CARD.md").is_file()
    original = shared_dir(tmp_path_factory, "smoke-sweep") / "results"
    assert not list(original.rglob("MODEL_CARD.md")), "pareto on a copy wrote into the shared original"


def test_model_paths_resolve_against_where_the_experiment_is_now(tmp_path):
    from quads_search.results import resolve_model_path, stored_model_path

    experiment = tmp_path / "moved" / "mixed_precision"
    model = experiment / "models" / "t1" / "model.safetensors"
    model.parent.mkdir(parents=True)
    model.write_bytes(b"x")
    assert stored_model_path(model, experiment) == "models/t1/model.safetensors"
    assert resolve_model_path("models/t1/model.safetensors", experiment) == str(model)
    # results written before paths were relative: an absolute path from where the folder used to be
    assert resolve_model_path("/gone/mixed_precision/models/t1/model.safetensors", experiment) == str(model)
    assert resolve_model_path(str(model), tmp_path / "elsewhere") == str(model)  # still there: as it is
    assert resolve_model_path(None, experiment) is None


def packed_model(path: Path) -> Path:
    from quads_search.core.export import save_packed

    save_packed(torch.nn.Linear(4, 3), None, path, {"metrics": METRICS, "config": {"name": "t"}, "intents": ["a"],
                                                    "bits": {}, "arch": {}, "num_classes": 3})
    return path


def test_an_export_cut_short_leaves_no_card_without_its_model(tmp_path, monkeypatch):
    from quads_search.commands.pareto import export

    row = pd.DataFrame([{"trial_id": "t1", "experiment": "e", "kind": "searched",
                         "model_path": str(packed_model(tmp_path / "model.safetensors"))}])

    def disk_full(source, target, *args, **kwargs):
        Path(target).write_bytes(Path(source).read_bytes()[:100])  # half-written, then the disk is full
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(shutil, "copy2", disk_full)
    monkeypatch.setattr(shutil, "copyfile", disk_full)
    with pytest.raises(OSError, match="No space left"):
        export(row, {"e": {}}, tmp_path / "export")
    target = tmp_path / "export" / "t1"
    assert not [p.name for p in target.iterdir()] if target.exists() else True  # no card, no torn model, no temp
    monkeypatch.undo()
    export(row, {"e": {}}, tmp_path / "export")
    assert sorted(p.name for p in target.iterdir()) == ["MODEL_CARD.md", "model.safetensors", "model_card.json"]
    assert (target / "model.safetensors").read_bytes() == (tmp_path / "model.safetensors").read_bytes()


def test_a_model_file_cut_short_is_never_left_in_place(tmp_path, monkeypatch):
    import quads_search.core.export as export_module

    path = packed_model(tmp_path / "model.safetensors")
    before = path.read_bytes()

    def killed(tensors, filename, metadata=None):
        Path(filename).write_bytes(b"\x00" * 64)  # torn
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(export_module, "save_file", killed)
    with pytest.raises(OSError):
        packed_model(path)
    assert path.read_bytes() == before and leftovers(tmp_path) == []  # the old file, whole


def test_trials_parquet_writers_never_share_a_temp_file(tmp_path):
    tables = [TrialTable(tmp_path), TrialTable(tmp_path)]
    errors = []

    def write(table: TrialTable, offset: int) -> None:
        try:
            for i in range(25):
                table.record({"trial_id": f"t{offset + i}", "experiment": "e", "status": "finished",
                              "valid_accuracy": 0.5, "model_path": f"models/t{offset + i}/model.safetensors"})
        except Exception as exc:  # noqa: BLE001 - collected and shown
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(t, 100 * n)) for n, t in enumerate(tables)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    tables[0].write_parquet()
    assert len(pd.read_parquet(tmp_path / "trials.parquet")) == 50 and leftovers(tmp_path) == []


@pytest.mark.slow
def test_sigterm_and_sigusr1_stop_a_sweep_as_ctrl_c_does_and_resume_finishes(smoke_cache, smoke_sweep, tmp_path):
    args = [sys.executable, "-m", "quads_search.cli",
            *map(str, sweep_args(tmp_path, smoke_cache, "--num-samples", 3, "--max-concurrent", 1))]
    rows = tmp_path / "mixed_precision" / "rows"
    for signum, resume, done in ((signal.SIGTERM, [], 0), (signal.SIGUSR1, ["--resume"], 1)):
        driver = subprocess.Popen(args + resume, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        _wait_for(lambda: rows.is_dir() and len(list(rows.glob("*.json"))) > done, driver, 300)
        driver.send_signal(signum)
        output, _ = driver.communicate(timeout=120)
        assert driver.returncode == 130, (signum, output[-3000:])
        assert "--resume" in output and "without an interrupt" not in output, output[-3000:]
    out = run_cli(*sweep_args(tmp_path, smoke_cache, "--num-samples", 3, "--max-concurrent", 1), "--resume")
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    trials = pd.read_parquet(tmp_path / "mixed_precision" / "trials.parquet")
    assert len(trials) == 3 and trials["trial_id"].is_unique and (trials["status"] == "finished").all()


def test_the_suite_runs_in_a_home_of_its_own():
    real = Path(pwd.getpwuid(os.getuid()).pw_dir).resolve()
    home = Path.home().resolve()
    assert home != real and not home.is_relative_to(real), "tests would write into the real home"
    for where in ("~/.cache/quads-search", "~/.ray/auth_token"):  # the default cache, Ray's token
        assert not Path(os.path.expanduser(where)).resolve().is_relative_to(real), where
    out = subprocess.run([sys.executable, "-c", "import pathlib; print(pathlib.Path.home())"],
                         capture_output=True, text=True, timeout=60)
    assert Path(out.stdout.strip()).resolve() == home  # and so do the commands the tests start

"""Results that move and survive: relocatable result folders, and trials.parquet written whole by any
number of writers (quads_search/results.py)."""
import json
import shutil
import threading
from pathlib import Path

import pandas as pd
import pytest

from quads_search.results import TrialTable
from tests.conftest import shared_dir
from tests.runner import run_cli


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

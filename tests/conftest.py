"""Shared fixtures: one cache for every test that trains, so the corpus, features and
pre-tuned models are built once per test session (about two minutes), then reused.

The suite runs on two pytest-xdist workers (pyproject's addopts). Both share the cache (its
file locks let one worker build each artefact while the other waits) and one smoke sweep,
which each worker then reads from its own copy, since some tests write into it."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from filelock import FileLock

SPACE = Path(__file__).parents[1] / "search_spaces" / "mixed_precision.yaml"

os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # Ray in tests: loopback only


def pytest_configure(config) -> None:
    """Before xdist starts its workers: the Ray token a first local Ray would write, written once.

    Without it, two workers starting their first local Ray at the same moment could each
    generate and save a different ~/.ray/auth_token."""
    token_set = os.environ.get("RAY_AUTH_TOKEN") or os.environ.get("RAY_AUTH_TOKEN_PATH")
    is_worker = hasattr(config, "workerinput")
    if not is_worker and not token_set and not (Path.home() / ".ray" / "auth_token").exists():
        subprocess.run([sys.executable, "-m", "ray.scripts.scripts", "get-auth-token", "--generate"],
                       capture_output=True, check=True)


def shared_dir(tmp_path_factory, name: str) -> Path:
    """A directory every xdist worker of this test session sees (the session's own without xdist)."""
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent
    path = root / name
    path.mkdir(exist_ok=True)
    return path


@pytest.fixture(scope="session")
def smoke_cache(tmp_path_factory) -> Path:
    return shared_dir(tmp_path_factory, "quads-cache")


@pytest.fixture(scope="session")
def smoke_config(smoke_cache):
    """The shipped space under --smoke, with the session cache."""
    from quads_search.sweep.space import load_sweep

    return load_sweep(SPACE, [f"cache_dir={smoke_cache}"], smoke=True)


@pytest.fixture(scope="session")
def prepared(smoke_config):
    """Corpus, features, pre-tuned teacher and student for the smoke config (cached)."""
    from quads_search.core.run import prepare

    return prepare(smoke_config.run_config(), log=lambda m: None)


def run_cli(*args, timeout=600, env: dict | None = None):
    return subprocess.run([sys.executable, "-m", "quads_search.cli", *map(str, args)], capture_output=True,
                          text=True, timeout=timeout, env=None if env is None else {**os.environ, **env})


@pytest.fixture(scope="session")
def smoke_home(tmp_path_factory) -> Path:
    """A fresh HOME for the shared smoke sweep: the Ray token it creates there is that sweep's own."""
    return shared_dir(tmp_path_factory, "smoke-home")


@pytest.fixture(scope="session")
def smoke_sweep(smoke_cache, smoke_home, tmp_path_factory) -> Path:
    """One real smoke sweep (local Ray, Optuna), shared by the sweep and Pareto tests: run by the
    first worker that needs it, then copied, so that each worker's tests write only into their own."""
    shared = shared_dir(tmp_path_factory, "smoke-sweep") / "results"
    with FileLock(str(shared) + ".lock"):
        if not (shared / "run-output.txt").is_file():  # written last: the sweep finished
            out = run_cli("run", SPACE, "--smoke", "--results-dir", shared, "--set", f"cache_dir={smoke_cache}",
                          env={"HOME": str(smoke_home)})
            assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
            (shared / "run-output.txt").write_text(out.stdout + out.stderr)
    results = tmp_path_factory.mktemp("smoke-sweep") / "results"
    shutil.copytree(shared, results)
    return results

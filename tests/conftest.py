"""Shared fixtures: one cache for every test that trains, so the corpus, features and
pre-tuned models are built once per test session (about a minute), then reused."""
import os
from pathlib import Path

import pytest

SPACE = Path(__file__).parents[1] / "search_spaces" / "mixed_precision.yaml"

os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # Ray in tests: loopback only


@pytest.fixture(scope="session")
def smoke_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("quads-cache")


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
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-m", "quads_search.cli", *map(str, args)], capture_output=True,
                          text=True, timeout=timeout, env=None if env is None else {**os.environ, **env})


@pytest.fixture(scope="session")
def smoke_home(tmp_path_factory) -> Path:
    """A fresh HOME for the shared smoke sweep: the Ray token it creates there is that sweep's own."""
    return tmp_path_factory.mktemp("home")


@pytest.fixture(scope="session")
def smoke_sweep(smoke_cache, smoke_home, tmp_path_factory) -> Path:
    """One real smoke sweep (local Ray, Optuna), shared by the sweep and Pareto tests."""
    results = tmp_path_factory.mktemp("results")
    out = run_cli("run", SPACE, "--smoke", "--results-dir", results, "--set", f"cache_dir={smoke_cache}",
                  env={"HOME": str(smoke_home)})
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    (results / "run-output.txt").write_text(out.stdout + out.stderr)
    return results

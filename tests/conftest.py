"""Shared fixtures: one cache for every test that trains, so the corpus, features and
pre-tuned models are built once per test session (about two minutes), then reused.

The suite runs on two pytest-xdist workers (pyproject's addopts). Both share the cache (its
file locks let one worker build each artefact while the other waits) and one smoke sweep,
which each worker then reads from its own copy, since some tests write into it. The smoke sweep
runs under the unpickle guard (tests/guard): tests/test_safety.py reads what it recorded.

Commands run through tests/runner.py's `run_cli`."""
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from filelock import FileLock

from tests.guard.unpickle_guard import guard_env
from tests.runner import run_cli

SPACE = Path(__file__).parents[1] / "search_spaces" / "mixed_precision.yaml"
SMOKE_CLASSES = 31  # intents of the synthetic corpus

os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # Ray in tests: loopback only
HOME_VARIABLES = ("HOME", "XDG_CACHE_HOME", "XDG_CONFIG_HOME", "XDG_DATA_HOME")
HOME_KEY = pytest.StashKey[tuple]()  # (the session's HOME, the variables it replaced)


def pytest_configure(config) -> None:
    """Before xdist starts its workers (they inherit the environment): a HOME of the session's own,
    so that nothing a test does (Ray's ~/.ray/auth_token, the default ~/.cache/quads-search, a
    Whisper conversion, matplotlib's font cache) lands in the real home; then the Ray token a
    first local Ray would write, written once.

    Without the token, two workers starting their first local Ray at the same moment could each
    generate and save a different ~/.ray/auth_token."""
    if hasattr(config, "workerinput"):
        return
    home = Path(tempfile.mkdtemp(prefix="quads-search-tests-home-"))
    config.stash[HOME_KEY] = (home, {name: os.environ.get(name) for name in HOME_VARIABLES})
    os.environ.update(HOME=str(home), XDG_CACHE_HOME=str(home / ".cache"), XDG_CONFIG_HOME=str(home / ".config"),
                      XDG_DATA_HOME=str(home / ".local" / "share"))
    token_set = os.environ.get("RAY_AUTH_TOKEN") or os.environ.get("RAY_AUTH_TOKEN_PATH")
    if not token_set:
        subprocess.run([sys.executable, "-m", "ray.scripts.scripts", "get-auth-token", "--generate"],
                       capture_output=True, check=True)


def pytest_unconfigure(config) -> None:
    """The session's HOME removed, the real one's variables put back."""
    if HOME_KEY not in config.stash:
        return
    home, before = config.stash[HOME_KEY]
    for name, value in before.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    shutil.rmtree(home, ignore_errors=True)


def shared_dir(tmp_path_factory, name: str) -> Path:
    """A directory every xdist worker of this test session sees (the session's own without xdist)."""
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent
    path = root / name
    path.mkdir(exist_ok=True)
    return path


@pytest.fixture
def quads_logger() -> logging.Logger:
    """The `quads_search` logger, put back as it was after the test: `show_progress` and `to_file`
    change its handlers, level and propagation for the whole process."""
    logger = logging.getLogger("quads_search")
    handlers, level, propagate = logger.handlers[:], logger.level, logger.propagate
    yield logger
    logger.handlers[:] = handlers
    logger.setLevel(level)
    logger.propagate = propagate


@pytest.fixture(scope="session")
def smoke_cache(tmp_path_factory) -> Path:
    """The session's cache; QUADS_SEARCH_TEST_CACHE=DIR keeps one across sessions (entries are keyed and
    checked, so a stale one is rebuilt), which saves its two minutes when running a few tests at a time."""
    kept = os.environ.get("QUADS_SEARCH_TEST_CACHE")
    if kept:
        Path(kept).mkdir(parents=True, exist_ok=True)
        return Path(kept).resolve()
    return shared_dir(tmp_path_factory, "quads-cache")


@pytest.fixture(scope="session")
def smoke_config(smoke_cache):
    """The shipped space under --smoke, with the session cache."""
    from quads_search.sweep.space import load_sweep

    return load_sweep(SPACE, [f"cache_dir={smoke_cache}"], smoke=True)


@pytest.fixture(scope="session")
def prepared(smoke_config):
    """Corpus, features, pre-tuned teacher and student for the smoke config (cached)."""
    from quads_search.core.prepare import prepare

    return prepare(smoke_config.run_config())


@pytest.fixture(scope="session")
def smoke_home(tmp_path_factory) -> Path:
    """A fresh HOME for the shared smoke sweep: the Ray token it creates there is that sweep's own."""
    return shared_dir(tmp_path_factory, "smoke-home")


@pytest.fixture(scope="session")
def smoke_guard_log(tmp_path_factory) -> Path:
    """What the unpickle guard recorded in every process of the smoke sweep (tests/guard)."""
    return shared_dir(tmp_path_factory, "smoke-sweep") / "unpickle-guard.log"


def uniform_size(config, bits: int) -> float:
    """The planned packed size (MiB) of `config`'s student with every quantizable tensor at `bits`."""
    from quads_search.core.planned import uniform_size_mb

    return uniform_size_mb(config.run_config(), bits, SMOKE_CLASSES)


def smoke_budget_mb() -> float:
    """The shared smoke sweep's `search.budget.size_mb`: the uniform 2-bit student's planned size. The fp32
    reference runs over it (marked as over) and few of the sampler's draws fit, so some are rejected."""
    from quads_search.sweep.space import load_sweep

    return uniform_size(load_sweep(SPACE, smoke=True), 2)


@pytest.fixture(scope="session")
def smoke_sweep(smoke_cache, smoke_home, smoke_guard_log, tmp_path_factory) -> Path:
    """One real smoke sweep (local Ray, Optuna) under a hard size budget, shared by the sweep, budget and
    Pareto tests: run by the first worker that needs it, then copied, so that each worker's tests write
    only into their own. Its stdout and stderr are kept in run-output.txt."""
    shared = shared_dir(tmp_path_factory, "smoke-sweep") / "results"
    with FileLock(str(shared) + ".lock"):
        if not (shared / "run-output.txt").is_file():  # written last: the sweep finished
            out = run_cli("run", SPACE, "--smoke", "--results-dir", shared, "--set", f"cache_dir={smoke_cache}",
                          "--set", f"search.budget.size_mb={smoke_budget_mb()!r}", entry_point=True,
                          env={"HOME": str(smoke_home), **guard_env(smoke_guard_log)})
            assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
            (shared / "run-output.txt").write_text(out.stdout + out.stderr)
    results = tmp_path_factory.mktemp("smoke-sweep") / "results"
    shutil.copytree(shared, results)
    return results

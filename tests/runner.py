"""The one way tests run the command line: `run_cli(*args)`.

By default in this process: `quads_search.cli.main([...])` with stdout and stderr captured and
SystemExit turned into the exit code, so a check pays no interpreter start and no second import of
torch, transformers and Ray (about 6 s each time on the CI machine). `entry_point=True` starts
`python -m quads_search.cli` instead, for what only a process of its own shows: a sweep (Ray and
its workers, signals, a kill), the environment a command starts with, what a command imports.
"""
from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
from dataclasses import dataclass


@dataclass(frozen=True)
class Result:
    """What a finished command left: as subprocess.CompletedProcess names it."""

    returncode: int
    stdout: str
    stderr: str


def run_cli(*args, entry_point: bool = False, timeout: float = 600, env: dict | None = None,
            cwd=None) -> Result:
    """`quads-search ARGS` (each argument str()-ed); `env` adds to the environment, `cwd` is where it runs."""
    argv = [str(a) for a in args]
    if entry_point:
        out = subprocess.run([sys.executable, "-m", "quads_search.cli", *argv], capture_output=True, text=True,
                             timeout=timeout, cwd=cwd, env=None if env is None else {**os.environ, **env})
        return Result(out.returncode, out.stdout, out.stderr)
    from quads_search.cli import main

    stdout, stderr = io.StringIO(), io.StringIO()
    with _environment(env or {}), _directory(cwd), contextlib.redirect_stdout(stdout), \
            contextlib.redirect_stderr(stderr):
        try:
            code = main(argv)
        except SystemExit as exc:  # argparse: --help, usage errors
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return Result(code, stdout.getvalue(), stderr.getvalue())


@contextlib.contextmanager
def _environment(extra: dict):
    before = {name: os.environ.get(name) for name in extra}
    os.environ.update({name: str(value) for name, value in extra.items()})
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextlib.contextmanager
def _directory(path):
    if path is None:
        yield
        return
    before = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(before)

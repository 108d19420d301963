"""pyproject.toml admits only dependency versions the suite was run on."""
from __future__ import annotations

from importlib.metadata import version
from pathlib import Path

import tomllib
from packaging.requirements import Requirement
from packaging.version import Version

PYPROJECT = Path(__file__).parents[1] / "pyproject.toml"


def requirement(name: str) -> Requirement:
    """The `[project] dependencies` entry for `name`."""
    dependencies = tomllib.loads(PYPROJECT.read_text())["project"]["dependencies"]
    return next(r for r in map(Requirement, dependencies) if r.name == name)


def test_ray_is_pinned_to_the_tested_minor_series() -> None:
    """Token auth and loopback-only nodes were checked on the installed Ray only: no other minor may install."""
    installed = Version(version("ray"))
    major, minor = installed.release[:2]
    specifier = requirement("ray").specifier
    assert specifier.contains(installed)
    assert not specifier.contains(f"{major}.{minor - 1}.99") and not specifier.contains(f"{major}.{minor + 1}.0")

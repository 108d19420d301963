"""pyproject.toml admits only what the suite was run on, declares what the code imports, and CI installs
the exact versions constraints.txt records."""
from __future__ import annotations

import ast
import re
import sys
from importlib.metadata import packages_distributions, version
from pathlib import Path

import tomllib
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
DEPENDENCIES = [Requirement(r) for r in PYPROJECT["project"]["dependencies"]]
EXTRAS = {name: [Requirement(r) for r in reqs] for name, reqs in PYPROJECT["project"]["optional-dependencies"].items()}
SOURCES = {p: p.read_text() for d in ("quads_search", "trainables") for p in (ROOT / d).rglob("*.py")}
# Where the next minor (not the next major) already changes what the code relies on.
MINOR_SERIES = {"ray", "transformers"}


def requirement(name: str) -> Requirement:
    """The `[project] dependencies` entry for `name`."""
    return next(r for r in DEPENDENCIES if r.name == name)


def test_ray_is_pinned_to_the_tested_minor_series() -> None:
    """Token auth and loopback-only nodes were checked on the installed Ray only: no other minor may install."""
    installed = Version(version("ray"))
    major, minor = installed.release[:2]
    specifier = requirement("ray").specifier
    assert specifier.contains(installed)
    assert not specifier.contains(f"{major}.{minor - 1}.99") and not specifier.contains(f"{major}.{minor + 1}.0")


def test_requires_python_is_the_python_ci_runs() -> None:
    """The suite reads TOML with tomllib (3.11+) and CI runs one Python minor: no other may install."""
    specifier = SpecifierSet(PYPROJECT["project"]["requires-python"])
    major, minor = sys.version_info[:2]
    assert specifier.contains(f"{major}.{minor}.0")
    assert not specifier.contains("3.10.0"), "tests/test_dependencies.py imports tomllib, new in 3.11"
    assert not specifier.contains(f"{major}.{minor - 1}.99") and not specifier.contains(f"{major}.{minor + 1}.0")


def test_every_dependency_range_starts_at_the_tested_version_and_stays_in_its_major() -> None:
    """No range reaches below the version CI installed, nor into an API generation nobody ran (the next
    major; the next minor for 0.x releases and for MINOR_SERIES)."""
    for req in DEPENDENCIES:
        installed = Version(version(req.name))
        major, minor = installed.release[:2]
        below = f"{major}.{minor - 1}.9999" if minor else f"{major - 1}.9999"
        series = req.name in MINOR_SERIES or major == 0
        beyond = f"{major}.{minor + 1}.0" if series else f"{major + 1}.0"
        assert req.specifier.contains(installed), (req, installed)
        assert not req.specifier.contains(below), f"{req} admits {below}, older than the tested {installed}"
        assert not req.specifier.contains(beyond), f"{req} admits {beyond}, beyond the tested {installed}"


def _third_party_imports() -> dict[str, Path]:
    """Top-level names of every module imported by the package that is neither stdlib nor its own."""
    found = {}
    for path, text in SOURCES.items():
        for node in ast.walk(ast.parse(text)):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module] if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module
                     else [])
            for name in names:
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top not in ("quads_search", "trainables"):
                    found.setdefault(top, path)
    return found


def test_every_imported_distribution_is_declared() -> None:
    declared = {canonicalize_name(r.name) for r in DEPENDENCIES}
    declared |= {canonicalize_name(r.name) for reqs in EXTRAS.values() for r in reqs}
    owners = packages_distributions()
    for module, path in _third_party_imports().items():
        distributions = {canonicalize_name(d) for d in owners.get(module, [module])}
        assert distributions & declared, f"{path.relative_to(ROOT)} imports {module} ({distributions}): not declared"


def test_no_private_optuna_api_is_used() -> None:
    """A module that uses Optuna reaches no `_name` of another object: only its own (`self._...`; the
    OptunaSearch attributes `_ot_study` and `_ot_trials` are Ray's, pinned to its tested minor series)."""
    for path, text in SOURCES.items():
        if not re.search(r"^\s*(import optuna|from optuna)", text, re.M):
            continue
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
                owner = node.value.id if isinstance(node.value, ast.Name) else None
                assert owner in ("self", "cls"), f"{path.relative_to(ROOT)}:{node.lineno} uses .{node.attr}"


def _constraints() -> dict[str, Version]:
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            req = Requirement(line)
            (spec,) = req.specifier
            assert spec.operator == "==", f"constraints.txt: {line} is no exact pin"
            pins[canonicalize_name(req.name)] = Version(spec.version)
    return pins


def test_constraints_pin_every_direct_and_test_dependency_as_installed() -> None:
    pins = _constraints()
    wanted = DEPENDENCIES + [r for r in EXTRAS["dev"] if canonicalize_name(r.name) != "quads-search"]
    wanted += [r for extra in re.findall(r"quads-search\[(\w+)\]", " ".join(map(str, EXTRAS["dev"])))
               for r in EXTRAS[extra]]
    for req in wanted:
        name = canonicalize_name(req.name)
        assert name in pins, f"constraints.txt does not pin {req.name}"
        assert req.specifier.contains(pins[name]), f"constraints.txt pins {req.name}=={pins[name]} outside {req}"
    for name, pinned in pins.items():
        assert Version(version(name)) == pinned, f"{name} {version(name)} is installed, constraints.txt says {pinned}"


def test_ci_installs_with_readme_set_up_command() -> None:
    readme = (ROOT / "README.md").read_text()
    setup = re.search(r"## Set up.*?```bash\n(.*?)\n```", readme, re.S).group(1).strip()
    ci = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines() if "pip install" in line]
    assert setup == 'pip install -e ".[dev]" -c constraints.txt'
    assert ci == [f"python -m {setup}"]

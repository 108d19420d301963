"""A run-time check that the code under test never unpickles nor loads YAML unsafely.

Installed in a process (`install`; in every process of a command started with `guard_env`, through
this folder's sitecustomize.py), it wraps what would deserialise arbitrary objects:

  torch.load, numpy.load(allow_pickle=True), pandas.read_pickle, yaml.load with an unsafe Loader,
  yaml.full_load / unsafe_load (and their *_all): wrong whoever calls them (a transformers
  `from_pretrained` that falls back to pytorch_model.bin calls torch.load);
  pickle.load / pickle.loads, and any Unpickler resolving a class (the `pickle.find_class` audit
  event): wrong when called from quads_search/ or trainables/ (Ray pickles its own messages).

A call is written to the log (one line, with the caller) and refused with a RuntimeError. The log
also gets one `installed` line per process, so a test can tell that the check ran where it meant it to:
in the driver and in every Ray worker, which inherit PYTHONPATH and the log variable.
"""
from __future__ import annotations

import functools
import importlib.abc
import os
import sys
from pathlib import Path

LOG_VARIABLE = "QUADS_TEST_UNPICKLE_LOG"
ROOT = Path(__file__).resolve().parents[2]
PROJECT = tuple(str(ROOT / name) + os.sep for name in ("quads_search", "trainables"))
SAFE_YAML_LOADERS = ("SafeLoader", "CSafeLoader", "BaseLoader", "CBaseLoader")

_log: Path | None = None


def _project_frame(depth: int):
    """The frame `depth` levels above the caller if it runs project code, else None."""
    frame = sys._getframe(depth + 1)
    return frame if frame.f_code.co_filename.startswith(PROJECT) else None


def _where(depth: int) -> str:
    frame = sys._getframe(depth + 1)
    return f"{frame.f_code.co_filename}:{frame.f_lineno}"


def _violation(what: str, where: str) -> None:
    line = f"VIOLATION pid {os.getpid()}: {what} called from {where}"
    _append(line)
    raise RuntimeError(f"unpickle guard: {what} called from {where}")


def _append(line: str) -> None:
    if _log is not None:
        with open(_log, "a") as log:  # one short write a line: appends from many processes stay whole
            log.write(line + "\n")


def violations(log: Path) -> list[str]:
    return [line for line in log.read_text().splitlines() if line.startswith("VIOLATION")] if log.is_file() else []


def installed(log: Path) -> list[str]:
    return [line for line in log.read_text().splitlines() if line.startswith("installed")] if log.is_file() else []


# -- wrappers ----------------------------------------------------------------------------------
def _refused(name: str, original):
    @functools.wraps(original)
    def refused(*args, **kwargs):
        _violation(name, _where(1))
        return original(*args, **kwargs)  # pragma: no cover - _violation raises

    refused.__unpickle_guard__ = True
    return refused


def _from_project(name: str, original):
    @functools.wraps(original)
    def checked(*args, **kwargs):
        if _project_frame(1):
            _violation(name, _where(1))
        return original(*args, **kwargs)

    checked.__unpickle_guard__ = True
    return checked


def _yaml_load(original):
    @functools.wraps(original)
    def load(stream, Loader=None, *args, **kwargs):  # noqa: N803 - PyYAML's own keyword
        if getattr(Loader, "__name__", None) not in SAFE_YAML_LOADERS:
            _violation(f"yaml.load(Loader={getattr(Loader, '__name__', Loader)})", _where(1))
        return original(stream, Loader, *args, **kwargs)

    load.__unpickle_guard__ = True
    return load


def _numpy_load(original):
    @functools.wraps(original)
    def load(*args, **kwargs):
        if kwargs.get("allow_pickle") or (len(args) > 2 and args[2]):
            _violation("numpy.load(allow_pickle=True)", _where(1))
        return original(*args, **kwargs)

    load.__unpickle_guard__ = True
    return load


def _patches(module_name: str, module) -> list[tuple[object, str, object]]:
    """(owner, attribute, replacement) for one module."""
    if module_name == "pickle":
        return [(module, name, _from_project(f"pickle.{name}", getattr(module, name))) for name in ("load", "loads")]
    if module_name == "torch":
        wrapped = _refused("torch.load", module.load)
        return [(module, "load", wrapped), (module.serialization, "load", wrapped)]
    if module_name == "yaml":
        out = [(module, "load", _yaml_load(module.load))]
        return out + [(module, name, _refused(f"yaml.{name}", getattr(module, name)))
                      for name in ("full_load", "full_load_all", "unsafe_load", "unsafe_load_all", "load_all")]
    if module_name == "numpy":
        return [(module, "load", _numpy_load(module.load))]
    if module_name == "pandas":
        return [(module, "read_pickle", _refused("pandas.read_pickle", module.read_pickle))]
    return []


WATCHED = ("pickle", "torch", "yaml", "numpy", "pandas")


def _apply(module_name: str, module, undo: list | None = None) -> None:
    for owner, attribute, replacement in _patches(module_name, module):
        if getattr(getattr(owner, attribute), "__unpickle_guard__", False):
            continue
        if undo is not None:
            undo.append((owner, attribute, getattr(owner, attribute)))
        setattr(owner, attribute, replacement)


class _PatchOnImport(importlib.abc.MetaPathFinder):
    """Patches a watched module right after it is first imported (torch is not imported at start-up)."""

    def find_spec(self, name, path, target=None):
        if name not in WATCHED:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None:
                break
        else:
            return None
        loader = spec.loader
        if loader is None or not hasattr(loader, "exec_module"):
            return spec
        original = loader.exec_module

        def exec_module(module):
            original(module)
            _apply(name, module)

        loader.exec_module = exec_module
        return spec


_armed = False


def _audit(event: str, args) -> None:
    if _armed and event == "pickle.find_class" and _project_frame(1):
        _violation(f"an Unpickler resolving {args[0]}.{args[1]}", _where(1))


def install(log: Path) -> None:
    """Guard this process for good (a subprocess of a test), logging to `log`."""
    global _log, _armed
    _log, _armed = Path(log), True
    sys.addaudithook(_audit)
    for name in WATCHED:
        if name in sys.modules:
            _apply(name, sys.modules[name])
    sys.meta_path.insert(0, _PatchOnImport())
    _append(f"installed pid {os.getpid()}: {' '.join(sys.orig_argv)[:300]}")


_hook_added = False


def guard_in_process(log: Path):
    """Guard this (test) process until the returned `undo()` is called; watched modules are imported now."""
    global _log, _armed, _hook_added
    import importlib

    _log, _armed = Path(log), True
    if not _hook_added:  # audit hooks cannot be removed: added once, then armed and disarmed
        sys.addaudithook(_audit)
        _hook_added = True
    undo: list = []
    for name in WATCHED:
        _apply(name, importlib.import_module(name), undo)
    _append(f"installed pid {os.getpid()}: in-process")

    def restore() -> None:
        global _armed
        _armed = False
        for owner, attribute, original in reversed(undo):
            setattr(owner, attribute, original)

    return restore


def guard_env(log: Path) -> dict[str, str]:
    """Environment variables that guard every Python process a command starts (Ray workers included)."""
    here = str(Path(__file__).parent)
    path = os.environ.get("PYTHONPATH")
    return {"PYTHONPATH": here + (os.pathsep + path if path else ""), LOG_VARIABLE: str(log)}

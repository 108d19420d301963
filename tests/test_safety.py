"""Nothing is unpickled, no YAML is loaded unsafely, no shell command is built (#27's loading rules).

Checked twice: at run time, by the unpickle guard (tests/guard) in every process of a real sweep and
around `pareto` and `evaluate`; and in the source, on its syntax tree, for code the tests never run."""
from __future__ import annotations

import ast
import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from tests.guard.unpickle_guard import guard_env, guard_in_process, installed, violations
from tests.runner import run_cli

ROOT = Path(__file__).parents[1]
SOURCES = {p: p.read_text() for d in ("quads_search", "trainables") for p in sorted((ROOT / d).rglob("*.py"))}


# -- at run time ---------------------------------------------------------------------------------
@pytest.mark.slow
def test_a_sweep_unpickles_nothing_in_its_driver_and_its_ray_workers(smoke_sweep, smoke_guard_log):
    processes = installed(smoke_guard_log)
    assert any("quads_search.cli run" in line for line in processes), processes  # the driver
    assert any("default_worker.py" in line for line in processes), processes  # the Ray workers that ran trials
    assert violations(smoke_guard_log) == []


@pytest.mark.slow
def test_pareto_export_and_evaluate_unpickle_nothing(smoke_sweep, tmp_path):
    log = tmp_path / "guard.log"
    restore = guard_in_process(log)
    try:
        out = run_cli("pareto", smoke_sweep, "--json", "--export", tmp_path / "ship")
        assert out.returncode == 0, out.stderr[-3000:]
        models = sorted((tmp_path / "ship").glob("*/model.safetensors"))
        assert models, "the front was exported"
        evaluated = run_cli("evaluate", models[0], "--json")
        assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    finally:
        restore()
    assert installed(log) and violations(log) == []


def test_the_guard_refuses_what_would_unpickle(tmp_path):
    """The guard itself: refused calls are logged and raise; Ray-style callers of pickle stay free."""
    log = tmp_path / "guard.log"
    torch.save({"w": torch.zeros(1)}, tmp_path / "w.pt")
    project_caller = compile("import pickle\npickle.loads(DATA)\n", str(ROOT / "quads_search" / "any.py"), "exec")
    restore = guard_in_process(log)
    try:
        with pytest.raises(RuntimeError, match="torch.load"):
            torch.load(tmp_path / "w.pt")
        with pytest.raises(RuntimeError, match="yaml.full_load"):
            yaml.full_load("a: 1")
        with pytest.raises(RuntimeError, match=r"yaml.load\(Loader=Loader\)"):
            yaml.load("a: 1", Loader=yaml.Loader)  # the unsafe loader: refused
        assert yaml.safe_load("a: 1") == {"a": 1}
        assert pickle.loads(pickle.dumps([1])) == [1]  # a library's own messages (Ray's): allowed
        with pytest.raises(RuntimeError, match="pickle.loads"):
            exec(project_caller, {"DATA": pickle.dumps([1])})  # code compiled as a project file's
    finally:
        restore()
    assert len(violations(log)) == 4 and torch.load.__name__ == "load"
    assert torch.load(tmp_path / "w.pt")["w"].shape == (1,)  # restored


def test_the_guard_reaches_a_process_a_command_starts(tmp_path):
    log = tmp_path / "guard.log"
    (tmp_path / "w.pt").write_bytes(b"")
    probe = f"import torch; torch.load({str(tmp_path / 'w.pt')!r})"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120,
                         env={**os.environ, **guard_env(log)})
    assert out.returncode != 0 and "unpickle guard: torch.load" in out.stderr, out.stderr[-2000:]
    assert len(installed(log)) == 1 and len(violations(log)) == 1


# -- in the source -------------------------------------------------------------------------------
UNPICKLING_MODULES = {"pickle", "_pickle", "cPickle", "cloudpickle", "dill", "shelve", "marshal", "joblib"}
UNSAFE_YAML = {"load", "load_all", "full_load", "full_load_all", "unsafe_load", "unsafe_load_all"}
CONFIG_CLASSES = ("Config", "FeatureExtractor", "Tokenizer", "TokenizerFast", "Processor")  # JSON files only


def dotted(node: ast.AST) -> str:
    """`a.b.c` for a Name/Attribute chain, else ''."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = dotted(node.value)
        return f"{base}.{node.attr}" if base else ""
    return ""


def problems(tree: ast.AST) -> list[str]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [f"line {node.lineno}: import {a.name}" for a in node.names if a.name.split(".")[0] in UNPICKLING_MODULES]
        elif isinstance(node, ast.ImportFrom) and node.module:
            top = node.module.split(".")[0]
            names = {a.name for a in node.names}
            if top in UNPICKLING_MODULES or (top == "torch" and "load" in names) or \
                    (top == "yaml" and names & UNSAFE_YAML) or (top in ("numpy", "pandas") and "read_pickle" in names):
                found.append(f"line {node.lineno}: from {node.module} import {', '.join(sorted(names))}")
        elif isinstance(node, ast.Call):
            found += call_problems(node)
    return found


def call_problems(call: ast.Call) -> list[str]:
    name = dotted(call.func)
    keywords = {k.arg: k.value for k in call.keywords}
    where = f"line {call.lineno}: {name or ast.unparse(call.func)}(...)"
    out = []
    if name in ("eval", "exec", "os.system", "os.popen", "torch.load", "torch.serialization.load",
                "pd.read_pickle", "pandas.read_pickle"):
        out.append(where)
    if isinstance(keywords.get("shell"), ast.Constant) and keywords["shell"].value is not False:
        out.append(f"{where} with shell=True")
    if name.split(".")[0] == "yaml" and name.split(".")[-1] in UNSAFE_YAML:
        loader = keywords.get("Loader", call.args[1] if len(call.args) > 1 else None)
        safe_loader = loader is not None and dotted(loader).split(".")[-1] in ("SafeLoader", "CSafeLoader")
        if not (name.endswith(".load") and safe_loader):
            out.append(where)
    if name.split(".")[-1] == "load" and name.split(".")[0] in ("np", "numpy"):
        allow = keywords.get("allow_pickle")
        if allow is not None and not (isinstance(allow, ast.Constant) and allow.value is False):
            out.append(f"{where} with allow_pickle")
    if name.endswith(".from_pretrained") and not name.split(".")[-2].endswith(CONFIG_CLASSES):
        spread = [k.value for k in call.keywords if k.arg is None]  # **load_options(...)
        flag = keywords.get("use_safetensors")
        safe = (isinstance(flag, ast.Constant) and flag.value is True) or \
            any(isinstance(s, ast.Call) and dotted(s.func).endswith("load_options") for s in spread)
        if not safe:
            out.append(f"{where} without use_safetensors=True (it would unpickle a pytorch_model.bin)")
    return out


def test_the_source_never_unpickles_loads_yaml_unsafely_evaluates_or_builds_shell_commands():
    assert len(SOURCES) > 50
    found = {str(path.relative_to(ROOT)): p for path, text in SOURCES.items() if (p := problems(ast.parse(text)))}
    assert found == {}


@pytest.mark.parametrize("snippet", [
    "import pickle", "from pickle import loads", "import cloudpickle as cp", "from torch import load",
    "torch.load(path)", "x = torch.serialization.load(f)", "yaml.load(text)", "yaml.load(text, Loader=yaml.Loader)",
    "yaml.full_load(text)", "yaml.unsafe_load(text)", "from yaml import full_load", "np.load(p, allow_pickle=True)",
    "pd.read_pickle(p)", "eval(text)", "exec(code)", "os.system(cmd)", "subprocess.run(cmd, shell=True)",
    "WhisperForConditionalGeneration.from_pretrained(path)",
    "WhisperForAudioClassification.from_pretrained(path, local_files_only=True)",
])
def test_the_source_check_finds_each_way_to_unpickle(snippet):
    assert problems(ast.parse(snippet)), snippet


@pytest.mark.parametrize("snippet", [
    "yaml.safe_load(text)", "yaml.load(text, Loader=yaml.SafeLoader)", "np.load(p, mmap_mode='r')", "model.eval()",
    "WhisperConfig.from_pretrained(path)", "M.from_pretrained(path, **load_options(name))",
    "M.from_pretrained(path, use_safetensors=True)", "subprocess.run(['ls'])",
])
def test_the_source_check_lets_safe_loading_pass(snippet):
    assert problems(ast.parse(snippet)) == [], snippet

"""The house plan holds: imports run one way (no cycles), Ray stays inside the sweep package, and no
signature outgrows seven parameters."""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).parents[1]
PACKAGES = ("quads_search", "trainables")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for package in PACKAGES for p in (ROOT / package).rglob("*.py")}


def _runtime_imports(tree: ast.AST) -> list[ast.stmt]:
    """Every import statement, at any depth, except those under `if TYPE_CHECKING:`."""
    for node in list(ast.walk(tree)):  # first: ast.walk queues a node's children before yielding it
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            node.body = []
    return [node for node in ast.walk(tree) if isinstance(node, (ast.Import, ast.ImportFrom))]


def imports_of(name: str) -> set[str]:
    """The modules `name` imports: `from a import b` is module `a.b` when that is a module, else `a`."""
    out = set()
    for node in _runtime_imports(ast.parse(MODULES[name].read_text())):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif node.module:
            out.update(f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in MODULES else node.module
                       for a in node.names)
    return out


GRAPH = {name: {m for m in imports_of(name) if m in MODULES} for name in MODULES}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)):
            return cycle
    return None


def reachable(start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for nxt in GRAPH[todo.pop()] - seen:
            seen.add(nxt)
            todo.append(nxt)
    return seen


def imports_ray(name: str) -> bool:
    return any(m == "ray" or m.startswith("ray.") for m in imports_of(name))


def test_the_package_has_no_import_cycle():
    assert find_cycle(GRAPH) is None, " -> ".join(find_cycle(GRAPH))


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]


def test_ray_is_imported_in_the_sweep_package_only():
    importers = sorted(name for name in MODULES if imports_ray(name))
    assert importers and all(name.startswith("quads_search.sweep.") for name in importers), importers
    ray_free = ("", ".space", ".params", ".references", ".samplers", ".seeding", ".budget", ".stopping")
    assert not [m for m in ray_free if imports_ray("quads_search.sweep" + m)]


ABOVE_THE_CORE = ("sweep", "commands", "cli", "__main__")  # the only parts that may reach Ray (through sweep)


def top_part(name: str) -> str:
    """`quads_search.core.run` -> `core`; `quads_search` itself -> `""`; trainables -> `trainables`."""
    parts = name.split(".")
    return parts[1] if parts[0] == "quads_search" and len(parts) > 1 else ("" if parts[0] == "quads_search" else parts[0])


def test_every_part_below_the_sweep_never_reaches_ray():
    ray_modules = {name for name in MODULES if imports_ray(name)}
    below = [name for name in MODULES if top_part(name) not in (*ABOVE_THE_CORE, "trainables")]
    assert {top_part(n) for n in below} >= {"config", "data", "quant", "core", "pareto", "deploy", "whisper", "results"}
    for name in below:
        assert not reachable(name) & ray_modules, (name, reachable(name) & ray_modules)


def test_config_is_the_bottom_layer():
    allowed = ("quads_search.config", "quads_search.errors", "quads_search.metrics")
    for name in MODULES:
        if name.startswith("quads_search.config"):
            above = sorted(m for m in reachable(name) if not m.startswith(allowed))
            assert not above, (name, above)


def test_help_and_pareto_load_neither_torch_nor_ray():
    # `quads-search --help` and `pareto` start in well under a second: they must not import the
    # training stack (torch alone takes ~2 s, with transformers ~6 s), nor the optional `onnx`
    # extra (only `export`, `evaluate model.onnx` and `pareto --export --onnx` use it).
    import subprocess
    import sys

    probe = ("import sys; from quads_search.cli import build_parser; build_parser(['pareto']); "
             "import quads_search.pareto.plots, quads_search.pareto.cards; "
             "print(sorted(m for m in ('torch', 'transformers', 'ray', 'onnx', 'onnxruntime') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[]"


def test_onnx_is_imported_only_by_the_deploy_package():
    # `onnx` and `onnxruntime` are an optional extra: the commands reach them lazily, inside functions.
    importers = sorted(name for name in MODULES
                       if any(m.split(".")[0] in ("onnx", "onnxruntime") for m in imports_of(name)))
    assert importers and all(name.startswith("quads_search.deploy.") for name in importers), importers


def test_the_onnx_graph_is_built_without_torch():
    # An export needs safetensors, numpy and onnx only; running it needs onnxruntime only.
    import subprocess
    import sys

    probe = ("import sys; import quads_search.deploy.onnx_export, quads_search.deploy.runtime; "
             "print(sorted(m for m in ('torch', 'transformers', 'ray') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[]"


MAX_PARAMETERS = 7  # past this, a signature wants a small parameter object


def parameter_count(node: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    """Parameters a caller passes: every kind, `self` and `cls` not counted."""
    a = node.args
    names = [p.arg for p in (*a.posonlyargs, *a.args)]
    count = len(names) + len(a.kwonlyargs) + (a.vararg is not None) + (a.kwarg is not None)
    return count - (1 if names and names[0] in ("self", "cls") else 0)


def test_no_function_takes_more_than_seven_parameters():
    long = [f"{module}.{node.name} ({parameter_count(node)})" for module, path in MODULES.items()
            for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and parameter_count(node) > MAX_PARAMETERS]
    assert long == []


def test_the_parameter_count_sees_every_kind_of_parameter():
    (node,) = ast.parse("def f(self, a, /, b, *args, c, **kw): pass").body
    assert parameter_count(node) == 5


def test_imports_under_type_checking_are_left_out():
    tree = ast.parse("import a\nif TYPE_CHECKING:\n    import b\n    from c import d\n")
    assert [n.names[0].name for n in _runtime_imports(tree)] == ["a"]

"""The package's layers: imports flow downward only, and no import cycle exists.

The layers are documented in docs/architecture.md. The test reads every module's
source (module-level *and* function-level imports), so a lazy import inside a
function cannot hide an upward dependency.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import physiosync

PACKAGE_DIR = Path(physiosync.__file__).parent

#: Lowest first. A module may import from its own layer and the layers below it.
LAYERS = (
    ("foundation", ("physiosync._version", "physiosync.exceptions", "physiosync._logging",
                    "physiosync._utils", "physiosync._signals")),
    ("parameters", ("physiosync.params", "physiosync.dataset_specs",
                    "physiosync.pipeline_specs")),
    ("configuration", ("physiosync.config",)),
    ("data", ("physiosync.datasets",)),
    ("data products", ("physiosync.synthetic", "physiosync.preprocessing")),
    ("models", ("physiosync.models",)),
    ("training", ("physiosync.training",)),
    ("evaluation", ("physiosync.estimators", "physiosync.evaluation")),
    ("reporting", ("physiosync.reporting",)),
    ("orchestration", ("physiosync.runfolder", "physiosync.execution", "physiosync.experiment")),
    ("interface", ("physiosync.cli", "physiosync.__main__")),
)


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PACKAGE_DIR.rglob("*.py"))}


def _imports(name: str, path: Path, known) -> set[str]:
    """physiosync modules that *name* imports, resolved to the deepest known module."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[:len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            # ``from pkg import submodule`` imports the submodule
            targets = [f"{module}.{a.name}" if f"{module}.{a.name}" in known else module
                       for a in node.names]
        else:
            continue
        found.update(t for t in targets if t.split(".")[0] == "physiosync" and t != name)
    return found


def _layer(module: str) -> int:
    for rank, (_, prefixes) in enumerate(LAYERS):
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return rank
    return -1


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(name, path, modules) for name, path in modules.items()}


def test_every_module_has_a_layer():
    unplaced = [m for m in _modules() if m != "physiosync" and _layer(m) < 0]
    assert not unplaced, f"modules outside the declared layers: {unplaced}"


def test_no_module_imports_from_a_higher_layer():
    upward = [f"{m} ({LAYERS[_layer(m)][0]}) imports {t} ({LAYERS[_layer(t)][0]})"
              for m, targets in _graph().items() if m != "physiosync"
              for t in sorted(targets) if _layer(t) > _layer(m)]
    assert not upward, "upward imports:\n" + "\n".join(upward)


def test_no_import_cycle():
    graph = _graph()
    # Tarjan's strongly connected components
    index, low, stack, on_stack, cycles = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in graph:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    assert not cycles, f"import cycles: {cycles}"


def test_the_checker_sees_function_level_and_relative_imports(tmp_path):
    # The graph above is only as good as _imports: check it on a known snippet.
    fake = tmp_path / "physiosync" / "evaluation" / "runner.py"
    fake.parent.mkdir(parents=True)
    fake.write_text("from ..training import pretrain\n"
                    "def f():\n    from ..reporting.report import build_report\n")
    known = {"physiosync.training.pretrain", "physiosync.reporting.report"}
    assert _imports("physiosync.evaluation.runner", fake, known) == known
    assert _layer("physiosync.reporting.report") > _layer("physiosync.evaluation.runner")


@pytest.mark.parametrize("statement", [
    "import physiosync",
    "import physiosync.config as c; c.load_config('tiny')",
    "import physiosync.params",
    "import physiosync.dataset_specs",
    "import physiosync.pipeline_specs",
    "import physiosync.datasets",
])
def test_light_imports_do_not_load_torch(statement):
    code = f"import sys; {statement}; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "False", f"{statement!r} imported torch"

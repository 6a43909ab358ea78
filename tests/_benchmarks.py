"""The scripts of benchmarks/ loaded as modules, for the tests that check them or reuse
their helpers (benchmarks/ is not a package, so they cannot be imported by name)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def load_benchmark(name: str) -> ModuleType:
    """Execute ``benchmarks/<name>.py`` afresh and return it as a module.

    Each call runs the script's top level again (a test that patches what the script
    imports gets its own copy); the module is not entered in ``sys.modules``.
    """
    spec = importlib.util.spec_from_file_location(f"benchmark_{name}",
                                                  BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module

"""The top-level namespace: lazy exports, ``dir()`` and a torch-free ``import physiosync``."""

from __future__ import annotations

import subprocess
import sys

import pytest

import physiosync


def test_every_exported_name_resolves_and_is_listed_by_dir():
    listed = dir(physiosync)
    for name in physiosync.__all__:
        assert name in listed
        assert getattr(physiosync, name) is not None
    for name in physiosync._SUBMODULES:
        assert name in listed


def test_lazy_exports_are_the_submodules_objects():
    from physiosync.config import load_config
    from physiosync.datasets import open_dataset
    from physiosync.estimators import PhysioSyncClassifier

    assert physiosync.open_dataset is open_dataset
    assert physiosync.load_config is load_config
    assert physiosync.PhysioSyncClassifier is PhysioSyncClassifier
    with pytest.raises(AttributeError, match="no attribute 'make_folds'"):
        physiosync.make_folds  # noqa: B018 (evaluation functions stay in their submodule)


def test_opening_a_dataset_from_the_top_level_does_not_load_torch():
    code = ("import sys, physiosync; from physiosync import open_dataset; "
            "print(callable(open_dataset), 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "True False"


def test_every_exception_class_is_exported_at_the_top_level():
    import physiosync.exceptions as exceptions

    assert exceptions.__all__, "exceptions.__all__ is empty"
    for name in exceptions.__all__:
        assert name in physiosync.__all__, name
        assert getattr(physiosync, name) is getattr(exceptions, name)
        assert issubclass(getattr(exceptions, name), exceptions.PhysioSyncError)


def test_no_docstring_keeps_an_unfilled_placeholder():
    # ``%(name)s`` lines are filled by physiosync._utils.docs.fill_doc (the verbose
    # decorator applies it); one left over means a missing @fill_doc.
    import importlib
    import inspect
    import pkgutil

    from physiosync._utils.docs import _PLACEHOLDER

    left = []
    for info in pkgutil.walk_packages(physiosync.__path__, "physiosync."):
        if info.name.endswith("__main__"):
            continue
        module = importlib.import_module(info.name)
        for name, obj in vars(module).items():
            if getattr(obj, "__module__", None) != module.__name__:
                continue
            members = [obj] + ([m for m in vars(obj).values() if callable(m)]
                               if inspect.isclass(obj) else [])
            for member in members:
                if _PLACEHOLDER.search(inspect.getdoc(member) or ""):
                    left.append(f"{module.__name__}.{name}")
    assert not left, f"unfilled docstring placeholders in {sorted(set(left))}"

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

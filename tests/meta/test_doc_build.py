"""The documentation site (doc/) builds with warnings as errors and every cross-reference
resolved (Sphinx's nitpicky mode): the API reference of every public name, the guides and
the changelog. The dummy builder resolves every reference without writing HTML; the HTML
build is ``sphinx-build -b html doc doc/_build/html`` (README.md)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_the_documentation_builds_without_a_warning_or_an_unresolved_name(tmp_path):
    # a copy, so that the build's generated pages (doc/generated, doc/api.rst, doc/guide)
    # are not written into the checkout
    shutil.copytree(ROOT / "doc", tmp_path / "doc",
                    ignore=shutil.ignore_patterns("_build", "generated", "guide", "api.rst"))
    shutil.copytree(ROOT / "docs", tmp_path / "docs")
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    # the gallery's pages without running its examples (test_every_example_runs does,
    # out of CI); the HTML build runs them
    done = subprocess.run(
        [sys.executable, "-m", "sphinx", "-E", "-q", "-n", "-W", "--keep-going", "-b",
         "dummy", "-D", "plot_gallery=0", "-d", str(tmp_path / "doctrees"),
         str(tmp_path / "doc"), str(tmp_path / "out")], capture_output=True, text=True,
        timeout=600)
    assert done.returncode == 0, done.stderr[-6000:]
    api = (tmp_path / "doc" / "api.rst").read_text()
    # the reference is written from the public modules: a few names from each layer
    for name in ("open_dataset", "PhysioSyncClassifier", "make_seed_iv", "make_windows",
                 "cross_validate", "make_folds", "write_report", "ProcessExecutor"):
        assert f"\n   {name}\n" in api, name
    assert len(list((tmp_path / "doc" / "generated").glob("*.rst"))) > 200
    gallery = {p.stem for p in (tmp_path / "doc" / "auto_examples").glob("plot_*.rst")}
    assert gallery == {p.stem for p in (ROOT / "examples").glob("plot_*.py")}


EXAMPLES = sorted((ROOT / "examples").glob("plot_*.py"))


@pytest.mark.slow
@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.stem)
def test_every_example_runs(example, tmp_path):
    """Each gallery example runs as a script (1-13 s each here; the HTML build runs them
    all, about 30 s of its 81 s)."""
    done = subprocess.run([sys.executable, str(example)], capture_output=True, text=True,
                          cwd=tmp_path, timeout=600, env={**os.environ, "MPLBACKEND": "Agg"})
    assert done.returncode == 0, done.stderr[-4000:]

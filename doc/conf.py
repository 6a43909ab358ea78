"""Sphinx configuration of physiosync's documentation site.

Build it (no network needed: the intersphinx inventories are stored in ``doc/_inv``)::

    pip install -e '.[docs]'
    sphinx-build -W -n -b html doc doc/_build/html

The user guide is the Markdown in ``docs/`` (copied to ``doc/guide/``), read by MyST.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import physiosync  # noqa: E402

# The API reference is written from the public modules' __all__ (doc/_api.py).
sys.path.insert(0, str(HERE))
import _api  # noqa: E402

_api.write(HERE / "api.rst")

# The user guide is docs/*.md, copied here at each build (doc/guide/ is not tracked): a
# symbolic link made MyST resolve the guides' links between each other from docs/, outside
# the source tree.
GUIDE = HERE / "guide"
GUIDE.mkdir(exist_ok=True)
for _page in sorted((HERE.parent / "docs").glob("*.md")):
    _copy = GUIDE / _page.name
    if not _copy.is_file() or _copy.read_bytes() != _page.read_bytes():
        _copy.write_bytes(_page.read_bytes())
import physiosync.exceptions  # noqa: E402

project = "physiosync"
author = "the physiosync developers"
copyright = "2026, the physiosync developers"
release = physiosync.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.intersphinx",
    "sphinx.ext.viewcode",
    "numpydoc",
    "myst_parser",
    "sphinx_gallery.gen_gallery",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "generated/*.examples", "auto_examples/*.ipynb",
                    "auto_examples/*.py", "auto_examples/*.zip", "auto_examples/*.json",
                    "auto_examples/*.md5", "auto_examples/*.codeobj.json"]
templates_path = ["_templates"]

# --- API reference: one page per public name (autosummary), numpydoc sections
autosummary_generate = True
autodoc_typehints = "none"  # the numpydoc Parameters sections say the types
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_attributes_as_param_list = True
numpydoc_xref_param_type = True
# only the names below (and numpydoc's built-in aliases: int, str, None, ...) become links;
# every other word of a type ("shape (n_windows, n_channels)", "optional") stays text
numpydoc_xref_ignore = "all"
numpydoc_xref_aliases = {
    "ndarray": "numpy.ndarray",
    "DataFrame": "pandas.DataFrame",
    "Path": "pathlib.Path",
    "Raw": "mne.io.Raw",
    "Epochs": "mne.Epochs",
    "Info": "mne.Info",
    "Module": "torch.nn.Module",
    "Tensor": "torch.Tensor",
    "RunConfig": "physiosync.config.RunConfig",
    "Recording": "physiosync.datasets.Recording",
    "BaseDataset": "physiosync.datasets.BaseDataset",
    "WindowSet": "physiosync.preprocessing.windows.WindowSet",
    "PrepareParams": "physiosync.preprocessing.transforms.PrepareParams",
    "Executor": "physiosync.execution.Executor",
    "Unit": "physiosync.execution.Unit",
    "UnitFailure": "physiosync.execution.UnitFailure",
    "ExperimentData": "physiosync.experiment.ExperimentData",
    "PreparedSubject": "physiosync.preprocessing.cache.PreparedSubject",
    "Fold": "physiosync.evaluation.protocols.Fold",
    "PretrainConfig": "physiosync.params.PretrainConfig",
    "FinetuneConfig": "physiosync.params.FinetuneConfig",
    "Generator": "numpy.random.Generator",
    "callable": "callable",
    **{name: f"physiosync.exceptions.{name}" for name in physiosync.exceptions.__all__},
}

# --- cross-links to the libraries physiosync builds on, from stored inventories
_INV = HERE / "_inv"
intersphinx_mapping = {
    name: (url, str(_INV / f"{name}.inv") if (_INV / f"{name}.inv").is_file() else None)
    for name, url in {
        "python": "https://docs.python.org/3",
        "numpy": "https://numpy.org/doc/stable",
        "scipy": "https://docs.scipy.org/doc/scipy",
        "pandas": "https://pandas.pydata.org/docs",
        "mne": "https://mne.tools/stable",
        "sklearn": "https://scikit-learn.org/stable",
        "torch": "https://docs.pytorch.org/docs/stable",
        "braindecode": "https://braindecode.org/stable",
        "pyriemann": "https://pyriemann.readthedocs.io/en/latest",
    }.items()
}
intersphinx_timeout = 1  # no network in the build: a missing inventory is skipped fast

# --- the example gallery (examples/*.py), executed at build time on synthetic data.
# `-D plot_gallery=0` builds its pages without running the examples (the CI build does).
sphinx_gallery_conf = {
    "examples_dirs": str(HERE.parent / "examples"),
    "gallery_dirs": str(HERE / "auto_examples"),
    "filename_pattern": r"/plot_",
    "within_subsection_order": "FileNameSortKey",
    "download_all_examples": False,
    "remove_config_comments": True,
    "show_memory": False,
    "matplotlib_animations": False,
}

# --- the user guide (docs/*.md) through MyST
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3

html_theme = "pydata_sphinx_theme"
html_title = f"physiosync {release}"
html_theme_options = {"navigation_depth": 2, "show_toc_level": 2}

nitpicky = os.environ.get("PHYSIOSYNC_DOC_NITPICKY", "1") == "1"


def setup(app):
    app.connect("missing-reference", _api.resolve_reexport)

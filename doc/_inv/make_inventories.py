"""Write the intersphinx inventories that the documentation build reads offline.

The build has no network, so it cannot fetch ``objects.inv`` from python.org, numpy.org,
... This script writes, for each library, an inventory of the names physiosync's docs refer
to, each pointing at its page on the library's site. Add a name here when the nitpicky build
(``sphinx-build -n``) reports ``reference target not found`` for it, then run::

    python doc/_inv/make_inventories.py

The format is Sphinx's inventory version 2: a four-line header, then zlib-compressed lines
``name domain:role priority uri display-name`` (``$`` in the uri stands for the name, ``-``
for a display name equal to the name).
"""

from __future__ import annotations

import zlib
from pathlib import Path

HERE = Path(__file__).resolve().parent

#: project -> (title, version, [(name, domain:role, uri, display name)])
INVENTORIES = {
    "python": ("Python", "3", [
        *((n, "py:class", "library/functions.html#$", "-")
          for n in ("int", "float", "str", "bool", "dict", "list", "tuple", "set",
                    "frozenset", "bytes", "object", "slice", "range")),
        *((n, "py:data", "library/constants.html#$", "-")
          for n in ("None", "True", "False", "Ellipsis")),
        *((n, "py:function", "library/functions.html#$", "-")
          for n in ("callable", "len", "open", "print", "repr")),
        ("pathlib.Path", "py:class", "library/pathlib.html#$", "-"),
        ("os.PathLike", "py:class", "library/os.html#$", "-"),
        ("importlib.resources", "py:module", "library/importlib.resources.html#module-$",
         "-"),
        ("logging", "py:module", "library/logging.html#module-logging", "-"),
        ("logging.Logger", "py:class", "library/logging.html#$", "-"),
        ("FutureWarning", "py:exception", "library/exceptions.html#$", "-"),
        ("ValueError", "py:exception", "library/exceptions.html#$", "-"),
        ("KeyboardInterrupt", "py:exception", "library/exceptions.html#$", "-"),
        ("sequence", "std:term", "glossary.html#term-sequence", "-"),
        ("iterable", "std:term", "glossary.html#term-iterable", "-"),
        ("path-like object", "std:term", "glossary.html#term-path-like-object", "-"),
        ("file object", "std:term", "glossary.html#term-file-object", "-"),
        ("bltin-boolean-values", "std:label", "library/stdtypes.html#$", "Boolean Values"),
    ]),
    "numpy": ("NumPy", "stable", [
        ("numpy.ndarray", "py:class", "reference/generated/$.html", "-"),
        ("numpy.dtype", "py:class", "reference/generated/$.html", "-"),
        ("numpy.memmap", "py:class", "reference/generated/$.html", "-"),
        ("numpy.random.Generator", "py:class", "reference/random/generator.html#$", "-"),
        ("numpy.random.RandomState", "py:class", "reference/random/legacy.html#$", "-"),
        ("numpy.random.default_rng", "py:function", "reference/random/generator.html#$",
         "-"),
        ("array_like", "std:term", "glossary.html#term-array_like", "-"),
        ("numpy", "py:module", "reference/index.html#module-numpy", "-"),
    ]),
    "pandas": ("pandas", "stable", [
        ("pandas.DataFrame", "py:class", "reference/api/$.html", "-"),
        ("pandas.Series", "py:class", "reference/api/$.html", "-"),
    ]),
    "scipy": ("SciPy", "stable", [
        ("scipy.io.loadmat", "py:function", "reference/generated/$.html", "-"),
        ("scipy.signal.welch", "py:function", "reference/generated/$.html", "-"),
        ("scipy.signal.sosfiltfilt", "py:function", "reference/generated/$.html", "-"),
    ]),
    "sklearn": ("scikit-learn", "stable", [
        ("sklearn.set_config", "py:function", "modules/generated/$.html", "-"),
        ("sklearn.metrics.balanced_accuracy_score", "py:function",
         "modules/generated/$.html", "-"),
        ("sklearn.model_selection.cross_val_score", "py:function",
         "modules/generated/$.html", "-"),
        ("sklearn.model_selection.GroupKFold", "py:class", "modules/generated/$.html", "-"),
        ("sklearn.model_selection.PredefinedSplit", "py:class", "modules/generated/$.html",
         "-"),
        ("sklearn.metrics.f1_score", "py:function", "modules/generated/$.html", "-"),
        ("sklearn.model_selection.ShuffleSplit", "py:class", "modules/generated/$.html", "-"),
        ("sklearn.model_selection.GroupShuffleSplit", "py:class", "modules/generated/$.html",
         "-"),
        ("sklearn.model_selection.permutation_test_score", "py:function",
         "modules/generated/$.html", "-"),
        ("sklearn.base.BaseEstimator", "py:class", "modules/generated/$.html", "-"),
        ("sklearn.base.ClassifierMixin", "py:class", "modules/generated/$.html", "-"),
        ("sklearn.pipeline.Pipeline", "py:class", "modules/generated/$.html", "-"),
        ("metadata_routing", "std:label", "metadata_routing.html", "Metadata Routing"),
        ("meta-estimator", "std:term", "glossary.html#term-meta-estimator", "-"),
    ]),
    "mne": ("MNE", "stable", [
        ("mne.io.Raw", "py:class", "generated/$.html", "-"),
        ("mne.io.RawArray", "py:class", "generated/$.html", "-"),
        ("mne.Epochs", "py:class", "generated/$.html", "-"),
        ("mne.EpochsArray", "py:class", "generated/$.html", "-"),
        ("mne.Info", "py:class", "generated/$.html", "-"),
        ("mne.channels.DigMontage", "py:class", "generated/$.html", "-"),
        ("mne.io.read_raw_bdf", "py:function", "generated/$.html", "-"),
        ("mne.set_eeg_reference", "py:function", "generated/$.html", "-"),
        ("mne.filter.filter_data", "py:function", "generated/$.html", "-"),
        ("mne.filter.resample", "py:function", "generated/$.html", "-"),
    ]),
    "torch": ("PyTorch", "stable", [
        ("torch.Tensor", "py:class", "tensors.html#$", "-"),
        ("torch.device", "py:class", "tensor_attributes.html#$", "-"),
        ("torch.dtype", "py:class", "tensor_attributes.html#$", "-"),
        ("torch.nn.Module", "py:class", "generated/$.html", "-"),
        ("torch.nn.Module.state_dict", "py:method",
         "generated/torch.nn.Module.html#$", "-"),
        ("torch.nn.Module.load_state_dict", "py:method",
         "generated/torch.nn.Module.html#$", "-"),
        ("torch.compile", "py:function", "generated/$.html", "-"),
        ("torch.Generator", "py:class", "generated/$.html", "-"),
    ]),
    "pyriemann": ("pyRiemann", "latest", [
        ("pyriemann.estimation.Covariances", "py:class", "generated/$.html", "-"),
        ("pyriemann.tangentspace.TangentSpace", "py:class", "generated/$.html", "-"),
    ]),
    "braindecode": ("Braindecode", "stable", [
        ("braindecode.models.EEGNetv4", "py:class", "generated/$.html", "-"),
        ("braindecode.models.ShallowFBCSPNet", "py:class", "generated/$.html", "-"),
        ("braindecode.models.Deep4Net", "py:class", "generated/$.html", "-"),
    ]),
}


def write(project: str, title: str, version: str, entries) -> Path:
    """Write ``<project>.inv`` beside this script and return its path."""
    lines = [f"{name} {role} 1 {uri} {display}" for name, role, uri, display in entries]
    head = (f"# Sphinx inventory version 2\n# Project: {title}\n# Version: {version}\n"
            "# The remainder of this file is compressed using zlib.\n")
    out = HERE / f"{project}.inv"
    out.write_bytes(head.encode() + zlib.compress(("\n".join(lines) + "\n").encode(), 9))
    return out


def main() -> int:
    for project, (title, version, entries) in INVENTORIES.items():
        print(write(project, title, version, list(entries)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

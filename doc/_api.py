"""Write ``doc/api.rst``, the API reference, from the ``__all__`` of the public modules.

:data:`SECTIONS` declares the public modules, in the order of the page, each with a title and
one line of introduction; every name in a module's ``__all__`` gets a page (autosummary).
An object that several modules export is listed once, under the module that defines it when
that module is listed, else where it first appears. ``doc/conf.py`` runs this at every build,
so the reference cannot fall behind the code; ``api.rst`` is not tracked.
"""

from __future__ import annotations

import functools
import importlib
import inspect
from pathlib import Path

#: (title, module, introduction) of each section of the API reference.
SECTIONS = [
    ("Top level", "physiosync",
     "What most scripts need, importable from ``physiosync`` itself (torch loads only when "
     "used)."),
    ("Exceptions", "physiosync.exceptions",
     "Every error physiosync raises on bad input derives from :class:`PhysioSyncError`; its "
     "message names the file or value and says what to do."),
    ("Datasets", "physiosync.datasets",
     "Readers of the public releases; each returns one :class:`Recording` per subject."),
    ("Synthetic data", "physiosync.synthetic",
     "Synthetic copies of each release in its real file format and layout, with a tunable "
     "emotion effect and stimulus-locked synchrony."),
    ("Preparation", "physiosync.preprocessing.cache",
     "Baseline removal, normalisation and cropping into a verified on-disk cache."),
    ("Windows", "physiosync.preprocessing.windows",
     "The long and short windows of prepared data, as zero-copy views."),
    ("Transforms", "physiosync.preprocessing.transforms",
     "The steps of preparation, and the labels made from ratings."),
    ("Features", "physiosync.preprocessing.features",
     "Band powers and differential entropy, the features of the classical baselines."),
    ("Models", "physiosync.models", "PhysioSync's encoders and heads (PyTorch modules)."),
    ("Pre-training", "physiosync.training.pretrain",
     "CM-CA and LS-TCL pre-training of the encoders."),
    ("Fine-tuning", "physiosync.training.finetune",
     "The hierarchical fusion head on pre-trained (or untrained) encoders."),
    ("Checkpoints", "physiosync.training.checkpoints", "Atomic, checked checkpoint files."),
    ("Protocols and folds", "physiosync.evaluation.protocols",
     "Subject-wise cross-validation protocols, each leakage-checked."),
    ("Cross-validation", "physiosync.evaluation.runner",
     "The loop over folds that every pipeline runs through, with atomic fold files and "
     "resume."),
    ("Metrics and nulls", "physiosync.evaluation.metrics",
     "Metrics with their chance levels, per-subject headlines and permutation nulls."),
    ("Subject-level statistics", "physiosync.evaluation.subject_level",
     "The per-subject headline and its permutation nulls (also exported by "
     "``physiosync.evaluation.metrics``)."),
    ("Baselines", "physiosync.evaluation.baselines",
     "scikit-learn classifiers of the classical baselines."),
    ("Label efficiency", "physiosync.evaluation.label_efficiency",
     "Curves and areas of a label-efficiency study."),
    ("Reports", "physiosync.reporting.report", "The report files of a study."),
    ("Studies", "physiosync.experiment",
     "A study from a configuration: data, folds, pipelines, its cost before it runs, and the "
     "run."),
    ("Configuration", "physiosync.config",
     "YAML configurations and presets, validated before any compute."),
    ("Execution", "physiosync.execution",
     "Executors (serial, processes, Ray) and the threads a process may use."),
    ("Parameters", "physiosync.params",
     "The parameter dataclasses and the names a configuration may use (torch-free)."),
    ("Dataset declarations", "physiosync.dataset_specs",
     "One declaration per dataset, read by every layer."),
    ("Pipeline declarations", "physiosync.pipeline_specs",
     "One declaration per pipeline kind and its parameters."),
]

HEADER = """API reference
=============

Everything listed here is public: it is in the ``__all__`` of its module, and it keeps its
signature within a minor release (a change is announced in :doc:`changes/index`, with a
deprecation first). A name that several modules export is listed once, under the module that
defines it.
"""


def _identity(obj):
    """A key for objects that can be told apart by identity (not numbers, strings or
    None, which the interpreter may share between unrelated names)."""
    if obj is None or isinstance(obj, (bool, int, float, complex, str, bytes)):
        return None
    return id(obj)


def sections() -> list[tuple[str, str, str, list[str]]]:
    """``(title, module, introduction, names)`` of every section, each object once."""
    listed = {m for _, m, _ in SECTIONS}
    home = {}  # identity -> module where the object is listed
    for _, module_name, _ in SECTIONS:  # defining module first, else first appearance
        module = importlib.import_module(module_name)
        for name in getattr(module, "__all__", []):
            obj = getattr(module, name)
            key = _identity(obj)
            if key is None:
                continue
            defined = (getattr(obj, "__module__", None)
                       if inspect.isclass(obj) or inspect.isroutine(obj) else None)
            if defined in listed and defined != module_name:
                continue
            home.setdefault(key, module_name)
    for _, module_name, _ in SECTIONS:  # objects whose defining module is listed nowhere
        module = importlib.import_module(module_name)
        for name in getattr(module, "__all__", []):
            key = _identity(getattr(module, name))
            if key is not None:
                home.setdefault(key, module_name)
    out = []
    for title, module_name, intro in SECTIONS:
        module = importlib.import_module(module_name)
        names = [name for name in getattr(module, "__all__", [])
                 if home.get(_identity(getattr(module, name)), module_name) == module_name]
        out.append((title, module_name, intro, names))
    return out


def write(path: Path) -> Path:
    """Write the API reference to *path* (only if it changed) and return *path*."""
    lines = [HEADER]
    for title, module_name, intro, names in sections():
        if not names:
            continue
        head = title if module_name == "physiosync" else f"{title} (``{module_name}``)"
        lines += [head, "-" * len(head), "", f".. module:: {module_name}", "", intro, "",
                  ".. autosummary::", "   :toctree: generated/", ""]
        lines += [f"   {name}" for name in names] + [""]
    text = "\n".join(lines)
    if not path.is_file() or path.read_text() != text:
        path.write_text(text)
    return path


@functools.lru_cache(maxsize=1)
def documented_names() -> dict[int, str]:
    """``id(object) -> documented dotted name`` of every object with a page."""
    out = {}
    for _, module_name, _, names in sections():
        module = importlib.import_module(module_name)
        for name in names:
            key = _identity(getattr(module, name))
            if key is not None:
                out.setdefault(key, f"{module_name}.{name}")
    return out


def _lookup(dotted: str):
    """The object at *dotted* (a module path, then attributes), or None."""
    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        except Exception:  # noqa: BLE001 (a module that fails to import: not resolvable)
            return None
        for attr in parts[i:]:
            obj = getattr(obj, attr, None)
            if obj is None:
                return None
        return obj
    return None


def resolve_reexport(app, env, node, contnode):
    """``missing-reference`` handler: a reference to an object by another path than the
    one it is documented under (a re-export such as ``physiosync.config.load_config``,
    documented as ``physiosync.load_config``, or a short name in the docstring of a module
    that imports it) resolves to its page."""
    if node.get("refdomain") != "py":
        return None
    target = node["reftarget"].lstrip(".~")
    candidates = [target]
    for scope in (node.get("py:class"), node.get("py:module")):
        if scope:
            candidates.insert(0, f"{scope}.{target}")
    if node.get("py:module") and node.get("py:class"):
        candidates.insert(0, f"{node['py:module']}.{node['py:class']}.{target}")
    documented = documented_names()
    for candidate in candidates:
        key = _identity(_lookup(candidate))
        name = documented.get(key) if key is not None else None
        if name and name != candidate:
            return env.get_domain("py").resolve_xref(env, node["refdoc"], app.builder, "obj",
                                                     name, node, contnode)
    return None

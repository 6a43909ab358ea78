"""physiosync: emotion recognition from EEG and peripheral physiology.

An implementation of PhysioSync (Cui et al., IEEE TCSS 2025, arXiv 2504.17163) with
MNE-based readers for DEAP and DREAMER, honest subject-wise evaluation and
format-faithful synthetic data.
"""

from ._logging import set_log_level, use_log_level
from ._version import __version__
from .exceptions import (CacheError, CheckpointError, ConfigError, DataFormatError,
                         DataNotFoundError, InputShapeError, InvalidParameterError,
                         LeakageError, PhysioSyncError, RunFolderError, ShapeError, TrainingDivergedError, UnknownSubjectError)

_SUBMODULES = ("datasets", "synthetic", "preprocessing", "models", "training", "estimators",
               "evaluation", "reporting", "config", "experiment", "runfolder")
#: Public names defined in submodules, loaded on first use (torch is imported lazily).
_LAZY = {"PhysioSyncClassifier": "estimators", "load_checkpoint": "training.checkpoints",
         "load_config": "config", "run_experiment": "experiment",
         "open_dataset": "datasets"}


def __getattr__(name):
    # Submodules load on first use, so ``import physiosync`` stays light.
    import importlib

    if name in _SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'physiosync' has no attribute {name!r}")


def __dir__():
    # the lazy names and submodules too, for tab completion
    return sorted(set(globals()) | set(_LAZY) | set(_SUBMODULES))


__all__ = [
    "__version__",
    "set_log_level",
    "use_log_level",
    # every exception class
    "PhysioSyncError", "DataFormatError", "DataNotFoundError", "UnknownSubjectError",
    "CacheError", "RunFolderError", "ConfigError", "CheckpointError", "ShapeError",
    "InputShapeError", "InvalidParameterError", "LeakageError", "TrainingDivergedError",
    "PhysioSyncClassifier",
    "load_checkpoint",
    "load_config",
    "run_experiment",
    "open_dataset",
]

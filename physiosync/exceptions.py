"""The exception hierarchy of physiosync.

Every error that physiosync raises on purpose derives from :class:`PhysioSyncError`,
so ``except physiosync.PhysioSyncError`` catches all of them. The concrete classes
also derive from the matching built-in exception, so code written against plain
Python (``except ValueError``, ``except FileNotFoundError``) keeps working.
"""

from __future__ import annotations

class PhysioSyncError(Exception):
    """Base class of every error raised by physiosync."""


class DataFormatError(PhysioSyncError, ValueError):
    """A data file is corrupt, truncated, unsafe or not in the expected format.

    The message names the file and says what was expected.
    """


class DataNotFoundError(PhysioSyncError, FileNotFoundError):
    """A data folder or file that should exist does not."""


class UnknownSubjectError(PhysioSyncError, ValueError):
    """A subject id was requested that the dataset does not hold."""


class CacheError(PhysioSyncError, OSError):
    """The on-disk cache could not be read or written."""


class RunFolderError(PhysioSyncError):
    """A run folder (``--out``) holds another run or foreign files, or is locked.

    The message says what the folder holds and what to do (``--overwrite`` or
    another ``--out``).
    """


class InvalidParameterError(PhysioSyncError, ValueError):
    """A parameter's value is not one its rule allows (a :class:`ValueError`, as in
    scikit-learn and MNE-Python).

    Raised by ``check_option()``,
    ``validate_params()`` and the constraints of
    :mod:`physiosync.params`; the message names the parameter and what it allows.
    """


class ConfigError(PhysioSyncError, ValueError):
    """A configuration key, type or value is invalid."""


class TrainingDivergedError(PhysioSyncError, FloatingPointError):
    """A loss or the weights became NaN or infinite; the last good checkpoint is kept."""


class ShapeError(PhysioSyncError, ValueError):
    """A tensor given to a model or a loss does not have the expected shape.

    The message states the expected shape and the shape that was received.
    """


class CheckpointError(PhysioSyncError, ValueError):
    """A checkpoint file cannot be read or trusted."""


class InputShapeError(PhysioSyncError, ValueError):
    """The input windows do not have the shape the estimator expects."""


class LeakageError(PhysioSyncError, AssertionError):
    """A unit sits in two partitions of a fold, or a held-out subject or stimulus is
    used for training."""


#: Every public exception class of this module.
__all__ = sorted(name for name, obj in globals().items()
                 if isinstance(obj, type) and issubclass(obj, Exception) and name[0] != "_")

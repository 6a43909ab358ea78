"""The exception hierarchy of physiosync.

Every error that physiosync raises on purpose derives from :class:`PhysioSyncError`,
so ``except physiosync.PhysioSyncError`` catches all of them. The concrete classes
also derive from the matching built-in exception, so code written against plain
Python (``except ValueError``, ``except FileNotFoundError``) keeps working.
"""

from __future__ import annotations

__all__ = [
    "PhysioSyncError",
    "DataFormatError",
    "DataNotFoundError",
    "UnknownSubjectError",
    "CacheError",
    "RunFolderError",
]


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

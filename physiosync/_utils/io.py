"""File writes that readers never see half done.

Every file the package writes goes through :func:`atomic_path`: the content is written
to a temporary file beside the destination, flushed to disk, and renamed over the
destination. :func:`atomic_write` (bytes or text) and :func:`atomic_open` (a file
object, for writers that stream) are built on it.
"""

from __future__ import annotations

import contextlib
import errno
import os
import uuid
from pathlib import Path

__all__ = ["atomic_write", "atomic_open", "atomic_path", "fsync_dir"]

#: Marks a temporary file of an atomic write; the run folder and the cache of prepared
#: arrays treat hidden names containing it as leftovers of a killed process.
TMP_MARK = ".tmp-"

#: None, or a function called with the destination before each replace: it raises to
#: refuse the write (set in executor workers, see ``physiosync.execution.run_lock``).
_before_replace = None

# Folders cannot be fsynced on some systems (Windows) and filesystems (some network
# and FUSE mounts); a durable folder entry is then best effort.
_NO_DIR_FSYNC = {errno.EINVAL, errno.ENOTSUP, errno.EBADF, errno.EACCES, errno.EPERM}
if hasattr(errno, "EOPNOTSUPP"):
    _NO_DIR_FSYNC.add(errno.EOPNOTSUPP)


def _temp_name(path: Path) -> Path:
    """``.<name>.tmp-<pid>-<random>`` beside *path*: hidden, and unique per writer."""
    return path.with_name(f".{path.name}{TMP_MARK}{os.getpid()}-{uuid.uuid4().hex[:8]}")


def fsync_dir(folder) -> None:
    """Flush a folder's entries (a rename into it) to disk, where the system allows.

    Parameters
    ----------
    folder : str | Path
        An existing folder.
    """
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError as err:
        if err.errno in _NO_DIR_FSYNC:
            return
        raise
    try:
        os.fsync(fd)
    except OSError as err:
        if err.errno not in _NO_DIR_FSYNC:
            raise
    finally:
        os.close(fd)


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path, *, fsync: bool = True):
    """Yield a temporary path to write; when the block ends, it replaces *path*.

    For writers that need a file name rather than a file object (for example
    :class:`pyedflib.EdfWriter`); see :func:`atomic_open` for the others. The file the
    block writes at the yielded path must be closed when the block ends.

    Parameters
    ----------
    path : str | Path
        Destination file; its folder must exist.
    fsync : bool
        Flush the file to disk before the rename, and the folder after it, so that a
        power cut leaves the old file or the new one. ``False`` only skips the flushes:
        the rename is still atomic for other processes.

    Yields
    ------
    tmp : Path
        ``.<name>.tmp-<pid>-<random>`` in the destination folder (not created).

    Raises
    ------
    OSError
        Whatever the write or the rename raised, made to name the destination path
        where it named only the temporary file or no file (a full disk fails in
        ``write()``). On any failure, ``KeyboardInterrupt`` included, the temporary
        file is removed and *path* is left as it was.
    """
    path = Path(path)
    tmp = _temp_name(path)
    try:
        yield tmp
        if fsync:
            _fsync_file(tmp)
        if _before_replace is not None:
            _before_replace(path)
        os.replace(tmp, path)
    except BaseException as err:
        with contextlib.suppress(OSError):
            tmp.unlink()
        # Name the destination: a full disk fails in write(), which names no file, and
        # open() names only the hidden temporary file (os.replace names both).
        if isinstance(err, OSError) and err.filename2 is None and (
                err.filename is None or str(err.filename) == str(tmp)):
            err.filename = str(path)
        raise
    if fsync:
        fsync_dir(path.parent)


@contextlib.contextmanager
def atomic_open(path, mode: str = "wb", *, encoding: str | None = None,
                newline: str | None = None, buffering: int = -1, fsync: bool = True):
    """Open a file object whose content replaces *path* when the block ends.

    Parameters
    ----------
    path : str | Path
        Destination file; its folder must exist.
    mode : {"wb", "w"}
        Binary or text.
    encoding, newline : str | None
        As for :func:`open`, text mode only; *encoding* defaults to ``"utf-8"``.
    buffering : int
        As for :func:`open`.
    fsync : bool
        See :func:`atomic_path`.

    Yields
    ------
    fh : file object
        Open for writing; closed (and flushed to disk) when the block ends.

    Raises
    ------
    ValueError
        If *mode* is not ``"wb"`` or ``"w"``.
    OSError
        See :func:`atomic_path`.

    Examples
    --------
    >>> with atomic_open("arrays.npy") as fh:  # doctest: +SKIP
    ...     np.save(fh, x)
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"mode={mode!r}: atomic_open writes whole files; use 'wb' or 'w'")
    kwargs = {} if mode == "wb" else {"encoding": encoding or "utf-8", "newline": newline}
    with atomic_path(path, fsync=False) as tmp:
        # "x": never follow a file someone else put at the temporary name.
        with open(tmp, mode.replace("w", "x"), buffering=buffering, **kwargs) as fh:
            yield fh
            if fsync:
                fh.flush()
                os.fsync(fh.fileno())
    if fsync:
        fsync_dir(Path(path).parent)


def atomic_write(path, data: bytes | str, *, encoding: str = "utf-8",
                 fsync: bool = True) -> Path:
    """Write *data* to *path* atomically: readers see the old file or the new one.

    Parameters
    ----------
    path : str | Path
        Destination file; its folder must exist. An existing file is replaced.
    data : bytes | str
        The new content; text is encoded with *encoding* (no newline translation).
    encoding : str
        Encoding of text *data*.
    fsync : bool
        See :func:`atomic_path`.

    Returns
    -------
    path : Path

    Raises
    ------
    TypeError
        If *data* is neither bytes nor str.
    OSError
        See :func:`atomic_path`.
    """
    if isinstance(data, str):
        data = data.encode(encoding)
    elif not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"data must be bytes or str, not {type(data).__name__}")
    path = Path(path)
    with atomic_open(path, "wb", fsync=fsync) as fh:
        fh.write(data)
    return path

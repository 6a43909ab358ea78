"""File writes that readers never see half done.

Every file the package writes goes through :func:`atomic_path`: the content is written
to a temporary file beside the destination, flushed to disk, and renamed over the
destination. :func:`atomic_write` (bytes or text) and :func:`atomic_open` (a file
object, for writers that stream) are built on it.

Every temporary name physiosync creates is ``.physiosync-tmp-<pid>-<token>-<name>``
(:func:`temp_name`); sweeps of leftovers (:func:`is_stale_temp`) remove only names of
that form whose process is no longer alive, never another program's ``*.tmp`` files.

A folder being filled by a run can register a recorder (:func:`record_writes`): each
file :func:`atomic_path` writes below it is reported to the recorder *before* the file
appears under its name, so the run's list of the files it wrote is never short.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import uuid
from pathlib import Path
from .docs import fill_doc

__all__ = ["atomic_write", "atomic_create", "atomic_open", "atomic_path", "fsync_dir", "temp_name",
           "is_own_temp", "is_stale_temp", "pid_alive", "record_writes", "append_durably",
           "TMP_PREFIX"]

#: Prefix of every temporary name physiosync creates (files of atomic writes, folders of
#: cache entries, lock files being made): ``.physiosync-tmp-<pid>-<token>-<name>``.
TMP_PREFIX = ".physiosync-tmp-"
_TMP_RE = re.compile(r"^\.physiosync-tmp-(\d{1,10})-([0-9a-f]{12})-")

#: None, or a function called with the destination before each replace: it raises to
#: refuse the write (set in executor workers, see ``physiosync.execution.run_lock``).
_before_replace = None

# Folders cannot be fsynced on some systems (Windows) and filesystems (some network
# and FUSE mounts); a durable folder entry is then best effort.
_NO_DIR_FSYNC = {errno.EINVAL, errno.ENOTSUP, errno.EBADF, errno.EACCES, errno.EPERM}
if hasattr(errno, "EOPNOTSUPP"):
    _NO_DIR_FSYNC.add(errno.EOPNOTSUPP)


def temp_name(path) -> Path:
    """``.physiosync-tmp-<pid>-<token>-<name>`` beside *path*: hidden, unique per writer.

    Parameters
    ----------
    path : str | Path
        The destination the temporary name stands for.

    Returns
    -------
    tmp : Path
        In the folder of *path*; the name part is cut to keep the whole name short.
    """
    path = Path(path)
    name = path.name[:150]  # stay well under the 255-byte limit of a name
    return path.with_name(f"{TMP_PREFIX}{os.getpid()}-{uuid.uuid4().hex[:12]}-{name}")


def is_own_temp(name: str) -> bool:
    """Whether *name* is a temporary name of :func:`temp_name` (prefix, pid and token)."""
    return _TMP_RE.match(name) is not None


def pid_alive(pid: int) -> bool:
    """Whether a process *pid* exists on this host (one of another user counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by another user
        return True
    except (OverflowError, ValueError, OSError):
        return False
    return True


def is_stale_temp(name: str) -> bool:
    """Whether *name* is a physiosync temporary name whose process is not alive here.

    Only such names are ever swept: another program's ``*.tmp`` files never match, and
    a temporary file of a live physiosync process is left alone.
    """
    match = _TMP_RE.match(name)
    return match is not None and not pid_alive(int(match.group(1)))


def append_durably(path, data: bytes) -> None:
    """Append *data* to *path* (created if missing) and flush it to disk.

    One ``O_APPEND`` write (repeated only if the system writes part of it), so lines
    that several processes append to one file never interleave within a line on a
    local file system.
    """
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)


# Folders whose writes are being recorded in this process: absolute path -> recorders.
_RECORDERS: dict = {}


@contextlib.contextmanager
def record_writes(folder, recorder):
    """Report every file :func:`atomic_path` writes below *folder* to *recorder*.

    Parameters
    ----------
    folder : str | Path
        The folder whose writes are recorded (only in this process).
    recorder : callable
        ``recorder(relative_path)``, with the path relative to *folder* as a POSIX
        string; called before the file appears under its name. An exception it raises
        fails the write, leaving the destination as it was.
    """
    root = os.path.abspath(folder)
    _RECORDERS.setdefault(root, []).append(recorder)
    try:
        yield
    finally:
        stack = _RECORDERS.get(root, [])
        if recorder in stack:
            stack.remove(recorder)
        if not stack:
            _RECORDERS.pop(root, None)


def _record(path: Path) -> None:
    if not _RECORDERS:
        return
    target = Path(os.path.abspath(path))
    for root, stack in list(_RECORDERS.items()):
        if stack and Path(root) in target.parents:
            stack[-1](target.relative_to(root).as_posix())


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


@fill_doc
@contextlib.contextmanager
def atomic_path(path, *, fsync: bool = True):
    """Yield a temporary path to write; when the block ends, it replaces *path*.

    For writers that need a file name rather than a file object (for example
    :class:`pyedflib.EdfWriter`); see :func:`atomic_open` for the others. The file the
    block writes at the yielded path must be closed when the block ends.

    Parameters
    ----------
    %(dest_path)s
    fsync : bool
        Flush the file to disk before the rename, and the folder after it, so that a
        power cut leaves the old file or the new one. ``False`` only skips the flushes:
        the rename is still atomic for other processes.

    Yields
    ------
    tmp : Path
        ``.physiosync-tmp-<pid>-<token>-<name>`` in the destination folder (not
        created).

    Raises
    ------
    OSError
        Whatever the write or the rename raised, made to name the destination path
        where it named only the temporary file or no file (a full disk fails in
        ``write()``). On any failure, ``KeyboardInterrupt`` included, the temporary
        file is removed and *path* is left as it was.
    """
    path = Path(path)
    tmp = temp_name(path)
    try:
        yield tmp
        if fsync:
            _fsync_file(tmp)
        if _before_replace is not None:  # may refuse (a worker whose run lost its lock)
            _before_replace(path)
        _record(path)  # listed as physiosync's before it appears
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


@fill_doc
@contextlib.contextmanager
def atomic_open(path, mode: str = "wb", *, encoding: str | None = None,
                newline: str | None = None, buffering: int = -1, fsync: bool = True):
    """Open a file object whose content replaces *path* when the block ends.

    Parameters
    ----------
    %(dest_path)s
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


@fill_doc
def atomic_write(path, data: bytes | str, *, encoding: str = "utf-8",
                 errors: str = "strict", fsync: bool = True) -> Path:
    """Write *data* to *path* atomically: readers see the old file or the new one.

    Parameters
    ----------
    %(dest_path)s
        An existing file is replaced.
    data : bytes | str
        The new content; text is encoded with *encoding* (no newline translation).
    %(encoding)s
    errors : str
        How characters *encoding* cannot hold are written (:meth:`str.encode`); e.g.
        ``"backslashreplace"`` for text shown to people that may hold a path's
        undecodable bytes (lone surrogates).
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
        data = data.encode(encoding, errors)
    elif not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"data must be bytes or str, not {type(data).__name__}")
    path = Path(path)
    with atomic_open(path, "wb", fsync=fsync) as fh:
        fh.write(data)
    return path


@fill_doc
def atomic_create(path, data: bytes | str, *, encoding: str = "utf-8") -> Path:
    """Write a *new* file atomically: never replace one, even one made meanwhile.

    The content is written and flushed to a temporary file beside *path*, then
    hard-linked to *path*, which fails if *path* exists; where the file system has no
    hard links, the file is created with ``O_EXCL`` and then written.

    Parameters
    ----------
    %(dest_path)s
    data : bytes | str
        The content; text is encoded with *encoding*.
    %(encoding)s

    Returns
    -------
    path : Path

    Raises
    ------
    FileExistsError
        If *path* exists (a file, a folder or a link); it is left as it was.
    """
    if isinstance(data, str):
        data = data.encode(encoding)
    path = Path(path)
    tmp = temp_name(path)
    try:
        with open(tmp, "xb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            raise
        except OSError:  # no hard links here: O_EXCL, then the content
            with open(path, "xb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
    except FileExistsError as err:
        err.filename = str(path)
        raise
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()
    fsync_dir(path.parent)
    return path

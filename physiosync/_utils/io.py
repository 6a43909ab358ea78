"""File writes that readers never see half done."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

__all__ = ["atomic_write_bytes", "atomic_write_text"]


def atomic_write_bytes(path, data: bytes) -> Path:
    """Write *data* to *path* atomically: a hidden temporary file, then a rename.

    Readers see either the old file or the new one, never a partial one. The
    temporary file (``.<name>.tmp-<pid>``, beside *path*) is removed on every
    failure, including a full disk and ``KeyboardInterrupt``.

    Parameters
    ----------
    path : str | Path
        Destination file; its folder must exist.
    data : bytes
        The new content.

    Returns
    -------
    path : Path
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException as err:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if isinstance(err, OSError) and err.filename is None:
            err.filename = str(path)  # a full disk fails in write(), which names no file
        raise
    return path


def atomic_write_text(path, text: str, encoding: str = "utf-8") -> Path:
    """Write *text* to *path* atomically (see :func:`atomic_write_bytes`)."""
    return atomic_write_bytes(path, text.encode(encoding))

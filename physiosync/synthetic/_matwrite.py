"""Writing MATLAB v5 MAT-files for the synthetic copies of the ``.mat`` releases.

MATLAB's default ``save`` (``-v7``) compresses every variable with zlib, and the readers
must handle that, so the synthetic copies are compressed too. ``scipy.io.savemat``
compresses at zlib's default level, which on simulated float64 signals took about two
thirds of the time of writing a SEED copy for 2 % smaller files than level 1;
:func:`write_mat` lets scipy write the variables uncompressed and compresses each
top-level data element itself, at level 1. The result is the same MAT-file layout
(header, then one ``miCOMPRESSED`` element per variable, each holding the variable's
``miMATRIX`` element), which scipy and :func:`physiosync.datasets._matfile.load_mat` read
back value for value.
"""

from __future__ import annotations

import io
import struct
import zlib

__all__ = ["write_mat"]

_MI_COMPRESSED = 15
#: zlib level of the synthetic copies (see the module docstring).
LEVEL = 1


def write_mat(f, variables: dict, *, compress: bool = True, oned_as: str = "row") -> None:
    """Write *variables* to the binary file *f* as a MATLAB v5 MAT-file.

    Parameters
    ----------
    f : file object
        Open for writing, binary.
    variables : dict of str -> object
        What ``scipy.io.savemat`` takes.
    compress : bool
        Compress each variable with zlib (level :data:`LEVEL`), as MATLAB's default
        ``-v7`` save does; False writes them uncompressed.
    oned_as : {"row", "column"}
        How 1-D arrays are written, as for ``scipy.io.savemat``.
    """
    import scipy.io

    if not compress:
        scipy.io.savemat(f, variables, do_compression=False, oned_as=oned_as)
        return
    buf = io.BytesIO()
    scipy.io.savemat(buf, variables, do_compression=False, oned_as=oned_as)
    raw = buf.getbuffer()
    endian = "<" if bytes(raw[126:128]) == b"IM" else ">"
    f.write(raw[:128])
    pos = 128
    while pos + 8 <= len(raw):
        _, nbytes = struct.unpack_from(endian + "II", raw, pos)
        end = pos + 8 + nbytes
        body = zlib.compress(raw[pos:end], LEVEL)
        f.write(struct.pack(endian + "II", _MI_COMPRESSED, len(body)))
        f.write(body)
        pos = end
    del raw

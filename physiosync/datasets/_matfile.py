"""Reading MATLAB v5 MAT-files that may be hostile, for the readers of ``.mat`` releases.

DREAMER, AMIGOS, SEED and SEED-IV ship MATLAB v5 MAT-files, which ``scipy.io.loadmat``
reads. scipy trusts a file's declarations: it allocates what an array header declares
before reading the elements, inflates a compressed element as far as it goes, and
crashes on an unknown data type. :func:`load_mat` checks a file before scipy sees it:

* the 128-byte header (a MATLAB v7.3 HDF5 file gets its own message);
* every top-level data element must end inside the file (a truncated download);
* a compressed element may declare at most :data:`MAX_INFLATION` times its compressed
  size and may not inflate beyond what it declares; it is inflated here in bounded
  chunks, so a "zip bomb" is refused once it passes what it declares;
* the array headers inside a compressed element: known data types, and no cell or
  struct array declaring more elements than its payload has room for.

:func:`load_mat` keeps what the check inflated and hands scipy an uncompressed copy of
the file, so every element is inflated once (inflating twice took 88 % of the time of
reading AMIGOS). Anything scipy then raises becomes one :class:`~physiosync.exceptions.DataFormatError`
that names the file. No code is executed: MAT-files hold data only, and MATLAB objects
(class ``mxOBJECT``) are not turned into anything but arrays.
"""

from __future__ import annotations

import io
import os
import struct
import warnings
import zlib
from pathlib import Path

import numpy as np

from .._logging import logger
from ..exceptions import DataFormatError, PhysioSyncError

__all__ = ["MAX_INFLATION", "check_header", "load_mat", "mat_variables"]

_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
_MI_MATRIX, _MI_COMPRESSED = 14, 15
#: A compressed element may declare at most this many bytes per compressed byte
#: (plus :data:`_INFLATE_SLACK`). Recorded signals compress a few times at most;
#: zlib reaches about 1000:1 on constant data, which only a crafted file holds.
MAX_INFLATION = 64
#: Allowance for small elements and for the few bytes MATLAB writes past an element.
_INFLATE_SLACK = 1 << 20


def check_header(path: Path, release: str, resave: str, sink=None) -> None:
    """Reject what is not a MATLAB v5 MAT-file before scipy sees it (and walk its
    elements, :func:`_check_elements`).

    With *sink* (a writable binary file), an uncompressed copy of the checked file is
    written to it: the header, then every element with compressed ones inflated.
    """
    try:
        with open(path, "rb") as f:
            head = f.read(520)
            if len(head) >= 128 and head[126:128] in (b"IM", b"MI"):
                if sink is not None:
                    sink.write(head[:128])
                _check_elements(f, path, "<" if head[126:128] == b"IM" else ">", sink)
    except OSError as err:
        raise DataFormatError(f"{path}: cannot be read ({err.strerror or err}).") from None
    if head[:8] == _HDF5_SIGNATURE or head[512:520] == _HDF5_SIGNATURE or \
            head[:19] == b"MATLAB 7.3 MAT-file":
        raise DataFormatError(
            f"{path}: this is a MATLAB v7.3 (HDF5) file; expected the MATLAB v5 MAT-file "
            f"of {release}. Re-save it in MATLAB with {resave} or use the original "
            "download.")
    if len(head) < 128:
        raise DataFormatError(
            f"{path}: only {len(head)} bytes, shorter than the 128-byte MAT-file header; "
            "the file is truncated or not a MAT-file. Expected a MATLAB v5 MAT-file.")
    endian = head[126:128]
    version = head[124:126]
    if endian not in (b"IM", b"MI") or version != (b"\x00\x01" if endian == b"IM" else b"\x01\x00"):
        raise DataFormatError(
            f"{path}: not a MATLAB v5 MAT-file (header bytes 124-127 are {head[124:128]!r}, "
            "expected version 0x0100 and 'IM' or 'MI'); the file is corrupt or of another "
            f"format. Expected the MATLAB v5 MAT-file of {release}.")


def _check_elements(f, path: Path, endian: str, sink=None) -> None:
    """Walk the top-level data elements; a file that ends inside one is truncated.

    scipy stops decompressing as soon as it has the bytes it needs, so a file cut in
    the last few bytes of a compressed element (the zlib checksum) would otherwise load.
    The array headers of every element, compressed or not, are checked
    (:func:`_walk_matrix`). With *sink*, each element is copied to it, inflated.
    """
    size = f.seek(0, os.SEEK_END)
    pos = 128
    while pos < size:
        f.seek(pos)
        tag = f.read(8)
        if len(tag) < 8:
            break  # trailing padding shorter than a tag
        mdtype, nbytes = struct.unpack(endian + "II", tag)
        end = pos + 4 + (mdtype >> 16) if mdtype >> 16 else pos + 8 + nbytes
        if end > size:
            raise DataFormatError(
                f"{path}: truncated MAT-file: the data element at byte {pos} declares "
                f"{nbytes} bytes, but the file ends at byte {size} ({end - size} missing). "
                f"Download {path.name} again.")
        if mdtype == _MI_COMPRESSED:
            _check_inflation(f, path, pos, nbytes, endian, sink)
        else:
            if mdtype == _MI_MATRIX:
                # uncompressed (scipy's default when writing): the same header checks,
                # for scipy allocates what a header declares here too (a cell of 2**31
                # elements in a 200-byte file)
                _walk_matrix(_Plain(f, pos, nbytes), 8 + nbytes, 0, endian, path, pos)
            if sink is not None:
                f.seek(pos)
                _copy(f, sink, end - pos)
        pos = end


def _copy(f, sink, n: int) -> None:
    while n > 0:
        chunk = f.read(min(n, 1 << 22))
        if not chunk:
            return
        sink.write(chunk)
        n -= len(chunk)


def _check_inflation(f, path: Path, pos: int, nbytes: int, endian: str, sink=None) -> None:
    """Refuse a compressed element that inflates beyond what it declares, or declares too much.

    The inflated element starts with its own tag, which declares its size. That size
    may be at most :data:`MAX_INFLATION` times the compressed size, and the stream may
    not inflate (much) beyond it. The stream is inflated here in bounded chunks, so a
    "zip bomb" costs at most what it declares (without *sink*: time, never memory). On
    the way, the array headers are checked (:func:`_walk_matrix`): scipy allocates what
    they declare before it reads the elements, and crashes on an unknown data type.
    With *sink*, the inflated element (its declared bytes) is written to it.
    """
    f.seek(pos + 8)
    start = sink.tell() if sink is not None else 0
    stream = _Inflated(f, nbytes, sink)
    try:
        head = stream.read(8)
        if len(head) == 8:
            mdtype, declared = struct.unpack(endian + "II", head)
            if declared + 8 > MAX_INFLATION * nbytes + _INFLATE_SLACK:
                raise DataFormatError(
                    f"{path}: the compressed data element at byte {pos} declares "
                    f"{declared + 8} bytes from {nbytes} compressed bytes (ratio "
                    f"{(declared + 8) / max(nbytes, 1):.0f}:1, at most "
                    f"{MAX_INFLATION}:1 allowed); the file is corrupt or crafted "
                    "to exhaust memory.")
            stream.limit = declared + 8 + _INFLATE_SLACK
            if mdtype == _MI_MATRIX:
                _walk_matrix(stream, 8 + declared, 0, endian, path, pos)
            stream.skip(1 << 62)  # the rest, to check that it ends where it says
            if stream.total < 8 + declared:
                raise DataFormatError(
                    f"{path}: the compressed data element at byte {pos} inflates to "
                    f"{stream.total} bytes, fewer than the {declared + 8} it declares; the "
                    f"file is truncated or corrupt. Download {path.name} again.")
            if sink is not None:  # MATLAB may write a few bytes past what it declares
                sink.truncate(start + 8 + declared)
                sink.seek(start + 8 + declared)
    except zlib.error as err:
        raise DataFormatError(
            f"{path}: cannot be read as a MATLAB v5 MAT-file: the compressed data element "
            f"at byte {pos} does not inflate ({err}); the file is truncated or corrupt. "
            f"Download {path.name} again.") from None
    except _Overflow as over:
        raise DataFormatError(
            f"{path}: the compressed data element at byte {pos} inflates beyond "
            f"the {over.limit - _INFLATE_SLACK} bytes it declares; the file is corrupt "
            "or crafted to exhaust memory.") from None


class _Overflow(Exception):
    def __init__(self, limit):
        self.limit = limit


class _Inflated:
    """The inflated bytes of one compressed element, read in bounded chunks.

    ``pos`` counts the bytes consumed; once ``limit`` is set, inflating past it raises
    :class:`_Overflow`. Every inflated chunk is also written to ``sink``, if given.
    """

    label, unit = "compressed data element", "inflated byte"

    def __init__(self, f, nbytes: int, sink=None):
        self.f, self.remaining, self.sink = f, nbytes, sink
        self.inflater = zlib.decompressobj()
        self.buf, self.pos, self.total, self.limit = bytearray(), 0, 0, None
        self.tail = b""

    def _more(self) -> bool:
        if not self.tail:
            if self.remaining <= 0 or self.inflater.eof:
                return False
            self.tail = self.f.read(min(1 << 20, self.remaining))
            if not self.tail:
                return False
            self.remaining -= len(self.tail)
        out = self.inflater.decompress(self.tail, 1 << 22)
        self.tail = b"" if self.inflater.eof else self.inflater.unconsumed_tail
        self.total += len(out)
        if self.limit is not None and self.total > self.limit:
            raise _Overflow(self.limit)
        if self.sink is not None:
            self.sink.write(out)
        self.buf += out
        return bool(out) or bool(self.tail)

    def read(self, n: int) -> bytes:
        while len(self.buf) < n and self._more():
            pass
        out = bytes(self.buf[:n])
        del self.buf[:n]
        self.pos += len(out)
        return out

    def skip(self, n: int) -> None:
        while n > 0:
            if not self.buf and not self._more():
                return
            k = min(n, len(self.buf))
            del self.buf[:k]
            n -= k
            self.pos += k


class _Plain:
    """The bytes of one uncompressed element of the file, with :class:`_Inflated`'s
    reading interface (``pos`` counts from the element's tag, as there)."""

    label, unit = "data element", "byte offset"

    def __init__(self, f, start: int, nbytes: int):
        self.f, self.start, self.size, self.pos = f, start, nbytes + 8, 8
        self.limit = None

    def read(self, n: int) -> bytes:
        n = max(0, min(n, self.size - self.pos))
        self.f.seek(self.start + self.pos)
        out = self.f.read(n)
        self.pos += len(out)
        return out

    def skip(self, n: int) -> None:
        self.pos = min(self.size, self.pos + max(0, n))


#: The MAT-file data types; scipy indexes a table with the type and crashes on others.
_MI_TYPES = frozenset((1, 2, 3, 4, 5, 6, 7, 9, 12, 13, 14, 15, 16, 17, 18))
_MX_CELL, _MX_STRUCT, _MX_OBJECT = 1, 2, 3
_MX_CHAR, _MX_SPARSE, _MX_UINT64 = 4, 5, 15
_MX_COMPLEX = 0x800
_MAX_MAT_DEPTH = 64


def _walk_matrix(stream: _Inflated, end: int, depth: int, endian: str, path: Path,
                 pos: int) -> None:
    """Check the array headers of the miMATRIX element whose payload ends at *end*.

    Every data type must be known, and a cell or struct array may declare no more
    elements than its payload has room for (each takes at least an 8-byte tag). On
    anything else unusual the walk stops and scipy has the last word.
    """
    def element(keep: bool):
        tag = stream.read(8)
        if len(tag) < 8:
            return None
        mdtype, n = struct.unpack(endian + "II", tag)
        small = mdtype >> 16
        mdtype &= 0xFFFF
        if mdtype not in _MI_TYPES:
            raise DataFormatError(
                f"{path}: the {stream.label} at byte {pos} holds a sub-element of "
                f"unknown data type {mdtype} (at {stream.unit} {stream.pos - 8}); the file "
                f"is corrupt. Download {path.name} again.")
        if small:
            return mdtype, tag[4:4 + small]
        if stream.pos + n > end:  # scipy allocates the declared size before reading
            raise DataFormatError(
                f"{path}: a sub-element (at {stream.unit} {stream.pos - 8} of the compressed "
                f"data element at byte {pos}) declares {n} bytes, beyond the end of its "
                "array; the file is corrupt or crafted to exhaust memory.")
        if keep:
            data = stream.read(n)
        else:
            data = b""
            stream.skip(n)
        stream.skip(-n % 8)
        return mdtype, data

    if depth > _MAX_MAT_DEPTH:
        return
    start = stream.pos
    flags = element(True)
    if flags is None:
        return
    if flags[0] != 6 or len(flags[1]) != 8:  # scipy reads two uint32, whatever is declared
        raise DataFormatError(
            f"{path}: an array (at {stream.unit} {start} of the {stream.label} at "
            f"byte {pos}) has {len(flags[1])} bytes of flags of data type {flags[0]}; "
            "expected two uint32. The file is corrupt.")
    dims = element(True)
    if dims is None or element(False) is None:
        return
    if dims[0] != 5 or len(dims[1]) < 8 or len(dims[1]) % 4:  # scipy crashes on these
        raise DataFormatError(
            f"{path}: an array (at {stream.unit} {start} of the {stream.label} at "
            f"byte {pos}) has {len(dims[1])} bytes of dimensions of data type {dims[0]}; "
            "expected at least two int32 dimensions. The file is corrupt.")
    mclass = struct.unpack(endian + "I", flags[1][:4])[0] & 0xFF
    shape = struct.unpack(f"{endian}{len(dims[1]) // 4}i", dims[1][:len(dims[1]) // 4 * 4])
    if any(d < 0 for d in shape):
        raise DataFormatError(
            f"{path}: an array (at {stream.unit} {start} of the {stream.label} at "
            f"byte {pos}) has negative dimensions {shape}; the file is corrupt.")
    if mclass not in (_MX_CELL, _MX_STRUCT):
        if mclass != _MX_OBJECT:
            found = 0
            while stream.pos < end:
                data = element(False)
                if data is None:
                    break
                if data[0] in (_MI_MATRIX, _MI_COMPRESSED):  # scipy crashes on these too
                    raise DataFormatError(
                        f"{path}: an array (at {stream.unit} {start} of the compressed data "
                        f"element at byte {pos}) holds data of type {data[0]} (an array, not "
                        "numbers); the file is corrupt.")
                found += 1
            # scipy reads an array's data elements wherever they are, past the end the
            # array declares: the next array's tag read as data of unknown type crashed it
            complex_ = bool(struct.unpack(endian + "I", flags[1][:4])[0] & _MX_COMPLEX)
            need = ((3 if mclass == _MX_SPARSE else 1) + complex_
                    if _MX_CHAR <= mclass <= _MX_UINT64 else 0)
            if found < need:
                raise DataFormatError(
                    f"{path}: an array (at {stream.unit} {start} of the compressed data "
                    f"element at byte {pos}) ends before its data ({found} of {need} data "
                    "element(s)); the file is corrupt.")
        return
    n_fields = 1
    if mclass == _MX_STRUCT:
        length, names = element(True), element(True)
        if length is None or names is None or len(length[1]) < 4:
            return
        width = struct.unpack(endian + "i", length[1][:4])[0]
        if width <= 0:
            return
        n_fields = len(names[1]) // width
    count = int(np.prod(shape, dtype=object)) * n_fields
    room = end - stream.pos
    if count * 8 > room:
        raise DataFormatError(
            f"{path}: an array (at {stream.unit} {start} of the {stream.label} at "
            f"byte {pos}) declares {count} elements in {max(room, 0)} bytes; the file is "
            "corrupt or crafted to exhaust memory.")
    for _ in range(count):
        tag = stream.read(8)
        if len(tag) < 8:
            return
        mdtype, n = struct.unpack(endian + "II", tag)
        if mdtype != _MI_MATRIX:
            return
        child_end = stream.pos + n
        if child_end > end:
            raise DataFormatError(
                f"{path}: an element of the array at {stream.unit} {start} of the compressed "
                f"data element at byte {pos} declares {n} bytes, beyond the end of that "
                "array; the file is corrupt.")
        if n:
            _walk_matrix(stream, child_end, depth + 1, endian, path, pos)
        if stream.pos > child_end:
            return
        stream.skip(child_end - stream.pos)


def _loadmat(path: Path, names, f) -> dict:
    """``scipy.io.loadmat`` of *names* (all variables if None) from *f*, the checked,
    uncompressed copy of *path*; every failure wrapped."""
    import scipy.io

    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            f.seek(0)
            mat = scipy.io.loadmat(f, variable_names=None if names is None else list(names))
    except MemoryError:
        raise PhysioSyncError(
            f"{path}: out of memory while reading it; the full release needs several GB "
            "of RAM (or the file is corrupt and declares an absurd array size).") from None
    except Exception as err:  # scipy raises ValueError, TypeError, zlib.error, OSError ...
        raise DataFormatError(
            f"{path}: cannot be read as a MATLAB v5 MAT-file ({type(err).__name__}: {err}); "
            "the file is truncated or corrupt.") from None
    for w in caught:
        logger.warning("%s: scipy.io.loadmat: %s", path, w.message)
    return mat


def load_mat(path, names=None, *, release: str, resave: str,
             expected: dict | None = None) -> dict:
    """Variables of a MATLAB v5 MAT-file, checked before scipy reads them.

    Parameters
    ----------
    path : path-like
        The file.
    names : sequence of str | None
        Variables to read; ``None`` reads every variable.
    release : str
        What the file should be, for messages: ``"the DREAMER release"``.
    resave : str
        The MATLAB command that re-saves a v7.3 file as v5, for the message that
        refuses one: ``"save('DREAMER.mat', 'DREAMER', '-v7')"``.
    expected : dict of str -> str | None
        Per name, what the variable should be, for the message when it is missing
        (``{"DREAMER": "struct 'DREAMER'"}``); a name without an entry is described
        as ``variable '<name>'``.

    Returns
    -------
    variables : dict of str -> object
        The variables as ``scipy.io.loadmat`` returns them, in the order of the file
        (``__header__`` and the other private entries left out).

    Raises
    ------
    DataFormatError
        If the file is not a MATLAB v5 MAT-file, is truncated or corrupt, declares more
        than it holds, or lacks one of *names*.
    """
    path = Path(path)
    with io.BytesIO() as copy:  # the checked file, inflated once (module docstring)
        check_header(path, release, resave, sink=copy)
        mat = _loadmat(path, names, copy)
    found = [k for k in mat if not k.startswith("__")]
    for name in names or ():
        if name not in mat:
            what = (expected or {}).get(name, f"variable {name!r}")
            raise DataFormatError(
                f"{path}: no variable {name!r} (found {sorted(found) or 'none'}); expected "
                f"{release}'s {what}. The file may be truncated.")
    out = {}
    for name in found:
        value = mat[name]
        if isinstance(value, str):  # scipy turns a MatReadError into a warning and a string
            raise DataFormatError(f"{path}: variable {name!r} cannot be read ({value}); the "
                                  "file is truncated or corrupt.")
        out[name] = value
    return out


def mat_variables(path, *, release: str, resave: str) -> list:
    """Names, shapes and classes of the variables of a MATLAB v5 MAT-file, in file order,
    without reading their data (``scipy.io.whosmat`` after :func:`check_header`).

    Returns
    -------
    variables : list of (str, tuple, str)
    """
    import scipy.io

    path = Path(path)
    check_header(path, release, resave)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with open(path, "rb") as f:
                return [(n, tuple(s), c) for n, s, c in scipy.io.whosmat(f)]
    except MemoryError:
        raise PhysioSyncError(f"{path}: out of memory while listing its variables; the "
                              "file is corrupt.") from None
    except Exception as err:
        raise DataFormatError(
            f"{path}: cannot be read as a MATLAB v5 MAT-file ({type(err).__name__}: {err}); "
            "the file is truncated or corrupt.") from None

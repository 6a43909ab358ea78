"""Faithful writing of Python-2 pickles of numpy arrays, as in DEAP's ``.dat`` files.

:func:`write_py2_pickle` writes a container the way Python 2's ``cPickle`` did (protocol
2, ``str`` as ``SHORT_BINSTRING``/``BINSTRING``, arrays through
``numpy.core.multiarray._reconstruct``), so that the result, like the real files, fails to
load with a plain ``pickle.load`` and needs ``encoding="latin1"``; the reader is
:func:`physiosync.datasets._safe_pickle.load_pickle`.
"""

from __future__ import annotations

import pickle
import struct
import types
from pathlib import Path

import numpy as np

from .._utils import atomic_open

__all__ = ["write_py2_pickle"]


class _Py2Pickler(pickle._Pickler):  # type: ignore[name-defined]
    """Protocol-2 pickler that writes what Python 2's cPickle wrote for numpy arrays."""

    dispatch = pickle._Pickler.dispatch.copy()  # type: ignore[attr-defined]

    def save_bytes(self, obj):
        n = len(obj)
        if n < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([n]) + obj)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", n))
            self.write(obj)
        self.memoize(obj)

    dispatch[bytes] = save_bytes

    def save_global(self, obj, name=None):
        module, name = _PY2_GLOBALS[obj]
        self.write(pickle.GLOBAL + f"{module}\n{name}\n".encode("ascii"))
        self.memoize(obj)

    dispatch[type] = save_global
    dispatch[types.FunctionType] = save_global

    def reducer_override(self, obj):
        if isinstance(obj, np.ndarray):
            arr = np.ascontiguousarray(obj)
            return (_reconstruct_marker, (np.ndarray, (0,), b"b"),
                    (1, arr.shape, arr.dtype, False, arr.tobytes()))
        if isinstance(obj, np.dtype):
            return (np.dtype, (f"{obj.kind}{obj.itemsize}".encode("ascii"), 0, 1),
                    (3, obj.byteorder.replace("=", "<").encode("ascii"), None, None, None,
                     -1, -1, 0))
        return NotImplemented


def _reconstruct_marker(*args):  # pragma: no cover - only its identity is pickled
    raise RuntimeError("placeholder for numpy.core.multiarray._reconstruct")


_PY2_GLOBALS = {
    _reconstruct_marker: ("numpy.core.multiarray", "_reconstruct"),
    np.ndarray: ("numpy", "ndarray"),
    np.dtype: ("numpy", "dtype"),
}


def write_py2_pickle(obj, path) -> None:
    """Write *obj* as Python 2's ``cPickle.dump(obj, f, 2)`` would have.

    ``str`` keys of dicts are written as Python-2 ``str`` (byte strings), numpy arrays
    through ``numpy.core.multiarray._reconstruct`` with a ``BINSTRING`` payload. The
    file is written to a temporary name and renamed, so it is complete or absent.
    """
    def py2(o):
        if isinstance(o, dict):
            return {(k.encode("latin1") if isinstance(k, str) else k): py2(v) for k, v in o.items()}
        if isinstance(o, str):
            return o.encode("latin1")
        return o

    path = Path(path)
    with atomic_open(path, "wb", buffering=1 << 20) as fh:
        _Py2Pickler(fh, protocol=2).dump(py2(obj))

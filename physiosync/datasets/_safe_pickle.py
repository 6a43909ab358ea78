"""Safe, fast reading of Python-2 pickles of numpy arrays.

The DEAP release stores each subject as a Python-2 ``cPickle`` of a ``dict`` of numpy
arrays. ``pickle.load`` on such a file can run arbitrary code, and its ``latin1``
path decodes every array payload to text and back. :func:`load_pickle` instead
interprets the opcode stream itself, admitting only builtin containers and scalars,
numpy ``ndarray`` and ``dtype`` reconstruction. Array payloads become zero-copy
``np.frombuffer`` views of the file's bytes. Anything else (a global such as
``os.system``, an unknown opcode, a truncated stream) raises :class:`DataFormatError`
before anything is called.

The synthetic writer of such files is
:func:`physiosync.synthetic._py2_pickle.write_py2_pickle`.
"""

from __future__ import annotations

import pickle
import reprlib
import struct
from pathlib import Path

import numpy as np

from ..exceptions import DataFormatError

__all__ = ["load_pickle", "loads_pickle"]

#: Deepest nesting of containers (dict, list, tuple) a file may hold. DEAP files nest
#: two levels; Python hashes, compares and prints nested tuples recursively in C, so a
#: key nested 200,000 levels deep would crash the interpreter.
MAX_DEPTH = 100
#: Most items one container may hold.
MAX_CONTAINER_LEN = 1_000_000
#: Most items all containers of one file may hold together.
MAX_ELEMENTS = 10_000_000


class _LimitError(Exception):
    """The stream exceeds one of the bounds above."""


def _short(obj) -> str:
    """A bounded ``repr`` for error messages (never recurses deeply)."""
    return reprlib.repr(obj)


class _Py2Str:
    """A Python-2 ``str`` read from the stream: bytes until we know what it is for."""

    __slots__ = ("buf",)

    def __init__(self, buf: memoryview):
        self.buf = buf

    def text(self) -> str:
        return bytes(self.buf).decode("latin1")


class _Global:
    __slots__ = ("name",)

    def __init__(self, name: str):
        self.name = name

    def __repr__(self) -> str:
        return f"<{self.name}>"


_RECONSTRUCT, _NDARRAY, _DTYPE, _SCALAR, _ENCODE = (
    _Global(n) for n in ("ndarray._reconstruct", "ndarray", "dtype", "scalar", "encode"))

_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy._core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy", "ndarray"): _NDARRAY,
    ("numpy", "dtype"): _DTYPE,
    ("numpy.core.multiarray", "scalar"): _SCALAR,
    ("numpy._core.multiarray", "scalar"): _SCALAR,
    ("_codecs", "encode"): _ENCODE,
}


class _PendingArray:
    """Result of ``_reconstruct(ndarray, ...)`` until its BUILD supplies the state."""

    __slots__ = ()


def _text(obj) -> str:
    if isinstance(obj, _Py2Str):
        return obj.text()
    if isinstance(obj, (bytes, memoryview)):
        return bytes(obj).decode("latin1")
    if isinstance(obj, str):
        return obj
    raise TypeError(f"expected a string, got {type(obj).__name__}")


def _plain(obj):
    """Turn stream-internal placeholders into the values a user sees."""
    if isinstance(obj, _Py2Str):
        return obj.text()
    if isinstance(obj, memoryview):
        return bytes(obj)
    if isinstance(obj, (_PendingArray, _Global)):
        raise TypeError(f"incomplete object {_short(obj)}")
    return obj


def _make_dtype(args) -> np.dtype:
    spec = _text(args[0])
    dtype = np.dtype(spec)
    if dtype.hasobject or dtype.fields is not None:
        raise TypeError(f"dtype {spec!r} is not a plain numeric dtype")
    return dtype


def _build_dtype(dtype: np.dtype, state) -> np.dtype:
    if not isinstance(state, tuple) or len(state) < 2:
        raise TypeError("malformed dtype state")
    endian = _text(state[1])
    if len(state) > 3 and state[3] is not None:
        raise TypeError("structured dtypes are not supported")
    if endian in ("<", ">"):
        return dtype.newbyteorder(endian)
    return dtype


def _build_array(state) -> np.ndarray:
    if not isinstance(state, tuple) or len(state) != 5:
        raise TypeError("malformed ndarray state")
    _version, shape, dtype, fortran, raw = state
    if not isinstance(dtype, np.dtype):
        raise TypeError("ndarray state without a dtype")
    if not isinstance(shape, tuple) or not all(isinstance(s, int) and s >= 0 for s in shape):
        raise TypeError(f"bad ndarray shape {_short(shape)}")
    if isinstance(raw, _Py2Str):
        buf = raw.buf
    elif isinstance(raw, (bytes, memoryview, bytearray)):
        buf = raw
    else:
        raise TypeError("ndarray payload is not raw bytes (object arrays are not allowed)")
    count = int(np.prod(shape, dtype=np.int64))
    if len(buf) != count * dtype.itemsize:
        raise TypeError(
            f"ndarray payload holds {len(buf)} bytes, expected {count * dtype.itemsize} "
            f"for shape {shape} and dtype {dtype}")
    arr = np.frombuffer(buf, dtype=dtype, count=count)
    return arr.reshape(shape, order="F" if fortran else "C")


def _reduce(func, args):
    if func is _RECONSTRUCT:
        if not (isinstance(args, tuple) and args and args[0] is _NDARRAY):
            raise TypeError("_reconstruct of something other than ndarray")
        return _PendingArray()
    if func is _DTYPE:
        return _make_dtype(args)
    if func is _SCALAR:
        dtype, raw = args
        if not isinstance(dtype, np.dtype):
            raise TypeError("numpy scalar without a dtype")
        raw = raw.buf if isinstance(raw, _Py2Str) else raw
        return np.frombuffer(bytes(raw), dtype=dtype, count=1)[0]
    if func is _ENCODE:
        text, encoding = args
        if _text(encoding) not in ("latin1", "latin-1"):
            raise TypeError("only latin1 byte strings are allowed")
        return _text(text).encode("latin1")
    raise TypeError(f"calling {_short(func)} is not allowed")


class _Reader:
    """A minimal pickle virtual machine over a bytes buffer (protocols 0-5)."""

    def __init__(self, data, source):
        self.mv = memoryview(data)
        self.pos = 0
        self.source = source
        # Nesting depth of every tuple built so far (kept alive with it, so ids stay
        # unique). Tuples become dict keys, and hashing one recurses in C; lists and
        # dicts are checked after loading, as the stream can still extend them.
        self._tuple_depth: dict[int, tuple[tuple, int]] = {}
        self._elements = 0

    def _count(self, n: int, container_len: int) -> None:
        self._elements += n
        if container_len > MAX_CONTAINER_LEN:
            raise _LimitError(f"a container holds more than {MAX_CONTAINER_LEN:,} items")
        if self._elements > MAX_ELEMENTS:
            raise _LimitError(f"the containers hold more than {MAX_ELEMENTS:,} items in all")

    def _tuple(self, items) -> tuple:
        self._count(len(items), len(items))
        depth = 1
        for item in items:
            if isinstance(item, tuple) and item:
                entry = self._tuple_depth.get(id(item))
                if entry is None or entry[0] is not item:  # pragma: no cover - defensive
                    raise TypeError("tuple of unknown origin")
                depth = max(depth, entry[1] + 1)
        if depth > MAX_DEPTH:
            raise _LimitError(f"containers are nested more than {MAX_DEPTH} levels deep")
        out = tuple(items)
        if out:
            self._tuple_depth[id(out)] = (out, depth)
        return out

    def _take(self, n: int) -> memoryview:
        end = self.pos + n
        if n < 0 or end > len(self.mv):
            raise EOFError(f"the stream ends at byte {len(self.mv)}, a value needs {end}")
        out = self.mv[self.pos:end]
        self.pos = end
        return out

    def _line(self) -> bytes:
        end = bytes(self.mv[self.pos:self.pos + 4096]).find(b"\n")
        if end < 0:
            raise EOFError("unterminated text field")
        out = bytes(self.mv[self.pos:self.pos + end])
        self.pos += end + 1
        return out

    def _uint(self, n: int, signed=False) -> int:
        return int.from_bytes(self._take(n), "little", signed=signed)

    def run(self):
        stack: list = []
        marks: list[int] = []
        memo: dict = {}

        def pop_mark():
            at = marks.pop()
            items = stack[at:]
            del stack[at:]
            return items

        while True:
            op = bytes(self._take(1))
            if op == pickle.PROTO:
                self._take(1)
            elif op == pickle.FRAME:
                self._take(8)
            elif op == pickle.STOP:
                if len(stack) != 1:
                    raise TypeError("malformed stream: stack not balanced at STOP")
                result = _plain(stack.pop())
                _check_nesting(result)
                return result
            elif op == pickle.MARK:
                marks.append(len(stack))
            elif op == pickle.POP:
                stack.pop()
            elif op == pickle.POP_MARK:
                pop_mark()
            elif op == pickle.DUP:
                stack.append(stack[-1])
            elif op == pickle.NONE:
                stack.append(None)
            elif op == pickle.NEWTRUE:
                stack.append(True)
            elif op == pickle.NEWFALSE:
                stack.append(False)
            elif op == pickle.INT:
                line = self._line()
                stack.append({b"00": False, b"01": True}.get(line, None)
                             if line in (b"00", b"01") else int(line))
            elif op == pickle.LONG:
                stack.append(int(self._line().rstrip(b"L")))
            elif op == pickle.BININT:
                stack.append(self._uint(4, signed=True))
            elif op == pickle.BININT1:
                stack.append(self._uint(1))
            elif op == pickle.BININT2:
                stack.append(self._uint(2))
            elif op == pickle.LONG1:
                stack.append(int.from_bytes(self._take(self._uint(1)), "little", signed=True))
            elif op == pickle.LONG4:
                n = self._uint(4, signed=True)
                if n > 1 << 16:
                    raise TypeError("implausibly long integer")
                stack.append(int.from_bytes(self._take(n), "little", signed=True))
            elif op == pickle.BINFLOAT:
                stack.append(struct.unpack(">d", self._take(8))[0])
            elif op == pickle.FLOAT:
                stack.append(float(self._line()))
            elif op == pickle.SHORT_BINSTRING:
                stack.append(_Py2Str(self._take(self._uint(1))))
            elif op == pickle.BINSTRING:
                stack.append(_Py2Str(self._take(self._uint(4, signed=True))))
            elif op == pickle.STRING:
                import ast
                stack.append(_Py2Str(memoryview(
                    ast.literal_eval("b" + self._line().decode("latin1")))))
            elif op == pickle.SHORT_BINBYTES:
                stack.append(self._take(self._uint(1)))
            elif op == pickle.BINBYTES:
                stack.append(self._take(self._uint(4)))
            elif op == pickle.BINBYTES8:
                stack.append(self._take(self._uint(8)))
            elif op == pickle.SHORT_BINUNICODE:
                stack.append(bytes(self._take(self._uint(1))).decode("utf-8"))
            elif op == pickle.BINUNICODE:
                stack.append(bytes(self._take(self._uint(4))).decode("utf-8"))
            elif op == pickle.BINUNICODE8:
                stack.append(bytes(self._take(self._uint(8))).decode("utf-8"))
            elif op == pickle.UNICODE:
                stack.append(self._line().decode("raw-unicode-escape"))
            elif op == pickle.EMPTY_DICT:
                stack.append({})
            elif op == pickle.DICT:
                items = pop_mark()
                self._count(len(items), len(items) // 2)
                stack.append({_plain(k): _plain(v) for k, v in zip(items[::2], items[1::2])})
            elif op == pickle.EMPTY_LIST:
                stack.append([])
            elif op == pickle.LIST:
                items = pop_mark()
                self._count(len(items), len(items))
                stack.append([_plain(v) for v in items])
            elif op == pickle.EMPTY_TUPLE:
                stack.append(())
            elif op == pickle.TUPLE:
                stack.append(self._tuple(pop_mark()))
            elif op in (pickle.TUPLE1, pickle.TUPLE2, pickle.TUPLE3):
                n = {pickle.TUPLE1: 1, pickle.TUPLE2: 2, pickle.TUPLE3: 3}[op]
                if len(stack) < n:
                    raise TypeError("stack underflow")
                items = self._tuple(stack[-n:])
                del stack[-n:]
                stack.append(items)
            elif op == pickle.APPEND:
                value = stack.pop()
                target = stack[-1]
                if not isinstance(target, list):
                    raise TypeError("APPEND to a non-list")
                self._count(1, len(target) + 1)
                target.append(_plain(value))
            elif op == pickle.APPENDS:
                items = pop_mark()
                target = stack[-1]
                if not isinstance(target, list):
                    raise TypeError("APPENDS to a non-list")
                self._count(len(items), len(target) + len(items))
                target.extend(_plain(v) for v in items)
            elif op == pickle.SETITEM:
                value, key = stack.pop(), stack.pop()
                self._count(2, len(stack[-1]) + 1 if isinstance(stack[-1], dict) else 0)
                _setitem(stack[-1], key, value)
            elif op == pickle.SETITEMS:
                items = pop_mark()
                target = stack[-1]
                self._count(len(items),
                            len(target) + len(items) // 2 if isinstance(target, dict) else 0)
                for k, v in zip(items[::2], items[1::2]):
                    _setitem(target, k, v)
            elif op in (pickle.BINPUT, pickle.LONG_BINPUT, pickle.PUT):
                key = (self._uint(1) if op == pickle.BINPUT else
                       self._uint(4) if op == pickle.LONG_BINPUT else int(self._line()))
                memo[key] = stack[-1]
            elif op == pickle.MEMOIZE:
                memo[len(memo)] = stack[-1]
            elif op in (pickle.BINGET, pickle.LONG_BINGET, pickle.GET):
                key = (self._uint(1) if op == pickle.BINGET else
                       self._uint(4) if op == pickle.LONG_BINGET else int(self._line()))
                stack.append(memo[key])
            elif op in (pickle.GLOBAL, pickle.STACK_GLOBAL):
                if op == pickle.GLOBAL:
                    module = self._line().decode("latin1")
                    name = self._line().decode("latin1")
                else:
                    name, module = _text(stack.pop()), _text(stack.pop())
                try:
                    stack.append(_ALLOWED_GLOBALS[(module, name)])
                except KeyError:
                    raise PermissionError(
                        f"the pickle refers to {module}.{name}, which is not a numpy array "
                        "or builtin container; refusing to load it") from None
            elif op == pickle.REDUCE:
                args = stack.pop()
                func = stack.pop()
                stack.append(_reduce(func, args))
            elif op == pickle.BUILD:
                state = stack.pop()
                obj = stack[-1]
                if isinstance(obj, _PendingArray):
                    stack[-1] = _build_array(state)
                elif isinstance(obj, np.dtype):
                    stack[-1] = _build_dtype(obj, state)
                else:
                    raise TypeError(f"BUILD on {type(obj).__name__} is not allowed")
            else:
                raise PermissionError(
                    f"pickle opcode {op!r} at byte {self.pos - 1} is not allowed")


def _check_nesting(root) -> None:
    """Refuse a result nested deeper than :data:`MAX_DEPTH` or holding itself.

    An iterative depth-first walk: every container is expanded once, so shared
    sub-containers cost nothing extra, and no Python or C recursion is involved.
    """
    containers = (dict, list, tuple)
    if not isinstance(root, containers):
        return
    done: set[int] = set()
    on_path: set[int] = set()
    # (container, iterator over its children) for every container on the current path
    path = [(root, _children(root))]
    on_path.add(id(root))
    while path:
        _, children = path[-1]
        for child in children:
            if not isinstance(child, containers) or id(child) in done:
                continue
            if id(child) in on_path:
                raise _LimitError("a container holds itself")
            if len(path) >= MAX_DEPTH:
                raise _LimitError(f"containers are nested more than {MAX_DEPTH} levels deep")
            on_path.add(id(child))
            path.append((child, _children(child)))
            break
        else:
            obj, _ = path.pop()
            on_path.discard(id(obj))
            done.add(id(obj))


def _children(obj):
    if isinstance(obj, dict):
        for key, value in obj.items():
            yield key
            yield value
    else:
        yield from obj


def _setitem(target, key, value):
    if not isinstance(target, dict):
        raise TypeError("SETITEM on a non-dict")
    target[_plain(key)] = _plain(value)


def loads_pickle(data, source="<bytes>"):
    """Load a pickle held in *data* with the restricted reader. See :func:`load_pickle`."""
    try:
        return _Reader(data, source).run()
    except _LimitError as err:
        raise DataFormatError(
            f"{source}: refusing this pickle: {err}. A DEAP file holds a dict of numpy "
            "arrays; this file is corrupt or crafted.") from None
    except RecursionError:  # pragma: no cover - the bounds above should prevent it
        raise DataFormatError(
            f"{source}: refusing this pickle: containers are nested too deeply.") from None
    except MemoryError:
        raise DataFormatError(
            f"{source}: refusing this pickle: its contents do not fit in memory.") from None
    except PermissionError as err:
        raise DataFormatError(f"{source}: unsafe pickle: {err}.") from None
    except EOFError as err:
        raise DataFormatError(
            f"{source}: truncated pickle ({err}); the file is incomplete or corrupt.") from None
    except (TypeError, ValueError, IndexError, KeyError, AttributeError, struct.error,
            UnicodeDecodeError, SyntaxError, OverflowError) as err:
        raise DataFormatError(
            f"{source}: corrupt or unsupported pickle ({type(err).__name__}: {err}); expected "
            "a pickle of numpy arrays in builtin containers.") from None


def load_pickle(path):
    """Read a pickle of numpy arrays and builtin containers, safely and without copies.

    Parameters
    ----------
    path : str | Path
        The file, e.g. a DEAP ``sXX.dat``.

    Returns
    -------
    obj : object
        The unpickled object. Python-2 ``str`` values become ``str`` (latin1), arrays
        are read-only views of the file's bytes.

    Raises
    ------
    DataFormatError
        If the file is truncated, corrupt, or refers to anything but numpy arrays,
        dtypes and builtin containers; or if its containers nest deeper than
        :data:`MAX_DEPTH`, hold themselves, or exceed :data:`MAX_CONTAINER_LEN` items
        (:data:`MAX_ELEMENTS` in all). Nothing from the file is ever executed, and the
        reader never recurses, so no input can exhaust the stack.
    """
    path = Path(path)
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as err:
        raise DataFormatError(f"{path}: cannot be read ({err.strerror or err}).") from None
    return loads_pickle(data, path)

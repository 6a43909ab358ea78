"""The one atomic-write helper: whole files or none, flushed to disk, no leftovers."""

import errno
import os
import pickle
import stat

import numpy as np
import pytest

from physiosync._utils import io as aio
from physiosync._utils import atomic_open, atomic_path, atomic_write


def _leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".physiosync-tmp-"))


class _Explodes:
    """Raises when pickled, after what precedes it has reached the temporary file."""

    def __init__(self, exc, folder):
        self.exc, self.folder, self.sizes = exc, folder, None

    def __reduce__(self):
        self.sizes = [p.stat().st_size for p in self.folder.iterdir()
                      if p.name.startswith(".physiosync-tmp-")]
        raise self.exc


@pytest.fixture
def fsyncs(monkeypatch):
    """Count os.fsync calls (the real fsync still runs)."""
    calls = []
    real = os.fsync

    def counting(fd):
        calls.append(fd)
        return real(fd)

    monkeypatch.setattr(aio.os, "fsync", counting)
    return calls


@pytest.mark.parametrize("data, expected", [
    (b"\x00\x01bytes", b"\x00\x01bytes"),
    ("caf\u00e9\nline\r\n", "caf\u00e9\nline\r\n".encode()),
])
def test_content_and_no_leftovers(tmp_path, data, expected):
    path = tmp_path / "out.bin"
    path.write_bytes(b"old")
    assert atomic_write(path, data) == path
    assert path.read_bytes() == expected  # text: UTF-8, no newline translation
    assert _leftovers(tmp_path) == []


def test_text_encoding_and_type_check(tmp_path):
    atomic_write(tmp_path / "a.txt", "\u00e9", encoding="latin-1")
    assert (tmp_path / "a.txt").read_bytes() == b"\xe9"
    with pytest.raises(TypeError, match="bytes or str, not dict"):
        atomic_write(tmp_path / "b.txt", {"a": 1})
    assert list(tmp_path.iterdir()) == [tmp_path / "a.txt"]


def test_fsync_of_file_and_folder(tmp_path, fsyncs):
    atomic_write(tmp_path / "a", b"x")
    assert len(fsyncs) == 2  # the temporary file, then the folder after the rename
    fsyncs.clear()
    with atomic_path(tmp_path / "b") as tmp:
        tmp.write_bytes(b"y")
    assert len(fsyncs) == 2 and (tmp_path / "b").read_bytes() == b"y"
    fsyncs.clear()
    atomic_write(tmp_path / "c", b"z", fsync=False)
    assert fsyncs == [] and (tmp_path / "c").read_bytes() == b"z"


def test_temporary_name_is_hidden_beside_the_destination(tmp_path):
    with atomic_open(tmp_path / "report.json", "w") as fh:
        names = _leftovers(tmp_path)
        fh.write("{}")
    assert len(names) == 1
    name = names[0]
    # the run folder and the cache recognise this form (prefix, pid, token) as leftovers
    assert name.startswith(f".physiosync-tmp-{os.getpid()}-") and name.endswith("-report.json")
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize("exc", [OSError(errno.ENOSPC, "No space left on device"),
                                 KeyboardInterrupt()])
def test_failure_in_the_middle_keeps_the_old_file(tmp_path, exc):
    path = tmp_path / "data.pkl"
    path.write_bytes(b"old content")
    big = np.arange(1 << 18, dtype=np.float64)  # 2 MiB, written before the failure
    bomb = _Explodes(exc, tmp_path)
    with pytest.raises(type(exc)) as info:
        with atomic_open(path) as fh:
            pickle.dump([big, bomb], fh, protocol=5)
    assert len(bomb.sizes) == 1 and bomb.sizes[0] > 1 << 20  # half written when it failed
    assert path.read_bytes() == b"old content"
    assert _leftovers(tmp_path) == []
    if isinstance(exc, OSError):
        assert info.value.filename == str(path)  # a full disk names the destination


@pytest.mark.parametrize("exc", [OSError(errno.ENOSPC, "No space left on device"),
                                 KeyboardInterrupt()])
def test_write_failing_after_the_first_chunk(tmp_path, monkeypatch, exc):
    """A disk that fills up part-way: the first chunk lands, the next write fails."""
    path = tmp_path / "big.bin"
    path.write_bytes(b"old")
    written = []

    class FillsUp:
        def __init__(self, fh):
            self.fh = fh

        def write(self, data):
            self.fh.write(data[:65536])
            self.fh.flush()
            written.append(os.fstat(self.fh.fileno()).st_size)
            raise exc

        def __getattr__(self, name):
            return getattr(self.fh, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc_info):
            return self.fh.__exit__(*exc_info)

    real_open = open
    monkeypatch.setattr(aio, "open", lambda *a, **k: FillsUp(real_open(*a, **k)), raising=False)
    with pytest.raises(type(exc)) as info:
        atomic_write(path, b"x" * (1 << 20))
    monkeypatch.undo()
    assert written == [65536]
    assert path.read_bytes() == b"old"
    assert _leftovers(tmp_path) == []
    if isinstance(exc, OSError):
        assert str(path) in str(info.value)


def test_failed_rename_removes_the_temporary_file(tmp_path):
    folder = tmp_path / "existing-folder"
    folder.mkdir()
    (folder / "keep").write_text("k")
    with pytest.raises(OSError) as info:
        atomic_write(folder, b"x")  # os.replace cannot put a file over a folder
    assert str(info.value).endswith(f" -> {str(folder)!r}")  # names the destination
    assert (folder / "keep").read_text() == "k"
    assert _leftovers(tmp_path) == []


def test_missing_folder_names_the_destination(tmp_path):
    path = tmp_path / "no" / "such" / "file"
    with pytest.raises(FileNotFoundError) as info:
        atomic_write(path, b"x")
    assert info.value.filename == str(path)  # not the hidden temporary name
    assert list(tmp_path.iterdir()) == []


def test_atomic_open_modes(tmp_path):
    with atomic_open(tmp_path / "a.npy") as fh:
        np.save(fh, np.arange(3))
    np.testing.assert_array_equal(np.load(tmp_path / "a.npy"), np.arange(3))
    with atomic_open(tmp_path / "b.csv", "w", newline="") as fh:
        fh.write("a,b\r\n")
    assert (tmp_path / "b.csv").read_bytes() == b"a,b\r\n"
    with pytest.raises(ValueError, match="mode='a'"):
        with atomic_open(tmp_path / "c", "a"):
            pass
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.npy", "b.csv"]


def test_folder_fsync_unsupported_is_ignored(tmp_path, monkeypatch):
    real = os.fsync
    refused = []

    def fsync(fd):
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            refused.append(fd)
            raise OSError(errno.EINVAL, "Invalid argument")
        return real(fd)

    monkeypatch.setattr(aio.os, "fsync", fsync)
    atomic_write(tmp_path / "a", b"x")
    assert (tmp_path / "a").read_bytes() == b"x" and len(refused) == 1


def test_every_writer_uses_the_helper():
    """No module renames a temporary file of its own any more (cache folders aside)."""
    import pathlib

    import physiosync

    root = pathlib.Path(physiosync.__file__).parent
    offenders = []
    for py in root.rglob("*.py"):
        if py.name == "io.py" and py.parent.name == "_utils":
            continue
        text = py.read_text(encoding="utf-8")
        if "os.replace(" in text or "fsync(" in text:
            offenders.append(str(py.relative_to(root)))
    assert offenders == []

"""The restricted, zero-copy pickle reader and the Python-2 pickle writer."""

import io
import os
import pickle

import numpy as np
import pytest

from physiosync import DataFormatError
from physiosync.datasets._safe_pickle import load_pickle, loads_pickle
from physiosync.synthetic._py2_pickle import write_py2_pickle


@pytest.fixture
def arrays():
    rng = np.random.default_rng(0)
    return {"labels": rng.uniform(1, 9, (5, 4)), "data": rng.standard_normal((5, 40, 500))}


def test_py2_pickle_needs_latin1_like_the_real_release(tmp_path, arrays):
    path = tmp_path / "s01.dat"
    write_py2_pickle(arrays, path)
    with open(path, "rb") as f:
        with pytest.raises(UnicodeDecodeError):
            pickle.load(f)
    with open(path, "rb") as f:
        obj = pickle.load(f, encoding="latin1")
    assert set(obj) == {"labels", "data"}
    np.testing.assert_array_equal(obj["data"], arrays["data"])
    raw = path.read_bytes()
    assert raw[:2] == b"\x80\x02"  # protocol 2
    assert b"cnumpy.core.multiarray\n_reconstruct\n" in raw  # Python-2-era global
    assert pickle.BINSTRING + len(arrays["data"].tobytes()).to_bytes(4, "little") in raw


def test_safe_reader_round_trip_is_zero_copy(tmp_path, arrays):
    path = tmp_path / "s01.dat"
    write_py2_pickle(arrays, path)
    obj = load_pickle(path)
    assert list(obj) == ["labels", "data"]
    for k in arrays:
        np.testing.assert_array_equal(obj[k], arrays[k])
        assert obj[k].dtype == np.float64
        assert not obj[k].flags.owndata  # a view of the file's bytes
        assert not obj[k].flags.writeable


def test_safe_reader_reads_python3_pickles(arrays):
    for protocol in (2, 3, 4):
        blob = pickle.dumps({"x": arrays["labels"], "n": [1, 2.5, None, True, "s"]},
                            protocol=protocol)
        obj = loads_pickle(blob)
        np.testing.assert_array_equal(obj["x"], arrays["labels"])
        assert obj["n"] == [1, 2.5, None, True, "s"]


class _Payload:
    def __reduce__(self):
        return (os.system, ("touch PWNED",))


def test_payload_pickle_is_refused_and_nothing_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "s01.dat"
    path.write_bytes(pickle.dumps({"data": _Payload()}, protocol=2))
    with pytest.raises(DataFormatError, match=r"s01\.dat.*unsafe.*system"):
        load_pickle(path)
    assert not (tmp_path / "PWNED").exists()


@pytest.mark.parametrize("name,global_", [("eval", b"c__builtin__\neval\n"),
                                          ("getattr", b"cbuiltins\ngetattr\n")])
def test_other_globals_are_refused(name, global_):
    blob = b"\x80\x02" + global_ + b"U\x011\x85R."
    with pytest.raises(DataFormatError, match=name):
        loads_pickle(blob, "evil.dat")


def test_truncated_pickle(tmp_path, arrays):
    path = tmp_path / "s02.dat"
    write_py2_pickle(arrays, path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(DataFormatError, match=r"s02\.dat.*truncated"):
        load_pickle(path)


def test_garbage_is_a_format_error(tmp_path):
    path = tmp_path / "s03.dat"
    path.write_bytes(os.urandom(2000))
    with pytest.raises(DataFormatError, match=r"s03\.dat"):
        load_pickle(path)


def test_object_arrays_are_refused():
    blob = pickle.dumps({"data": np.array([object()] * 3)}, protocol=2)
    with pytest.raises(DataFormatError):
        loads_pickle(blob, "obj.dat")


def test_payload_length_mismatch_is_detected(arrays):
    blob = bytearray(io.BytesIO(pickle.dumps(arrays["labels"], protocol=2)).getvalue())
    # Claim a bigger shape than the payload holds.
    at = blob.find(b"K\x05K\x04\x86")
    blob[at + 1] = 6
    with pytest.raises(DataFormatError, match="payload"):
        loads_pickle(bytes(blob), "bad.dat")

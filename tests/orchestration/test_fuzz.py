"""A short seeded run of the reader fuzzer (``benchmarks/fuzz.py``; the long run is a benchmark).

Every mutated DEAP ``.dat``, BDF, DREAMER.mat, SEED and SEED-IV session file, checkpoint and YAML configuration must end in
success or a PhysioSyncError naming the file (ConfigError for configurations), within the
per-input time bound and under the worker's address-space cap.
Every mutated DEAP ``.dat``, BDF, DREAMER.mat, AMIGOS ``.mat``, checkpoint and YAML
configuration must end in success or a PhysioSyncError naming the file (ConfigError for
configurations), within the per-input time bound and under the worker's address-space cap.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from _benchmarks import load_benchmark
from conftest import refusal_in_child

fuzz = load_benchmark("fuzz")

PER_READER = 40


@pytest.fixture(scope="module")
def campaign(tmp_path_factory):
    out = tmp_path_factory.mktemp("fuzz")
    result = fuzz.run_isolated(PER_READER * len(fuzz.READERS), seed=3, out=out, timeout=300)
    return out, result


def test_fuzz_campaign_every_outcome_is_success_or_a_refusal_naming_the_file(campaign):
    out, result = campaign
    assert "crash" not in result, result.get("crash")
    assert result["other"] == 0, json.dumps(
        {k: r["findings"] for k, r in result["readers"].items()}, indent=1)
    assert not (out / "findings").exists()
    assert set(result["readers"]) == set(fuzz.READERS)
    for name, r in result["readers"].items():
        assert r["inputs"] == PER_READER, name
        assert r["successes"] + sum(r["refusals"].values()) == PER_READER, name
        # the mutations really damage the files, and some still read
        assert sum(r["refusals"].values()) >= PER_READER // 4, (name, r)
        assert r["slowest_s"] < 10.0, (name, r)


def test_fuzz_writes_its_summary(campaign):
    out, result = campaign
    assert json.loads((out / "fuzz.json").read_text()) == result
    md = (out / "fuzz.md").read_text()
    assert f"{result['inputs']} inputs, 0 outcomes other" in md
    assert all(f"| {name} | {PER_READER} |" in md for name in fuzz.READERS)


def test_mutations_are_seeded_and_cover_every_kind():
    data = bytes(range(256)) * 4
    first = list(fuzz.mutations(data, 8, seed=1))
    assert first == list(fuzz.mutations(data, 8, seed=1))
    assert first != list(fuzz.mutations(data, 8, seed=2))
    assert len(first[0]) < len(data)  # truncation
    assert len(first[1]) == len(data) and first[1] != data  # byte flips
    rng = np.random.default_rng(0)
    inserted = fuzz.generic_mutation(data, rng, kind=4)
    assert len(inserted) > len(data)


def test_bdf_extreme_header_fields_are_written_where_the_header_puts_them():
    from physiosync.synthetic import make_deap_bdf

    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        raw = (make_deap_bdf(tmp, n_subjects=1, n_trials=1, seconds=1.0) / "s01.bdf").read_bytes()
    rng = np.random.default_rng(0)
    changed = [fuzz.bdf_structured(raw, rng) for _ in range(20)]
    n_header = int(raw[184:192])
    assert all(len(c) == len(raw) and c[n_header:] == raw[n_header:] for c in changed)
    assert sum(c[:n_header] != raw[:n_header] for c in changed) == 20


def test_a_finding_is_saved_with_its_input(tmp_path, monkeypatch):
    # A reader that fails with a plain exception: counted under "other", input kept.
    def broken(self, path):
        raise KeyError("boom")

    monkeypatch.setattr(fuzz.DatTarget, "load", broken)
    r = fuzz.fuzz_reader("dat", 3, seed=0, work=tmp_path / "w", out=tmp_path / "o")
    assert r["other"] == {"KeyError": 3} and r["successes"] == 0
    saved = sorted(p.name for p in (tmp_path / "o" / "findings").iterdir())
    assert saved == [f"dat_0_0000{i}.{ext}" for i in range(3) for ext in ("dat", "txt")]
    assert "KeyError: 'boom'" in (tmp_path / "o" / "findings" / "dat_0_00000.txt").read_text()


# ------------------------------------------ findings of the campaign, fixed in the readers
def _dreamer_with_inner_change(tmp_path, change):
    """The synthetic DREAMER.mat with its (single) compressed element edited inflated."""
    import struct
    import zlib

    from physiosync.synthetic import make_dreamer

    src = make_dreamer(tmp_path / "seed", n_subjects=1, n_trials=1, seconds=1.0)
    data = src.read_bytes()
    mtype, nbytes = struct.unpack_from("<II", data, 128)
    assert mtype == 15
    inner = bytearray(zlib.decompress(data[136:136 + nbytes]))
    change(inner)
    body = zlib.compress(bytes(inner))
    path = tmp_path / "DREAMER.mat"
    path.write_bytes(data[:128] + struct.pack("<II", 15, len(body)) + body
                     + data[136 + nbytes:])
    return path


def test_dreamer_struct_declaring_millions_of_elements_is_refused_before_allocating(tmp_path):
    # scipy allocated what the dimensions declared (a 2 KB change: 2.4 GB, 26 s) before
    # finding the elements missing.
    import struct

    from physiosync import DataFormatError
    from physiosync.datasets import DREAMER

    def huge_dims(inner):  # the top-level struct is 1 x 1: dims at inflated bytes 32-39
        assert struct.unpack_from("<ii", inner, 32) == (1, 1)
        struct.pack_into("<i", inner, 36, 30_000_000)

    path = _dreamer_with_inner_change(tmp_path, huge_dims)
    with pytest.raises(DataFormatError, match=r"DREAMER\.mat: an array .* declares 300000000 "
                                              r"elements in \d+ bytes"):
        DREAMER(path)


def test_an_uncompressed_cell_declaring_millions_of_elements_is_refused(tmp_path):
    # scipy writes uncompressed elements by default, and allocates what their headers
    # declare too: a 200-byte file declaring a 1 x 200,000,000 cell took 1.6 GB before
    # failing (2**31 elements: 17 GB). The header checks cover uncompressed elements.
    import io
    import struct

    import scipy.io

    cell = np.empty((1, 2), dtype=object)
    cell[0, 0], cell[0, 1] = np.zeros(3), np.ones(2)
    buf = io.BytesIO()
    scipy.io.savemat(buf, {"DREAMER": cell}, do_compression=False)
    data = bytearray(buf.getvalue())
    # the element at byte 128: its tag (8 bytes), the array flags (16), then the dims
    assert struct.unpack_from("<II", data, 128) == (14, len(data) - 136)
    assert struct.unpack_from("<ii", data, 160) == (1, 2)
    struct.pack_into("<i", data, 164, 200_000_000)
    path = tmp_path / "DREAMER.mat"
    path.write_bytes(bytes(data))
    out = refusal_in_child("physiosync.datasets", "DREAMER", path)
    assert out.startswith("REFUSED") and str(path) in out
    assert "declares 200000000 elements in" in out and "of the data element at byte 128" in out
    # the same file as written, uncompressed, still reads (and fails only on its contents)
    path.write_bytes(buf.getvalue())
    assert "declares" not in refusal_in_child("physiosync.datasets", "DREAMER", path)


def test_dreamer_unknown_data_type_is_refused_instead_of_crashing_scipy(tmp_path):
    # An unknown sub-element type made scipy.io.loadmat crash the interpreter (SIGSEGV);
    # run it in a child so that a regression fails this test instead of killing pytest.
    def bad_type(inner):  # the first miDOUBLE data sub-element
        tag = (9).to_bytes(4, "little")
        at = next(i for i in range(40, len(inner), 8) if inner[i:i + 4] == tag)
        inner[at] = 0xD0

    path = _dreamer_with_inner_change(tmp_path, bad_type)
    out = refusal_in_child("physiosync.datasets", "DREAMER", path)
    assert out.startswith("REFUSED") and "unknown data type 208" in out
    assert str(path) in out


def _amigos_with_inner_change(tmp_path, change, variable: int = 0, **kwargs):
    """A synthetic AMIGOS participant file (flat; 2 short videos unless *kwargs* say
    otherwise) whose compressed element of *variable* (0: VideoIDs, a 1 x n cell; 3:
    labels_selfassessment) is edited inflated."""
    import struct
    import zlib

    from physiosync.synthetic import make_amigos

    kwargs = {"n_trials": 2, **kwargs}
    src = make_amigos(tmp_path / "seed", n_subjects=1, seconds=1.0, layout="flat",
                      **kwargs) / "Data_Preprocessed_P01.mat"
    data = src.read_bytes()
    pos, elements = 128, []
    while pos + 8 <= len(data):
        elements.append((pos, *struct.unpack_from("<II", data, pos)))
        pos += 8 + elements[-1][2]
    start, mtype, nbytes = elements[variable]
    assert mtype == 15
    inner = bytearray(zlib.decompress(data[start + 8:start + 8 + nbytes]))
    change(inner)
    body = zlib.compress(bytes(inner))
    (tmp_path / "in").mkdir()
    path = tmp_path / "in" / src.name
    path.write_bytes(data[:start] + struct.pack("<II", 15, len(body)) + body
                     + data[start + 8 + nbytes:])
    return path


def _amigos_in_child(path) -> str:
    """``AMIGOS(folder).load_subject(1)`` in a child interpreter (a crash fails the test
    instead of killing pytest); what it printed (``REFUSED <message>`` on refusal)."""
    import subprocess
    import sys

    code = ("from physiosync import DataFormatError\n"
            "from physiosync.datasets import AMIGOS\n"
            "try:\n"
            f"    AMIGOS({str(path.parent)!r}).load_subject(1)\n"
            "except DataFormatError as err:\n"
            "    print('REFUSED', err)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def test_amigos_cell_declaring_millions_of_elements_is_refused_before_allocating(tmp_path):
    import struct

    from physiosync import DataFormatError
    from physiosync.datasets import AMIGOS

    def huge_dims(inner):  # the 1 x 2 VideoIDs cell: dims at inflated bytes 32-39
        assert struct.unpack_from("<ii", inner, 32) == (1, 2)
        struct.pack_into("<i", inner, 36, 30_000_000)

    path = _amigos_with_inner_change(tmp_path, huge_dims)
    with pytest.raises(DataFormatError, match=r"Data_Preprocessed_P01\.mat: an array .* "
                                              r"declares 30000000 elements in \d+ bytes"):
        AMIGOS(path.parent).load_subject(1)


def test_amigos_array_whose_data_lie_past_its_end_is_refused_instead_of_crashing(tmp_path):
    # A 1 x 0 rating whose name was made one byte long pushed its data tag past the end
    # of the array: scipy then read the next cell's tag as data of unknown type 74 and
    # crashed the interpreter (campaign seed 11, input 343). Run in a child.
    import struct

    def long_name(inner):
        empty = struct.pack("<8I", 5, 8, 1, 0, 1, 0, 9, 0)  # dims 1 x 0, no name, no data
        struct.pack_into("<I", inner, bytes(inner).index(empty) + 20, 1)  # a 1-byte name

    path = _amigos_with_inner_change(tmp_path, long_name, 3, empty_trials=((1, 0),))
    out = _amigos_in_child(path)
    assert out.startswith("REFUSED") and str(path) in out
    assert "ends before its data (0 of 1 data element(s))" in out


def test_amigos_array_flags_declaring_more_than_the_array_are_refused(tmp_path):
    # A video id whose flags declared 196 bytes: scipy reads two uint32 whatever is
    # declared, so it went on to a data tag of unknown type 107 and crashed (campaign
    # seed 21, input 786); the walk skipped the declared bytes and never saw that tag.
    # Now no sub-element may declare more than its array holds, nor flags other than
    # two uint32.
    import struct

    def long_flags(inner):
        at = bytes(inner).index(struct.pack("<4I", 6, 8, 4, 0))  # the first video id's flags
        struct.pack_into("<I", inner, at + 4, 196)
        assert inner[at + 40] == 16  # its one-character text, a small miUTF8 element
        inner[at + 40] = 107

    path = _amigos_with_inner_change(tmp_path, long_flags)
    out = _amigos_in_child(path)
    assert out.startswith("REFUSED") and str(path) in out
    assert "declares 196 bytes, beyond the end of its array" in out


def test_amigos_cell_element_declaring_more_than_its_cell_is_refused(tmp_path):
    # The second video id declared 181 bytes (past the end of its cell) and a one-byte
    # name: scipy read the next cell's array tag as its text and crashed (campaign seed
    # 31, input 655); the walk had taken that tag for the second id's data.
    import struct

    def overlong(inner):  # VideoIDs: cells at inflated bytes 56, 112 and 168
        assert struct.unpack_from("<II", inner, 112) == (14, 48)
        struct.pack_into("<I", inner, 116, 181)
        struct.pack_into("<I", inner, 156, 1)

    path = _amigos_with_inner_change(tmp_path, overlong, n_trials=3)
    out = _amigos_in_child(path)
    assert out.startswith("REFUSED") and str(path) in out
    assert "declares 181 bytes, beyond the end of that array" in out


def test_amigos_data_declaring_more_than_the_array_are_refused_before_allocating(tmp_path):
    # A rating whose data declared 4294967295 bytes: scipy allocated them before reading
    # (MemoryError under the campaign's 4 GiB cap; seed 31, input 697).
    import struct

    from physiosync import DataFormatError
    from physiosync.datasets import AMIGOS

    def huge(inner):  # the first 1 x 12 rating's data: miDOUBLE, 96 bytes
        at = bytes(inner).index(struct.pack("<6I", 1, 12, 1, 0, 9, 96))  # dims, name, data
        struct.pack_into("<I", inner, at + 20, 2**32 - 1)

    path = _amigos_with_inner_change(tmp_path, huge, 3)
    with pytest.raises(DataFormatError, match=r"Data_Preprocessed_P01\.mat: a sub-element .* "
                                              r"declares 4294967295 bytes, beyond the end"):
        AMIGOS(path.parent).load_subject(1)


def test_amigos_negative_dimensions_are_refused_instead_of_crashing(tmp_path):
    # An external annotation of -1 x 3 with a data tag of type 0: the walk stopped at the
    # negative dimension and scipy crashed on the data type (campaign seed 21, input 2607).
    import struct

    def negative(inner):  # the first annotation, 1 x 3 (one 20 s segment)
        at = bytes(inner).index(struct.pack("<6I", 5, 8, 1, 3, 1, 0))  # dims, empty name
        struct.pack_into("<i", inner, at + 12, -1)
        assert struct.unpack_from("<I", inner, at + 24)[0] == 9
        struct.pack_into("<I", inner, at + 24, 0)

    path = _amigos_with_inner_change(tmp_path, negative, 2)
    out = _amigos_in_child(path)
    assert out.startswith("REFUSED") and str(path) in out
    assert "has negative dimensions (1, -1)" in out


@pytest.mark.parametrize("duration", [b"nan     ", b"0       ", b"-1      ", b"x       "])
def test_bdf_record_duration_must_be_a_positive_number(tmp_path, duration):
    # "nan" gave a raw ValueError deep in the trial segmentation.
    from physiosync import DataFormatError
    from physiosync.datasets import DEAP
    from physiosync.synthetic import make_deap_bdf

    root = make_deap_bdf(tmp_path / "data_original", n_subjects=1, n_trials=1, seconds=1.0)
    path = root / "s01.bdf"
    data = bytearray(path.read_bytes())
    data[244:252] = duration
    path.write_bytes(bytes(data))
    with pytest.raises(DataFormatError, match=r"s01\.bdf: corrupt BDF header \(record duration"):
        DEAP(root).load_subject(1)


def test_dreamer_dimensions_shorter_than_two_int32_are_refused(tmp_path):
    # A dimensions sub-element of 1 byte also crashed scipy.io.loadmat (SIGSEGV).
    import struct

    from physiosync import DataFormatError
    from physiosync.datasets import DREAMER

    def short_dims(inner):  # the top-level struct's dims tag: miINT32, 8 bytes
        assert struct.unpack_from("<II", inner, 24) == (5, 8)
        struct.pack_into("<I", inner, 28, 1)

    path = _dreamer_with_inner_change(tmp_path, short_dims)
    with pytest.raises(DataFormatError, match=r"DREAMER\.mat: an array .* has 1 bytes of "
                                              r"dimensions"):
        DREAMER(path)


def test_config_with_a_python_tag_is_a_config_error(tmp_path):
    # yaml's ConstructorError escaped load_config.
    from physiosync.config import ConfigError, load_config

    path = tmp_path / "c.yaml"
    path.write_text("pretrain:\n  lr: !!python/object:os.system ls\n")
    with pytest.raises(ConfigError, match=r"c\.yaml is not a plain configuration: .*"
                                          r"python/object"):
        load_config(path)


def test_config_with_an_empty_section_keeps_its_defaults(tmp_path):
    # "finetune:" with every key commented out gave a raw TypeError.
    from physiosync.config import load_config

    path = tmp_path / "c.yaml"
    path.write_text("seed: 3\nfinetune:\n#  lr: 0.1\n")
    cfg = load_config(path)
    assert cfg.finetune == load_config(None, {"seed": 3}).finetune
    assert cfg.finetune.seed == 3


def test_integrity_families_find_nothing_on_one_case_each(tmp_path):
    """One case of each integrity family (benchmarks/_integrity.py): data changed in place,
    an edited fold file, edited cache ratings, a writer pointed at a folder of user files.
    (On the code before these guarantees the same campaign found 7 of 12 cases.)"""
    result = fuzz._integrity.run_integrity(1, seed=5, work=tmp_path)
    assert set(result["families"]) == set(fuzz._integrity.FAMILIES)
    findings = [(name, c["what"], c["finding"], c["stderr"])
                for name, f in result["families"].items() for c in f["findings"]]
    assert result["findings"] == 0, findings
    assert all(f["cases"] == 1 for f in result["families"].values())


def test_xml_structured_mutations_reach_every_kind():
    data = (b'<?xml version="1.0"?>\n<session feltVlnc="5" feltArsl="5" mediaFile="1.avi">'
            b'<subject id="1"/></session>')
    rng = np.random.default_rng(0)
    out = [fuzz.xml_structured(data, rng) for _ in range(60)]
    assert any(b"<!ENTITY c" in o and b'feltVlnc="&c;' in o for o in out)  # entity bomb
    assert any(b'SYSTEM "file:' in o for o in out)  # external entity
    assert any(b"<a>" * 100 in o for o in out)  # deep nesting
    assert any(len(o) > 1 << 20 for o in out)  # past the size bound
    assert any(o != data and len(o) < 200 and b"<!" not in o for o in out)  # extreme values

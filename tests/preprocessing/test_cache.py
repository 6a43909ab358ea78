"""The prepared-data cache: keyed by inputs, atomic, never reused for other inputs."""

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

import physiosync.preprocessing.cache as prep_mod
from physiosync import DataFormatError
from physiosync.datasets import DEAP
from physiosync.synthetic._py2_pickle import write_py2_pickle
from physiosync.preprocessing.cache import prepare
from physiosync.params import PrepareParams


@pytest.fixture
def deap_copy(tmp_path, deap_dat_dir):
    root = tmp_path / "deap"
    shutil.copytree(deap_dat_dir, root)
    return root


def _entries(cache):
    return sorted(p.name for p in cache.iterdir() if not p.name.startswith("."))


def test_cache_hit_is_identical_and_memory_mapped(deap_copy, tmp_path):
    cache = tmp_path / "cache"
    first = prepare(DEAP(deap_copy), cache_dir=cache)
    assert len(_entries(cache)) == 3
    again = prepare(DEAP(deap_copy), cache_dir=cache)
    in_memory = prepare(DEAP(deap_copy), cache_dir=False)
    for s in (1, 2, 3):
        assert isinstance(again[s].data["eeg"], np.memmap)
        np.testing.assert_array_equal(again[s].data["eeg"], in_memory[s].data["eeg"])
        np.testing.assert_array_equal(first[s].data["gsr"], in_memory[s].data["gsr"])
        assert again[s].ratings.equals(in_memory[s].ratings)
        assert not again[s].data["eeg"].flags.writeable


def test_other_parameters_never_reuse_an_entry(deap_copy, tmp_path):
    cache = tmp_path / "cache"
    a = prepare(DEAP(deap_copy), [1], cache_dir=cache)
    b = prepare(DEAP(deap_copy), [1], cache_dir=cache, params=PrepareParams(baseline="mean"))
    c = prepare(DEAP(deap_copy), [1], cache_dir=cache,
                params=PrepareParams(modalities=("eeg",), norm={"eeg": "channel"}))
    assert len(_entries(cache)) == 3
    assert not np.allclose(a[1].data["eeg"], b[1].data["eeg"])
    assert not np.allclose(a[1].data["eeg"], c[1].data["eeg"])


def test_changed_source_file_invalidates_the_entry(deap_copy, tmp_path, deap_dat_dir):
    cache = tmp_path / "cache"
    before = prepare(DEAP(deap_copy), [2], cache_dir=cache)[2].data["eeg"].copy()
    # Replace subject 2 with subject 1's file: same name, different content and mtime.
    shutil.copyfile(deap_dat_dir / "s01.dat", deap_copy / "s02.dat")
    os.utime(deap_copy / "s02.dat", ns=(1, 1))
    after = prepare(DEAP(deap_copy), [2], cache_dir=cache)[2].data["eeg"]
    assert not np.array_equal(before, after)
    assert len(_entries(cache)) == 2


def test_package_version_is_part_of_the_key(deap_copy, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    prepare(DEAP(deap_copy), [1], cache_dir=cache)
    monkeypatch.setattr(prep_mod, "__version__", "99.0")
    prepare(DEAP(deap_copy), [1], cache_dir=cache)
    assert len(_entries(cache)) == 2


def test_interrupted_write_leaves_no_usable_entry(deap_copy, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    real_save = np.save
    calls = {"n": 0}

    def dying_save(path, arr, **kw):
        calls["n"] += 1
        if calls["n"] == 2:  # after the first array is on disk
            raise KeyboardInterrupt
        return real_save(path, arr, **kw)

    monkeypatch.setattr(prep_mod.np, "save", dying_save)
    with pytest.raises(KeyboardInterrupt):
        prepare(DEAP(deap_copy), [1], cache_dir=cache)
    assert _entries(cache) == []
    assert not list(cache.glob(".physiosync-tmp-*"))  # cleaned up on the way out
    monkeypatch.setattr(prep_mod.np, "save", real_save)
    again = prepare(DEAP(deap_copy), [1], cache_dir=cache)
    fresh = prepare(DEAP(deap_copy), [1], cache_dir=False)
    np.testing.assert_array_equal(again[1].data["eeg"], fresh[1].data["eeg"])


def test_killed_write_leftovers_are_never_read(deap_copy, tmp_path):
    cache = tmp_path / "cache"
    prepare(DEAP(deap_copy), [1], cache_dir=cache)
    entry = cache / _entries(cache)[0]
    # Simulate a process killed mid-write: a tmp folder with partial content, and a
    # damaged final entry (meta.json lost): neither may be used.
    partial = cache / f".physiosync-tmp-123-0123456789ab-{entry.name}"
    partial.mkdir()
    (partial / "eeg.npy").write_bytes(b"partial")
    (entry / "meta.json").unlink()
    out = prepare(DEAP(deap_copy), [1], cache_dir=cache)
    fresh = prepare(DEAP(deap_copy), [1], cache_dir=False)
    np.testing.assert_array_equal(out[1].data["eeg"], fresh[1].data["eeg"])
    assert (entry / "meta.json").is_file()


def test_bad_input_writes_nothing(tmp_path):
    root = tmp_path / "deap"
    root.mkdir()
    data = np.zeros((2, 40, 640))
    data[0, 0, 0] = np.nan
    write_py2_pickle({"labels": np.full((2, 4), 5.0), "data": data}, root / "s01.dat")
    cache = tmp_path / "cache"
    with pytest.raises(DataFormatError, match="s01.dat"):
        prepare(DEAP(root), cache_dir=cache)
    assert list(cache.iterdir()) == []


# ------------------------------------------------------------- damaged entries
def _damage_zero_length(npy):
    npy.write_bytes(b"")


def _damage_wrong_shape(npy):
    np.save(npy, np.zeros((2, 3), dtype=np.float32))


def _damage_nan(npy):
    arr = np.load(npy)
    arr.flat[arr.size // 2] = np.nan
    np.save(npy, arr)


@pytest.mark.parametrize("damage", [_damage_zero_length, _damage_wrong_shape, _damage_nan],
                         ids=["zero-length", "wrong-shape", "nan"])
def test_damaged_entry_is_recomputed_with_a_warning(deap_copy, tmp_path, caplog, damage):
    cache = tmp_path / "cache"
    prepare(DEAP(deap_copy), [1], cache_dir=cache)
    entry = cache / _entries(cache)[0]
    damage(entry / "eeg.npy")
    with caplog.at_level("WARNING", logger="physiosync"):
        out = prepare(DEAP(deap_copy), [1], cache_dir=cache)
    assert f"damaged cache entry {entry}" in caplog.text and "eeg.npy" in caplog.text
    fresh = prepare(DEAP(deap_copy), [1], cache_dir=False)
    np.testing.assert_array_equal(out[1].data["eeg"], fresh[1].data["eeg"])
    # The entry on disk is whole again: the next run is a silent hit.
    caplog.clear()
    with caplog.at_level("WARNING", logger="physiosync"):
        again = prepare(DEAP(deap_copy), [1], cache_dir=cache)
    assert "damaged" not in caplog.text
    assert isinstance(again[1].data["eeg"], np.memmap)
    np.testing.assert_array_equal(again[1].data["eeg"], fresh[1].data["eeg"])


def test_flipped_bytes_are_caught_by_verify(deap_copy, tmp_path, caplog):
    cache = tmp_path / "cache"
    prepare(DEAP(deap_copy), [1], cache_dir=cache)
    entry = cache / _entries(cache)[0]
    npy = entry / "gsr.npy"
    raw = bytearray(npy.read_bytes())
    raw[-7] ^= 0x01  # the low mantissa bit of a value: still finite, still the same shape
    npy.write_bytes(bytes(raw))
    fresh = prepare(DEAP(deap_copy), [1], cache_dir=False)
    with caplog.at_level("WARNING", logger="physiosync"):
        out = prepare(DEAP(deap_copy), [1], cache_dir=cache, verify=True)
    assert f"damaged cache entry {entry}" in caplog.text
    assert "gsr.npy: checksum mismatch" in caplog.text
    np.testing.assert_array_equal(out[1].data["gsr"], fresh[1].data["gsr"])
    caplog.clear()
    with caplog.at_level("WARNING", logger="physiosync"):
        prepare(DEAP(deap_copy), [1], cache_dir=cache, verify=True)
    assert "damaged" not in caplog.text


def test_cli_prepare_verify(deap_copy, tmp_path, caplog):
    from physiosync.cli import main

    cache = tmp_path / "cache"
    argv = ["prepare", "deap", str(deap_copy), "--cache-dir", str(cache)]
    assert main(argv) == 0
    entry = cache / _entries(cache)[0]
    raw = bytearray((entry / "eeg.npy").read_bytes())
    raw[-3] ^= 0x01
    (entry / "eeg.npy").write_bytes(bytes(raw))
    caplog.clear()
    with caplog.at_level("WARNING", logger="physiosync"):
        assert main(argv + ["--verify"]) == 0
    assert f"damaged cache entry {entry}" in caplog.text


def test_same_size_and_mtime_source_change_is_a_miss(deap_copy, tmp_path):
    cache = tmp_path / "cache"
    src = deap_copy / "s01.dat"
    before = prepare(DEAP(deap_copy), [1], cache_dir=cache)[1].data["eeg"].copy()
    st = src.stat()
    # Swap two runs of samples inside the data array (offsets 8 KiB apart keep every
    # float64 whole): same size, and the time stamp is restored.
    raw = bytearray(src.read_bytes())
    a, b = len(raw) // 2, len(raw) // 2 + 8192
    raw[a:a + 4096], raw[b:b + 4096] = raw[b:b + 4096], raw[a:a + 4096]
    src.write_bytes(bytes(raw))
    os.utime(src, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert src.stat().st_size == st.st_size and src.stat().st_mtime_ns == st.st_mtime_ns
    after = prepare(DEAP(deap_copy), [1], cache_dir=cache)[1].data["eeg"]
    assert len(_entries(cache)) == 2
    assert not np.array_equal(before, after)


def test_large_source_files_are_keyed_on_a_content_sample(tmp_path, monkeypatch):
    monkeypatch.setattr(prep_mod, "_FULL_HASH_LIMIT", 1024)
    monkeypatch.setattr(prep_mod, "_SAMPLE_BLOCK", 256)
    f = tmp_path / "big.bin"
    f.write_bytes(bytes(range(256)) * 64)  # 16 KiB, sampled
    key = prep_mod._file_identity(f)
    raw = bytearray(f.read_bytes())
    raw[10] ^= 0xFF  # inside the first block: the header
    f.write_bytes(bytes(raw))
    assert prep_mod._file_identity(f)[3] != key[3]


def test_what_the_reader_warned_is_said_again_on_every_cache_hit(deap_copy, tmp_path,
                                                                  caplog):
    """A warning of the reader (e.g. a BDF cut short that lost trials) is kept with the
    entry: a later run served from the cache, which never reads the file, says it too."""
    from physiosync._logging import logger

    cache = tmp_path / "cache"
    dataset = DEAP(deap_copy)
    real = dataset.load_subject

    def load_subject(s):
        if s == 2:
            logger.warning("s02.bdf lost 1 of 4 rated trials: the file was cut short.")
        return real(s)

    dataset.load_subject = load_subject
    with caplog.at_level("WARNING", logger="physiosync"):
        prepare(dataset, cache_dir=cache)
    assert caplog.text.count("lost 1 of 4 rated trials") == 1
    caplog.clear()
    with caplog.at_level("WARNING", logger="physiosync"):
        prepare(DEAP(deap_copy), cache_dir=cache)  # all three served from the cache
    said = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert said == ["s02.bdf lost 1 of 4 rated trials: the file was cut short. (said when "
                    "DEAP subject 2 was prepared; served from the cache)"]


def _unequal_recording(big=None):
    """A recording whose three trials have stimuli of unequal length (as SEED's clips)."""
    import pandas as pd

    from physiosync.datasets.base import ModalityInfo, Recording

    rng = np.random.default_rng(3)
    lengths = (700, 512, 900)
    stim = [rng.normal(5.0, 40.0, size=(4, n)) for n in lengths]
    base = [rng.normal(5.0, 40.0, size=(4, 3 * 128)) for _ in lengths]
    if big is not None:
        stim[big[0]][big[1], 7] = 1e39
    info = ModalityInfo.standard("eeg", 128.0, ["Fp1", "Fp2", "O1", "O2"])
    rec = Recording(1, dataset="deap", source=Path("unequal.dat"), modalities={"eeg": info},
                    baseline={"eeg": base}, stimulus={"eeg": stim},
                    ratings=pd.DataFrame({"valence": [1.0, 5.0, 9.0]}))
    return rec, stim, base


@pytest.mark.parametrize("align", ["start", "end"])
def test_unequal_trials_are_cropped_into_the_output_bit_for_bit(align):
    # the crop goes straight into the float32 output; the result is that of cropping,
    # stacking at float64 and casting, as before
    from physiosync.preprocessing.cache import prepare_recording
    from physiosync.preprocessing.transforms import normalize, remove_baseline

    rec, stim, base = _unequal_recording()
    params = PrepareParams(modalities=("eeg",), baseline="deviation", norm={"eeg": "channel"},
                           stimulus_align=align)
    got = prepare_recording(rec, params).data["eeg"]
    n = 512
    crop = np.stack([s[:, :n] if align == "start" else s[:, s.shape[-1] - n:] for s in stim])
    want = remove_baseline(crop, np.stack(base), 128.0, "deviation",
                           out=np.empty(crop.shape, dtype=np.float32))
    normalize(want, "channel")
    assert got.dtype == np.float32 and got.shape == (3, 4, n)
    np.testing.assert_array_equal(got, want)


def test_unequal_trials_beyond_float32_name_trial_and_channel():
    from physiosync.preprocessing.cache import prepare_recording

    rec, _, _ = _unequal_recording(big=(2, 1))
    params = PrepareParams(modalities=("eeg",), baseline="deviation", norm={"eeg": "none"})
    with pytest.raises(DataFormatError, match=r"unequal\.dat: eeg channel 'Fp2' of trial 2 .*"
                                              r"holds 1e\+39, beyond the float32 range"):
        prepare_recording(rec, params)

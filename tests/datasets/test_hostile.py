"""Hostile and damaged input files: every one ends in a PhysioSyncError naming the file.

Each reader gets a crafted case for the attack it must withstand, and the ``.dat`` and
checkpoint readers get a seeded mini-fuzzer (truncations, byte flips, random bytes).
"""

from __future__ import annotations

import pickle
import struct
import time
import zlib

import numpy as np
import pytest

from physiosync import DataFormatError, PhysioSyncError
from physiosync.datasets import _safe_pickle as _pickle
from physiosync.datasets._safe_pickle import load_pickle, loads_pickle
from physiosync.synthetic._py2_pickle import write_py2_pickle
from conftest import refusal_in_child

FUZZ_SECONDS_PER_INPUT = 10.0  # generous (shared CI machines): catches hangs and blow-ups


def _mutations(data: bytes, n: int, seed: int):
    """*n* seeded mutations of *data*: truncations, byte flips, splices, random bytes.

    The generator of the fuzzing benchmark (``benchmarks/fuzz.py``), shared with it.
    """
    from _benchmarks import load_benchmark

    return load_benchmark("fuzz").mutations(data, n, seed)


# ------------------------------------------------------------------- DEAP .dat pickles
def _deep_tuple_key(levels: int) -> bytes:
    """A protocol-2 pickle of ``{((...(0,)...),): None}`` nested *levels* deep."""
    return b"\x80\x02}K\x00" + pickle.TUPLE1 * levels + b"N" + pickle.SETITEM + pickle.STOP


def test_dat_deep_tuple_key_is_refused_without_crashing(tmp_path):
    # 200,000 levels segfaulted the interpreter (C recursion in hash); run it in a child
    # process so a crash fails this test instead of killing pytest.
    path = tmp_path / "s01.dat"
    path.write_bytes(_deep_tuple_key(200_000))
    out = refusal_in_child("physiosync.datasets._safe_pickle", "load_pickle", path)
    assert out.startswith("REFUSED"), out
    assert str(path) in out and "nested more than" in out


@pytest.mark.parametrize("levels", [1_000, 20_000])
def test_dat_moderately_deep_tuple_gives_data_format_error(levels):
    with pytest.raises(DataFormatError, match=r"x\.dat: .*nested more than 100 levels"):
        loads_pickle(_deep_tuple_key(levels), "x.dat")


def test_dat_nesting_within_the_bound_still_loads():
    obj = loads_pickle(_deep_tuple_key(_pickle.MAX_DEPTH - 1), "x.dat")
    (key,) = obj
    depth = 0
    while isinstance(key, tuple):
        key, depth = key[0], depth + 1
    assert depth == _pickle.MAX_DEPTH - 1 and key == 0


def test_dat_lists_deepened_through_the_memo_are_refused():
    # Lists built first and nested afterwards via memo references: their depth is only
    # known once the stream ends, so the result is checked as a whole.
    parts = [b"\x80\x02]r" + struct.pack("<I", 0)]
    for i in range(1, 5_000):
        parts.append(b"j" + struct.pack("<I", i - 1) + b"]r" + struct.pack("<I", i) + b"a0")
    with pytest.raises(DataFormatError, match=r"y\.dat: .*nested more than"):
        loads_pickle(b"".join(parts) + pickle.STOP, "y.dat")


def test_dat_self_containing_list_is_refused():
    with pytest.raises(DataFormatError, match=r"z\.dat: .*holds itself"):
        loads_pickle(b"\x80\x02]q\x00h\x00a.", "z.dat")


def test_dat_container_size_and_total_bounds(monkeypatch):
    monkeypatch.setattr(_pickle, "MAX_CONTAINER_LEN", 100)
    many = b"\x80\x02](" + b"K\x01" * 101 + pickle.APPENDS + pickle.STOP
    with pytest.raises(DataFormatError, match=r"a\.dat: .*more than 100 items"):
        loads_pickle(many, "a.dat")
    loads_pickle(b"\x80\x02](" + b"K\x01" * 100 + pickle.APPENDS + pickle.STOP, "a.dat")
    monkeypatch.setattr(_pickle, "MAX_ELEMENTS", 150)
    # Two lists of 80 items each: each within the per-container bound, not together.
    two = (b"\x80\x02](" + b"K\x01" * 80 + b"e](" + b"K\x01" * 80 + b"e" + pickle.TUPLE2
           + pickle.STOP)
    with pytest.raises(DataFormatError, match=r"b\.dat: .*in all"):
        loads_pickle(two, "b.dat")


@pytest.fixture(scope="module")
def small_dat(tmp_path_factory):
    rng = np.random.default_rng(0)
    path = tmp_path_factory.mktemp("dat") / "s01.dat"
    write_py2_pickle({"labels": rng.uniform(1, 9, (2, 4)),
                      "data": rng.standard_normal((2, 3, 16))}, path)
    return path.read_bytes()


def test_dat_fuzz_every_outcome_is_success_or_data_format_error(small_dat):
    outcomes = {"ok": 0, "refused": 0}
    for i, data in enumerate(_mutations(small_dat, 400, seed=9)):
        t0 = time.monotonic()
        try:
            loads_pickle(data, f"fuzz{i}.dat")
            outcomes["ok"] += 1
        except DataFormatError as err:
            assert f"fuzz{i}.dat" in str(err)
            outcomes["refused"] += 1
        assert time.monotonic() - t0 < FUZZ_SECONDS_PER_INPUT, i
    assert outcomes["refused"] > 200  # the mutations really do damage the files


# ------------------------------------------------------------------------ checkpoints
@pytest.fixture(scope="module")
def pretrain_ckpt(tmp_path_factory):
    from physiosync.training.checkpoints import save_checkpoint
    from physiosync.params import PretrainConfig
    from physiosync.models.physiosync import PretrainModel

    cfg = PretrainConfig(embed_dim=8, depth=1, n_heads=2, n_prompts=1, projector_dims=(8, 8),
                         cmca_dim=8)
    model = PretrainModel({"eeg": 4, "gsr": 1}, {"eeg": 64, "gsr": 64}, cfg)
    path = tmp_path_factory.mktemp("ck") / "pre.pt"
    save_checkpoint(path, {"kind": "pretrain", "config": model.resolved_config(), "step": 1,
                           "model": model.state_dict()})
    return path


def test_checkpoint_round_trip(pretrain_ckpt):
    from physiosync.training.checkpoints import load_checkpoint

    models, config, meta = load_checkpoint(pretrain_ckpt)
    assert meta["kind"] == "pretrain" and config["n_chans"] == {"eeg": 4, "gsr": 1}
    assert not models["pretrain"].training


def _rewrite(src, dst, **changes):
    import torch

    from physiosync.training.checkpoints import read_checkpoint

    data = read_checkpoint(src)
    for key, value in changes.items():
        if callable(value):
            value(data)
        else:
            data[key] = value
    torch.save(data, dst)
    return dst


def test_checkpoint_with_inflated_config_is_refused_before_allocating(pretrain_ckpt, tmp_path,
                                                                       monkeypatch):
    from physiosync.training.checkpoints import CheckpointError, load_checkpoint

    def inflate(data):
        # 4 channels -> 4 million: the real model would need many GB.
        data["config"] = dict(data["config"], n_chans={"eeg": 4_000_000, "gsr": 1},
                              n_times={"eeg": 64_000_000, "gsr": 64})

    import torch

    from physiosync.models.physiosync import PretrainModel

    path = _rewrite(pretrain_ckpt, tmp_path / "big.pt", config=inflate)
    builds = []
    real = PretrainModel.from_config.__func__

    def spy(cls, d):
        builds.append(str(torch.get_default_device()))
        return real(cls, d)

    monkeypatch.setattr(PretrainModel, "from_config", classmethod(spy))
    with pytest.raises(CheckpointError, match=r"big\.pt: .*has shape .* needs"):
        load_checkpoint(path)
    assert builds == ["meta"]  # only the allocation-free skeleton was built


@pytest.mark.parametrize("change, match", [
    ({"model": {}}, "far more weight tensors than the 0"),
    ({"model": lambda d: d["model"].pop(next(iter(d["model"])))}, "1 weight.s. missing"),
    ({"model": lambda d: d["model"].update(extra=d["model"][next(iter(d["model"]))])},
     "1 unexpected"),
    ({"model": "weights"}, "lacks its configuration"),
    ({"config": None}, "lacks its configuration"),
    ({"config": {"modalities": ["eeg"]}}, "does not describe a model"),
    ({"kind": "nonsense"}, "unknown checkpoint kind"),
])
def test_checkpoint_structural_damage(pretrain_ckpt, tmp_path, change, match):
    from physiosync.training.checkpoints import CheckpointError, load_checkpoint

    path = _rewrite(pretrain_ckpt, tmp_path / "bad.pt", **change)
    with pytest.raises(CheckpointError, match=rf"bad\.pt: .*{match}"):
        load_checkpoint(path)


def test_checkpoint_with_wrongly_shaped_tensor(pretrain_ckpt, tmp_path):
    import torch

    from physiosync.training.checkpoints import CheckpointError, load_checkpoint

    def reshape(data):
        name = next(iter(data["model"]))
        data["model"][name] = torch.zeros(3, 3, 3)

    path = _rewrite(pretrain_ckpt, tmp_path / "shape.pt", model=reshape)
    with pytest.raises(CheckpointError, match=r"shape\.pt: .*has shape \(3, 3, 3\)"):
        load_checkpoint(path)


def test_checkpoint_fuzz_every_outcome_is_success_or_checkpoint_error(pretrain_ckpt,
                                                                      tmp_path):
    raw = pretrain_ckpt.read_bytes()
    outcomes = {"ok": 0, "refused": 0}
    path = tmp_path / "fuzz.pt"
    for i, data in enumerate(_mutations(raw, 300, seed=11)):
        path.write_bytes(data)
        _load_and_count(path, outcomes, i)
    assert outcomes["refused"] > 150


def _load_and_count(path, outcomes, i):
    """Load a fuzzed checkpoint: success or a CheckpointError naming it, in bounded time."""
    from physiosync.training.checkpoints import CheckpointError, load_checkpoint

    t0 = time.monotonic()
    try:
        load_checkpoint(path)
        outcomes["ok"] += 1
    except CheckpointError as err:
        assert str(path) in str(err), err
        outcomes["refused"] += 1
    except PhysioSyncError as err:  # pragma: no cover - reported with the input
        pytest.fail(f"input {i}: {type(err).__name__} instead of CheckpointError: {err}")
    assert time.monotonic() - t0 < FUZZ_SECONDS_PER_INPUT, i


# ------------------------------------------------------- values beyond the float32 range
def test_values_beyond_float32_are_refused_by_prepare(tmp_path):
    from physiosync.datasets import DEAP
    from physiosync.synthetic import make_deap
    from physiosync.preprocessing.cache import prepare

    root = make_deap(tmp_path / "deap", n_subjects=1, n_trials=3, seconds=4.0)
    path = root / "s01.dat"
    obj = load_pickle(path)
    data = np.array(obj["data"])  # float64; 1e39 is finite here but not in float32
    data[1, 5, 3 * 128 + 10] = 1e39  # trial 1, channel 5, inside the stimulus
    write_py2_pickle({"labels": np.array(obj["labels"]), "data": data}, path)
    ds = DEAP(root)
    ch = ds.load_subject(1).ch_names("eeg")[5]
    with pytest.raises(DataFormatError) as info:
        prepare(ds, cache_dir=tmp_path / "cache")
    msg = str(info.value)
    assert str(path) in msg and f"channel {ch!r}" in msg and "trial 1 " in msg
    assert "1e+39" in msg and "float32" in msg
    # Nothing half-done is left in the cache.
    assert not list((tmp_path / "cache").rglob("*.npy"))


# ----------------------------------------------------- BDF with an unknown record count
@pytest.fixture(scope="module")
def bdf_source(tmp_path_factory):
    from physiosync.datasets._deap_bdf import read_participant_ratings
    from physiosync.synthetic import make_deap_bdf

    root = make_deap_bdf(tmp_path_factory.mktemp("bdf"), n_subjects=1, n_trials=4,
                         seconds=4.0, seed=1)
    return root / "s01.bdf", read_participant_ratings(root / "participant_ratings.csv")


def _unknown_records(src, dst, n_records=None, extra=0):
    """Copy *src* to *dst* with n_records = -1, keeping *n_records* records (+ *extra* bytes)."""
    data = bytearray(src.read_bytes())
    n_header = int(data[184:192])
    n_signals = int(data[252:256])
    per_record = sum(int(data[256 + 216 * n_signals + 8 * i:][:8]) for i in range(n_signals))
    record_s = float(data[244:252])
    data[236:244] = b"-1      "
    if n_records is not None:
        data = data[:n_header + 3 * per_record * n_records + extra]
    dst.write_bytes(bytes(data))
    return dst, record_s


def test_bdf_unknown_record_count_complete_file_reads(bdf_source, tmp_path, caplog):
    from physiosync.datasets._deap_bdf import read_deap_bdf

    src, table = bdf_source
    path, _ = _unknown_records(src, tmp_path / "s01.bdf")
    with caplog.at_level("WARNING", logger="physiosync"):
        rec = read_deap_bdf(path, 1, table)
    assert rec.n_trials == read_deap_bdf(src, 1, table).n_trials == 4
    assert "cut short" not in caplog.text


def test_bdf_unknown_record_count_cut_inside_a_record(bdf_source, tmp_path):
    from physiosync.datasets._deap_bdf import read_deap_bdf

    src, table = bdf_source
    path, _ = _unknown_records(src, tmp_path / "s01.bdf", n_records=5, extra=100)
    with pytest.raises(DataFormatError, match=r"s01\.bdf: truncated BDF file: .* -1 \(unknown\)"
                                              r".* 100 bytes into record 6"):
        read_deap_bdf(path, 1, table)


def test_bdf_unknown_record_count_cut_between_trials_warns(bdf_source, tmp_path, caplog):
    import mne

    from physiosync.datasets._deap_bdf import read_deap_bdf

    src, table = bdf_source
    raw = mne.io.read_raw_bdf(src, preload=False, stim_channel="Status", verbose="error")
    status = raw.get_data(picks=["Status"])[0].astype(np.int64) & 0xFF
    onsets = np.flatnonzero((status[1:] == 4) & (status[:-1] != 4)) + 1
    sfreq = raw.info["sfreq"]
    _, record_s = _unknown_records(src, tmp_path / "probe.bdf")
    # Keep whole records up to just before the last trial's baseline: its onset is lost.
    keep = int((onsets[-1] / sfreq - 3.5) // record_s)
    path, _ = _unknown_records(src, tmp_path / "s01.bdf", n_records=keep)
    with caplog.at_level("WARNING", logger="physiosync"):
        rec = read_deap_bdf(path, 1, table)
    assert rec.n_trials == len(onsets) - 1
    assert str(path) in caplog.text and "cut short" in caplog.text
    assert "1 of 4 rated trials" in caplog.text


# ------------------------------------------------------------ DREAMER decompression bombs
def _mat_with_element(path, inner: bytes):
    """A MAT-file of *inner* (an uncompressed data element) in one compressed element."""
    import io

    import scipy.io

    buf = io.BytesIO()
    scipy.io.savemat(buf, {"x": np.zeros(1)})
    body = zlib.compress(inner, 9)
    path.write_bytes(buf.getvalue()[:128] + struct.pack("<II", 15, len(body)) + body)
    return path


def _matrix_element(n_doubles: int) -> bytes:
    """The uncompressed miMATRIX element of a 1 x n_doubles zero matrix named DREAMER."""
    import io

    import scipy.io

    buf = io.BytesIO()
    scipy.io.savemat(buf, {"DREAMER": np.zeros((1, n_doubles))}, do_compression=False)
    return buf.getvalue()[128:]


def test_dreamer_bomb_declaring_too_much_is_refused_before_inflating(tmp_path):
    from physiosync.datasets._matfile import MAX_INFLATION
    from physiosync.datasets.dreamer import DREAMER

    path = _mat_with_element(tmp_path / "DREAMER.mat", _matrix_element(4_000_000))  # 32 MB
    assert path.stat().st_size * MAX_INFLATION < 32_000_000
    with pytest.raises(DataFormatError, match=r"DREAMER\.mat: .* declares 32000\d+ bytes from "
                                              r"\d+ compressed bytes .*exhaust memory"):
        DREAMER(path)


def test_dreamer_stream_inflating_past_its_declared_size_is_refused(tmp_path):
    from physiosync.datasets.dreamer import DREAMER

    inner = _matrix_element(10)
    path = _mat_with_element(tmp_path / "DREAMER.mat", inner + bytes(4 << 20))
    with pytest.raises(DataFormatError, match=rf"DREAMER\.mat: .* inflates beyond the "
                                              rf"{len(inner)} bytes it declares"):
        DREAMER(path)


def test_mat_stream_shorter_than_its_declared_size_is_refused(tmp_path):
    # the uncompressed copy handed to scipy must never be padded with zeros
    from physiosync.datasets._matfile import load_mat

    inner = _matrix_element(1000)
    path = _mat_with_element(tmp_path / "DREAMER.mat", inner[:-400])
    with pytest.raises(DataFormatError, match=rf"DREAMER\.mat: .* inflates to {len(inner) - 400} "
                                              rf"bytes, fewer than the {len(inner)} it declares"):
        load_mat(path, ["DREAMER"], release="r", resave="s")


def test_mat_bytes_written_past_an_element_are_tolerated(tmp_path):
    # MATLAB sometimes writes a few bytes past what a compressed element declares
    from physiosync.datasets._matfile import load_mat

    path = _mat_with_element(tmp_path / "DREAMER.mat", _matrix_element(10) + bytes(16))
    np.testing.assert_array_equal(load_mat(path, ["DREAMER"], release="r", resave="s")["DREAMER"],
                                  np.zeros((1, 10)))


def test_mat_checked_copy_reads_as_scipy_reads_the_file(tmp_path):
    # load_mat hands scipy the checked, inflated copy: same variables, values and order
    import scipy.io

    from physiosync.datasets._matfile import load_mat

    rng = np.random.default_rng(0)
    variables = {"b_eeg2": rng.normal(size=(3, 50)), "a_eeg1": rng.normal(size=(3, 40)),
                 "cells": np.array([np.arange(3.0), np.ones((2, 2))], dtype=object),
                 "rec": {"x": np.arange(4), "name": "clip"}}
    for compress in (True, False):
        path = tmp_path / f"v{compress}.mat"
        scipy.io.savemat(path, variables, do_compression=compress)
        ours = load_mat(path, release="r", resave="s")
        theirs = {k: v for k, v in scipy.io.loadmat(path).items() if not k.startswith("__")}
        assert list(ours) == list(theirs) == list(variables)
        for name in ("b_eeg2", "a_eeg1"):
            np.testing.assert_array_equal(ours[name], theirs[name])
        assert [c.shape for c in ours["cells"].ravel()] == [(1, 3), (2, 2)]
        assert ours["rec"]["name"][0, 0][0] == "clip"
        only = load_mat(path, ["a_eeg1"], release="r", resave="s")
        assert list(only) == ["a_eeg1"]


def test_dreamer_reader_still_reads_the_synthetic_release(dreamer_mat):
    from physiosync.datasets.dreamer import DREAMER

    ds = DREAMER(dreamer_mat)
    assert len(ds) >= 1 and ds.load_subject(ds.subjects[0]).n_trials > 0


# ------------------------------------------------------------ SEED and SEED-IV session files
def _named_zeros_element(name: str, shape) -> bytes:
    """The uncompressed miMATRIX element of a zero matrix *name* of *shape*."""
    import io

    import scipy.io

    buf = io.BytesIO()
    scipy.io.savemat(buf, {name: np.zeros(shape)}, do_compression=False)
    return buf.getvalue()[128:]


def test_seed_bomb_is_refused_before_inflating(tmp_path):
    from physiosync.datasets import SEED

    folder = tmp_path / "Preprocessed_EEG"
    folder.mkdir()
    path = _mat_with_element(folder / "1_20131027.mat",
                             _named_zeros_element("djc_eeg1", (62, 70_000)))  # 35 MB of zeros
    ds = SEED(folder)  # the session files are read when a subject is loaded
    with pytest.raises(DataFormatError, match=r"1_20131027\.mat: .* declares \d+ bytes from "
                                              r"\d+ compressed bytes .*exhaust memory"):
        ds.load_subject(1)
    assert str(path) in str(ds.source_files()[0])


def test_seed_iv_bomb_is_refused_when_the_rate_is_checked(tmp_path):
    from physiosync.datasets import SEEDIV

    folder = tmp_path / "eeg_raw_data" / "1"
    folder.mkdir(parents=True)
    _mat_with_element(folder / "1_20160518.mat", _named_zeros_element("cz_eeg1", (62, 70_000)))
    with pytest.raises(DataFormatError, match=r"1_20160518\.mat: .*exhaust memory"):
        SEEDIV(tmp_path)


def test_seed_iv_readme_is_read_within_a_bound(tmp_path):
    from physiosync.datasets import seed_iv

    path = tmp_path / "ReadMe.txt"
    line = "session1_label = [" + ",".join(["1"] * 24) + "];\n"
    path.write_bytes(line.encode() + b"x" * (3 * seed_iv._MAX_README_BYTES)
                     + b"session2_label = [0];\n")
    assert seed_iv.parse_readme(path) == {"1": (1,) * 24}  # the tail is never read


# ------------------------------------------------------------- AMIGOS decompression bombs
def test_amigos_bomb_declaring_too_much_is_refused_before_inflating(tmp_path):
    from physiosync.datasets import AMIGOS

    (tmp_path / "bomb").mkdir()
    _mat_with_element(tmp_path / "bomb" / "Data_Preprocessed_P01.mat",
                      _matrix_element(4_000_000))
    with pytest.raises(DataFormatError, match=r"Data_Preprocessed_P01\.mat: .* declares "
                                              r"32000\d+ bytes from \d+ compressed bytes"):
        AMIGOS(tmp_path / "bomb").load_subject(1)


def test_amigos_stream_inflating_past_its_declared_size_is_refused(tmp_path):
    from physiosync.datasets import AMIGOS

    inner = _matrix_element(10)
    (tmp_path / "bomb").mkdir()
    path = _mat_with_element(tmp_path / "bomb" / "Data_Preprocessed_P01.mat",
                             inner + bytes(4 << 20))
    with pytest.raises(DataFormatError, match=rf"{path.name}: .* inflates beyond the "
                                              rf"{len(inner)} bytes it declares"):
        AMIGOS(tmp_path / "bomb").load_subject(1)


def test_checkpoint_with_expanded_views_cannot_demand_memory(pretrain_ckpt, tmp_path):
    # A stride-0 view saves one number but claims any shape: a 1 KB file could then
    # describe (and make us allocate) a model of many GB.
    import torch

    from physiosync.training.checkpoints import CheckpointError, load_checkpoint

    def expand(data):
        name = next(k for k, v in data["model"].items() if v.dim() == 2)
        shape = data["model"][name].shape
        data["model"][name] = torch.zeros(1).expand(*shape)

    path = _rewrite(pretrain_ckpt, tmp_path / "view.pt", model=expand)
    with pytest.raises(CheckpointError, match=r"view\.pt: weight .* is a view of 4 stored bytes"):
        load_checkpoint(path)


def test_checkpoint_with_absurd_layer_count_stops_early(pretrain_ckpt, tmp_path):
    from physiosync.training.checkpoints import CheckpointError, load_checkpoint

    def deepen(data):
        data["config"] = dict(data["config"], depth=1_000_000)

    path = _rewrite(pretrain_ckpt, tmp_path / "deep.pt", config=deepen)
    t0 = time.monotonic()
    with pytest.raises(CheckpointError, match=r"deep\.pt: .*(far more weight tensors|"
                                              r"does not describe)"):
        load_checkpoint(path)
    assert time.monotonic() - t0 < 30


_ODD_VALUES = (0, -1, 1, 3, 10**12, 2.5, float("nan"), "", "x", None, [], {}, [1, 2], True)


def test_checkpoint_config_fuzz_every_outcome_is_success_or_checkpoint_error(pretrain_ckpt,
                                                                             tmp_path):
    """Well-formed files whose stored configuration or weights hold odd values."""
    import torch

    from physiosync.training.checkpoints import read_checkpoint

    original = read_checkpoint(pretrain_ckpt)
    rng = np.random.default_rng(5)
    path = tmp_path / "cfg.pt"
    outcomes = {"ok": 0, "refused": 0}
    for i in range(120):
        data = dict(original, config=dict(original["config"]), model=dict(original["model"]))
        for _ in range(int(rng.integers(1, 4))):
            if rng.random() < 0.75:
                key = list(data["config"])[int(rng.integers(len(data["config"])))]
                data["config"][key] = _ODD_VALUES[int(rng.integers(len(_ODD_VALUES)))]
            else:
                key = list(data["model"])[int(rng.integers(len(data["model"])))]
                shape = [int(x) for x in rng.integers(0, 5, size=int(rng.integers(0, 4)))]
                data["model"][key] = torch.zeros(shape)
        torch.save(data, path)
        _load_and_count(path, outcomes, i)
    assert outcomes["refused"] > 60 and outcomes["ok"] > 0


def test_checkpoint_with_a_value_beyond_todays_bounds_names_key_and_file(pretrain_ckpt,
                                                                         tmp_path):
    from physiosync.training.checkpoints import CheckpointError, load_checkpoint

    # e.g. a token size resolved from long windows by an older version
    path = _rewrite(pretrain_ckpt, tmp_path / "old.pt",
                    config=lambda data: data["config"].update(embed_dim=5000))
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"{path}: ")
    assert "embed_dim must be <= 4096, got 5000" in message


# ------------------------------------------------------------ MAHNOB-HCI session.xml
def _billion_laughs(levels: int = 10) -> str:
    lines = ['<?xml version="1.0"?>', "<!DOCTYPE session [", '<!ENTITY l0 "lol">']
    lines += [f'<!ENTITY l{i} "{f"&l{i - 1};" * 10}">' for i in range(1, levels)]
    return "\n".join(lines + ["]>", f'<session feltVlnc="&l{levels - 1};" feltArsl="5">'
                              '<subject id="1"/></session>'])


def test_mahnob_entity_bomb_is_refused_before_expanding(tmp_path):
    # 10**9 "lol"s once expanded; run in a child so a regression cannot take pytest down
    folder = tmp_path / "Sessions" / "2"
    folder.mkdir(parents=True)
    (folder / "session.xml").write_text(_billion_laughs())
    t0 = time.monotonic()
    out = refusal_in_child("physiosync.datasets", "MAHNOB", tmp_path)
    assert out.startswith("REFUSED"), out
    assert str(folder / "session.xml") in out and "document type declaration" in out
    assert time.monotonic() - t0 < 60


def test_mahnob_session_xml_fuzz_every_outcome_is_success_or_data_format_error(tmp_path):
    from physiosync.datasets.mahnob import read_session

    seed = (b'<?xml version="1.0" encoding="utf-8"?>\n<session sessionId="2" isStim="1" '
            b'cutNr="2" cutLenSec="60.0" mediaFile="53.avi" feltEmo="4" feltArsl="6" '
            b'feltVlnc="7" feltCtrl="5" feltPred="5">\n  <subject id="1"/>\n  <track '
            b'type="Physiological" filename="Part_1_S_Trial1_emotion.bdf"/>\n</session>\n')
    folder = tmp_path / "2"
    folder.mkdir()
    refused = 0
    for i, data in enumerate(_mutations(seed, 300, seed=11)):
        (folder / "session.xml").write_bytes(data)
        t0 = time.monotonic()
        try:
            read_session(folder)
        except DataFormatError as err:
            assert str(folder / "session.xml") in str(err) and "\n" not in str(err), i
            refused += 1
        assert time.monotonic() - t0 < FUZZ_SECONDS_PER_INPUT, i
    assert refused > 100  # the mutations really do damage the files

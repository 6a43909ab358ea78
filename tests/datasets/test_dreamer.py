"""The DREAMER.mat reader and synthetic writer, against golden values and bad input."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.io
from scipy.signal import find_peaks

from physiosync import DataFormatError, DataNotFoundError, PhysioSyncError, UnknownSubjectError
from physiosync.datasets import DREAMER
from physiosync.synthetic._ratings import draw_ratings
from physiosync.synthetic.dreamer import make_dreamer, synthetic_clip_seconds

SEED = 5
N_SUBJECTS, N_TRIALS, SECONDS = 3, 4, 10.0
EEG_NAMES = ["AF3", "F7", "F3", "FC5", "T7", "P7", "O1", "O2", "P8", "T8", "FC6", "F4", "F8",
             "AF4"]
TOP_FIELDS = ("Data", "EEG_SamplingRate", "ECG_SamplingRate", "EEG_Electrodes",
              "noOfSubjects", "noOfVideoSequences", "Disclaimer", "Provider", "Version",
              "Acknowledgement")
SUBJECT_FIELDS = ("Age", "Gender", "EEG", "ECG", "ScoreValence", "ScoreArousal",
                  "ScoreDominance")


@pytest.fixture(scope="session")
def dreamer_file(tmp_path_factory):
    """A small DREAMER.mat: 3 subjects x 4 clips of about 10 s, 61 s baselines."""
    return make_dreamer(tmp_path_factory.mktemp("dreamer"), n_subjects=N_SUBJECTS,
                        n_trials=N_TRIALS, seconds=SECONDS, effect=2.0, seed=SEED)


@pytest.fixture(scope="session")
def dreamer(dreamer_file):
    return DREAMER(dreamer_file)


@pytest.fixture(scope="session")
def tiny_file(tmp_path_factory):
    """A very small DREAMER.mat (2 subjects x 2 clips, 2 s baselines) to corrupt."""
    return make_dreamer(tmp_path_factory.mktemp("tiny") / "tiny.mat", n_subjects=2,
                            n_trials=2, seconds=3.0, seed=1, baseline_seconds=2.0)


def _raw(path):
    """The file as public loaders see it (default loadmat, [0, 0] hops)."""
    return scipy.io.loadmat(path)["DREAMER"]


def _save(dreamer, path):
    scipy.io.savemat(path, {"DREAMER": dreamer}, do_compression=True)
    return path


def _drop_field(struct, field):
    """A copy of a loaded 1x1 MATLAB struct without *field*."""
    names = [n for n in struct.dtype.names if n != field]
    out = np.empty(struct.shape, dtype=[(n, object) for n in names])
    for n in names:
        out[n] = struct[n]
    return out


def _expect(exc_type, path, match=None):
    """Reading *path* (and every subject) raises *exc_type*, naming the file."""
    with pytest.raises(exc_type, match=match) as info:
        for _ in DREAMER(path):
            pass
    assert isinstance(info.value, PhysioSyncError)
    assert path.name in str(info.value)
    assert info.value.__cause__ is None  # no scipy traceback chained in
    return info.value


# ----------------------------------------------------------------- golden values
def test_subjects_channels_and_rates(dreamer, dreamer_file):
    assert dreamer.subjects == [1, 2, 3] and len(dreamer) == 3
    assert dreamer.n_trials == N_TRIALS
    assert dreamer.source_files() == [dreamer_file]
    assert dreamer_file.name == "DREAMER.mat"
    rec = dreamer.load_subject(2)
    assert rec.dataset == "DREAMER" and rec.subject == 2 and rec.source == dreamer_file
    assert rec.modalities == ("eeg", "ecg")
    assert rec.ch_names("eeg") == EEG_NAMES
    assert rec.ch_names("ecg") == ["ECG_left", "ECG_right"]
    assert rec.sfreq("eeg") == 128.0 and rec.sfreq("ecg") == 256.0
    assert rec.info("eeg").unit == "µV" and rec.info("ecg").unit == "µV"
    assert rec.info("ecg").ch_type == "ecg"
    assert "3 subjects" in repr(dreamer) and "256 Hz" in repr(dreamer)


def test_baselines_are_61_s_per_trial(dreamer):
    rec = dreamer.load_subject(1)
    for t in range(N_TRIALS):
        assert rec.baseline("eeg", t).shape == (14, 61 * 128) == (14, 7808)
        assert rec.baseline("ecg", t).shape == (2, 61 * 256) == (2, 15616)
    # each clip has its own baseline, not one shared segment
    assert not np.array_equal(rec.baseline("eeg", 0), rec.baseline("eeg", 1))


def test_stimulus_lengths_vary_by_clip_not_by_subject(dreamer):
    clip_s = synthetic_clip_seconds(N_TRIALS, SECONDS, SEED)
    assert len(set(clip_s.tolist())) > 1  # variable length
    assert np.all((clip_s >= 0.7 * SECONDS) & (clip_s <= 1.3 * SECONDS))
    for s in dreamer.subjects:
        rec = dreamer.load_subject(s)
        np.testing.assert_array_equal(rec.stimulus_lengths("eeg"), clip_s * 128)
        np.testing.assert_array_equal(rec.stimulus_lengths("ecg"), clip_s * 256)


def test_signals_match_the_file_and_are_not_copied(dreamer, dreamer_file):
    raw = _raw(dreamer_file)[0, 0]
    rec = dreamer.load_subject(3)
    subj = raw["Data"][0, 2]
    for k in (0, 3):
        np.testing.assert_array_equal(rec.stimulus("eeg", k),
                                      subj["EEG"][0, 0]["stimuli"][0, 0][k, 0].T)
        np.testing.assert_array_equal(rec.baseline("ecg", k),
                                      subj["ECG"][0, 0]["baseline"][0, 0][k, 0].T)
    # loading twice hands out views of the same arrays, read once in __init__
    again = dreamer.load_subject(3)
    assert np.shares_memory(rec.stimulus("eeg", 1), again.stimulus("eeg", 1))
    assert rec.stimulus("ecg", 0).flags.c_contiguous  # (channels, samples) rows
    # Emotiv-like DC offset around 4200 µV on every EEG channel, none on the ECG
    means = rec.stimulus("eeg", 0).mean(axis=1)
    assert np.all((means > 3800) & (means < 4600))
    assert abs(rec.stimulus("ecg", 0).mean()) < 1000


def test_ecg_is_a_real_ecg_and_not_eeg(dreamer):
    rec = dreamer.load_subject(1)
    for t in range(N_TRIALS):
        ecg = rec.stimulus("ecg", t)[0]
        peaks, _ = find_peaks(ecg, height=0.5 * ecg.max(), distance=int(0.3 * 256))
        seconds = ecg.size / 256
        rate = len(peaks) / seconds * 60
        assert 40 < rate < 120, rate  # a heart rate in beats per minute
        ibi = np.diff(peaks) / 256
        assert ibi.std() / ibi.mean() < 0.2  # regular R-R intervals
        assert np.median(ecg[peaks]) > 5 * np.median(np.abs(ecg - np.median(ecg)))
        # not EEG channels AF3/F7 in disguise (the reference's bug), nor a +-1 sequence
        eeg = rec.stimulus("eeg", t)
        assert ecg.size == 2 * eeg.shape[1]
        for ch in (0, 1):
            r = np.corrcoef(ecg[::2], eeg[ch])[0, 1]
            assert abs(r) < 0.3
        assert len(np.unique(np.round(ecg, 3))) > 100


def test_ratings_round_trip(dreamer, dreamer_file):
    expected = draw_ratings(SEED, N_SUBJECTS, N_TRIALS, low=1, high=5, integer=True,
                            n_scales=3)
    raw = _raw(dreamer_file)[0, 0]
    for s in dreamer.subjects:
        ratings = dreamer.load_subject(s).ratings
        assert list(ratings.columns) == ["valence", "arousal", "dominance"]
        assert ratings.index.tolist() == list(range(N_TRIALS))
        np.testing.assert_array_equal(ratings.to_numpy(), expected[s - 1])
        subj = raw["Data"][0, s - 1]
        np.testing.assert_array_equal(ratings["arousal"], subj["ScoreArousal"][0, 0][:, 0])
        values = ratings.to_numpy()
        assert np.all((values >= 1) & (values <= 5) & (values == np.rint(values)))


def test_demographics(dreamer, dreamer_file):
    demo = dreamer.demographics
    assert demo.index.tolist() == [1, 2, 3] and list(demo.columns) == ["age", "gender"]
    raw = _raw(dreamer_file)[0, 0]["Data"][0, 1]
    assert dreamer.age(2) == raw["Age"][0] and dreamer.age(2).isdigit()
    assert 18 <= int(dreamer.age(2)) <= 40
    assert dreamer.gender(2) == raw["Gender"][0] and dreamer.gender(2) in ("male", "female")
    assert set(demo["gender"]) <= {"male", "female"}
    assert "Synthetic" in dreamer.description["Disclaimer"]


def test_folder_or_file_path(dreamer_file):
    a, b = DREAMER(dreamer_file.parent), DREAMER(dreamer_file)
    assert a.path == b.path == dreamer_file
    np.testing.assert_array_equal(a.load_subject(1).stimulus("eeg", 0),
                                  b.load_subject(1).stimulus("eeg", 0))


def test_file_is_read_once(dreamer_file, monkeypatch):
    calls = []
    original = scipy.io.loadmat

    def counting(*args, **kwargs):
        calls.append(args)
        return original(*args, **kwargs)

    monkeypatch.setattr(scipy.io, "loadmat", counting)
    ds = DREAMER(dreamer_file)
    recs = list(ds) + [ds.load_subject(1), ds.load_subject(3)]
    assert len(recs) == 5 and [r.subject for r in recs[:3]] == [1, 2, 3]
    assert len(calls) == 1


# ------------------------------------------------------------ raw file layout
def test_struct_layout_default_loadmat(dreamer_file):
    m = scipy.io.loadmat(dreamer_file)
    d = m["DREAMER"]
    assert d.shape == (1, 1) and d.dtype.names == TOP_FIELDS
    top = d[0, 0]
    assert top["EEG_SamplingRate"][0, 0] == 128 and top["ECG_SamplingRate"][0, 0] == 256
    assert top["noOfSubjects"][0, 0] == N_SUBJECTS
    assert top["noOfVideoSequences"][0, 0] == N_TRIALS
    assert top["EEG_Electrodes"].shape == (1, 14)
    assert [e[0] for e in top["EEG_Electrodes"][0]] == EEG_NAMES
    assert top["Data"].shape == (1, N_SUBJECTS) and top["Data"].dtype == object
    subj = top["Data"][0, 0]
    assert subj.shape == (1, 1) and subj.dtype.names == SUBJECT_FIELDS
    assert subj["Age"][0, 0].dtype.kind == "U"  # MATLAB char
    for field, n_ch in (("EEG", 14), ("ECG", 2)):
        sig = subj[field][0, 0]
        assert sig.dtype.names == ("baseline", "stimuli")
        for part in ("baseline", "stimuli"):
            cell = sig[part][0, 0]
            assert cell.shape == (N_TRIALS, 1) and cell.dtype == object
            assert cell[0, 0].dtype == np.float64 and cell[0, 0].shape[1] == n_ch
    assert subj["ScoreValence"][0, 0].shape == (N_TRIALS, 1)
    # the spec's example hop chain
    x = m["DREAMER"][0, 0]["Data"][0, 1]["EEG"][0, 0]["stimuli"][0, 0][2, 0]
    clip_s = synthetic_clip_seconds(N_TRIALS, SECONDS, SEED)
    assert x.shape == (clip_s[2] * 128, 14)
    assert subj["ECG"][0, 0]["baseline"][0, 0][1, 0].shape == (15616, 2)


def test_positional_access(dreamer_file):
    m = scipy.io.loadmat(dreamer_file)
    clip_s = synthetic_clip_seconds(N_TRIALS, SECONDS, SEED)
    s, k = 1, 3
    # EEGain style: Data=0, EEG=2, stimuli=1, ScoreValence=4, ScoreArousal=5
    eeg = m["DREAMER"][0][0][0][0][s][0][0][2][0][0][1][k][0]
    assert eeg.shape == (clip_s[k] * 128, 14)
    valence = m["DREAMER"][0][0][0][0][s][0][0][4]
    assert valence.shape == (N_TRIALS, 1)
    electrodes = m["DREAMER"][0][0][3][0]
    assert [e[0] for e in electrodes] == EEG_NAMES


def test_attribute_access_squeeze_me(dreamer_file):
    d = scipy.io.loadmat(dreamer_file, squeeze_me=True, struct_as_record=False)["DREAMER"]
    clip_s = synthetic_clip_seconds(N_TRIALS, SECONDS, SEED)
    assert d.EEG_SamplingRate == 128 and d.ECG_SamplingRate == 256
    assert list(d.EEG_Electrodes) == EEG_NAMES
    assert len(d.Data) == N_SUBJECTS
    assert d.Data[2].EEG.stimuli[1].shape == (clip_s[1] * 128, 14)
    assert d.Data[2].ECG.stimuli[1].shape == (clip_s[1] * 256, 2)
    assert d.Data[0].EEG.baseline[0].shape == (7808, 14)
    assert d.Data[0].ScoreValence.shape == (N_TRIALS,)
    assert d.Data[0].Gender in ("male", "female")


# ------------------------------------------------------------------------- MNE
def test_to_raw(dreamer):
    rec = dreamer.load_subject(1)
    clip_s = synthetic_clip_seconds(N_TRIALS, SECONDS, SEED)
    for modality, rate, n_ch in (("eeg", 128, 14), ("ecg", 256, 2)):
        raw = rec.to_raw(modality)
        assert raw.info["sfreq"] == rate and len(raw.ch_names) == n_ch
        assert raw.n_times == int(N_TRIALS * 61 * rate + clip_s.sum() * rate)
        assert set(raw.get_channel_types()) == {modality}
        assert len(raw.annotations) == 2 * N_TRIALS
        assert raw.annotations.description[1] == "trial_00/stimulus"
        np.testing.assert_allclose(raw.get_data()[:, 0], rec.baseline(modality, 0)[:, 0] * 1e-6)


def test_mne_info_says_the_eeg_is_raw_emotiv_data(dreamer):
    from mne.io.constants import FIFF

    rec = dreamer.load_subject(1)
    eeg = rec.to_epochs("eeg").info
    # as recorded: the headset's own band, its CMS/DRL reference, nothing by the release
    assert eeg["highpass"] == 0.2 and eeg["lowpass"] == 45.0
    assert eeg["custom_ref_applied"] == FIFF.FIFFV_MNE_CUSTOM_REF_OFF
    assert "raw Emotiv EPOC EEG" in eeg["description"]
    ecg = rec.to_epochs("ecg").info
    assert ecg["highpass"] == 0.0 and ecg["lowpass"] == 128.0 and not ecg["description"]


def test_to_epochs_crop_to_the_shortest_clip(dreamer):
    rec = dreamer.load_subject(2)
    shortest = int(synthetic_clip_seconds(N_TRIALS, SECONDS, SEED).min())
    for modality, rate in (("eeg", 128), ("ecg", 256)):
        epochs = rec.to_epochs(modality)
        assert len(epochs) == N_TRIALS and epochs.info["sfreq"] == rate
        assert epochs.tmin == pytest.approx(-61.0)
        assert epochs.get_data().shape[-1] == (61 + shortest) * rate
        assert epochs.metadata["valence"].tolist() == rec.ratings["valence"].tolist()
        k = int(np.argmax(rec.stimulus_lengths(modality)))
        np.testing.assert_allclose(epochs.get_data()[k, :, -1],
                                   rec.stimulus(modality, k)[:, shortest * rate - 1] * 1e-6)


# ---------------------------------------------------------------------- writer
def test_writer_paths_atomic_and_deterministic(tmp_path):
    kwargs = dict(n_subjects=1, n_trials=2, seconds=2.0, seed=9, baseline_seconds=1.0)
    a = make_dreamer(tmp_path / "a", **kwargs)
    b = make_dreamer(tmp_path / "b" / "custom.mat", **kwargs)
    assert a == tmp_path / "a" / "DREAMER.mat" and b == tmp_path / "b" / "custom.mat"
    # no temporary file; the list of the files physiosync wrote
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == [".physiosync-files",
                                                                  "DREAMER.mat"]
    ra, rb = DREAMER(a).load_subject(1), DREAMER(b).load_subject(1)
    np.testing.assert_array_equal(ra.stimulus("ecg", 1), rb.stimulus("ecg", 1))
    assert ra.baseline("eeg", 0).shape == (14, 128) and ra.baseline("ecg", 0).shape == (2, 256)
    with open(a, "rb") as f:
        assert f.read(19) == b"MATLAB 5.0 MAT-file"
    with pytest.raises(PhysioSyncError, match="n_subjects"):
        make_dreamer(tmp_path / "c", n_subjects=24)
    with pytest.raises(PhysioSyncError, match="baseline_seconds"):
        make_dreamer(tmp_path / "c", baseline_seconds=0)


# ------------------------------------------------------------------- bad input
def test_missing_file_and_folder(tmp_path):
    with pytest.raises(DataNotFoundError, match="nothere.mat"):
        DREAMER(tmp_path / "nothere.mat")
    (tmp_path / "other.mat").write_bytes(b"x")
    with pytest.raises(DataNotFoundError, match="other.mat") as info:
        DREAMER(tmp_path)
    assert "DREAMER.mat" in str(info.value) and isinstance(info.value, PhysioSyncError)


@pytest.mark.parametrize("cut", [0, 60, 128, 131, 5000, "half", -1])
def test_truncated_file(dreamer_file, tmp_path, cut):
    data = dreamer_file.read_bytes()
    n = len(data) // 2 if cut == "half" else len(data) + cut if cut < 0 else cut
    path = tmp_path / "truncated.mat"
    path.write_bytes(data[:n])
    err = _expect(DataFormatError, path)
    assert any(w in str(err) for w in ("truncated", "shorter than"))


def test_garbage_bytes(tmp_path):
    path = tmp_path / "garbage.mat"
    path.write_bytes(np.random.default_rng(0).bytes(4096))
    err = _expect(DataFormatError, path, match="not a MATLAB v5 MAT-file")
    assert "expected" in str(err)


def test_corrupt_compressed_body(tiny_file, tmp_path):
    data = bytearray(tiny_file.read_bytes())
    data[400:440] = bytes(40)  # zero some compressed bytes after a valid header
    path = tmp_path / "corrupt.mat"
    path.write_bytes(bytes(data))
    err = _expect(DataFormatError, path, match="truncated or corrupt")
    assert "MATLAB v5" in str(err)


@pytest.mark.parametrize("layout", ["plain", "matlab73"])
def test_hdf5_v73_file(tmp_path, layout):
    signature = b"\x89HDF\r\n\x1a\n"
    if layout == "plain":
        body = signature + bytes(1000)
    else:  # MATLAB's v7.3 files: 512-byte text user block, then the HDF5 superblock
        header = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Jan  1 2018 HDF5"
        body = header.ljust(512, b" ") + signature + bytes(1000)
    path = tmp_path / "v73.mat"
    path.write_bytes(body)
    err = _expect(DataFormatError, path, match="v7.3")
    assert "v5" in str(err)


def test_missing_variable(tiny_file, tmp_path):
    path = tmp_path / "novar.mat"
    scipy.io.savemat(path, {"dreamer": np.zeros(3)})
    _expect(DataFormatError, path, match="no variable 'DREAMER'")


def test_missing_top_field(tiny_file, tmp_path):
    d = _drop_field(_raw(tiny_file), "EEG_SamplingRate")
    err = _expect(DataFormatError, _save(d, tmp_path / "notop.mat"), match="EEG_SamplingRate")
    assert "Acknowledgement" in str(err)  # lists the expected fields


def test_missing_subject_field(tiny_file, tmp_path):
    d = _raw(tiny_file)
    d[0, 0]["Data"][0, 1] = _drop_field(d[0, 0]["Data"][0, 1], "ScoreArousal")
    err = _expect(DataFormatError, _save(d, tmp_path / "nofield.mat"), match="'ScoreArousal'")
    assert "Data{2}" in str(err) and "ScoreDominance" in str(err)


@pytest.mark.parametrize("field,n_ch,part", [("EEG", 13, "stimuli"), ("ECG", 3, "baseline"),
                                             ("EEG", 14, "transposed")])
def test_wrong_channel_count(tiny_file, tmp_path, field, n_ch, part):
    d = _raw(tiny_file)
    sig = d[0, 0]["Data"][0, 0][field][0, 0]
    cell = sig["stimuli" if part == "transposed" else part][0, 0]
    arr = cell[1, 0]
    if part == "transposed":
        cell[1, 0] = np.ascontiguousarray(arr.T)  # channels x samples: wrong orientation
    else:
        cell[1, 0] = np.tile(arr, (1, 2))[:, :n_ch]
    err = _expect(DataFormatError, _save(d, tmp_path / "channels.mat"))
    expected = 14 if field == "EEG" else 2
    assert f"samples x {expected}" in str(err) and f"{field}." in str(err)


def test_wrong_electrode_count(tiny_file, tmp_path):
    d = _raw(tiny_file)
    d["EEG_Electrodes"][0, 0] = d[0, 0]["EEG_Electrodes"][:, :13]
    _expect(DataFormatError, _save(d, tmp_path / "electrodes.mat"), match="13 electrode")


def test_cell_counts_must_match(tiny_file, tmp_path):
    d = _raw(tiny_file)
    sig = d[0, 0]["Data"][0, 1]["ECG"][0, 0]
    sig["stimuli"][0, 0] = sig["stimuli"][0, 0][:1]
    err = _expect(DataFormatError, _save(d, tmp_path / "cells.mat"), match="1 cell")
    assert "ECG.stimuli" in str(err) and "noOfVideoSequences is 2" in str(err)

    d = _raw(tiny_file)
    d[0, 0]["Data"][0, 0]["ScoreDominance"][0, 0] = np.array([[1.0], [2.0], [3.0]])
    _expect(DataFormatError, _save(d, tmp_path / "scores.mat"), match="3 score")

    d = _raw(tiny_file)
    d["noOfSubjects"][0, 0] = np.array([[23.0]])
    _expect(DataFormatError, _save(d, tmp_path / "nsubj.mat"), match="noOfSubjects is 23")


def test_nan_in_signal(tiny_file, tmp_path):
    d = _raw(tiny_file)
    arr = d[0, 0]["Data"][0, 1]["EEG"][0, 0]["baseline"][0, 0][0, 0]
    arr[10, 3] = np.nan
    path = _save(d, tmp_path / "nan.mat")
    ds = DREAMER(path)
    assert ds.load_subject(1).n_trials == 2  # the other subject is fine
    with pytest.raises(DataFormatError, match="non-finite") as info:
        ds.load_subject(2)
    assert path.name in str(info.value) and "EEG.baseline{1}" in str(info.value)


def test_non_finite_score(tiny_file, tmp_path):
    d = _raw(tiny_file)
    d[0, 0]["Data"][0, 0]["ScoreValence"][0, 0][1, 0] = np.inf
    _expect(DataFormatError, _save(d, tmp_path / "score.mat"), match="non-finite score")


@pytest.mark.parametrize("subject", [0, 4, -1, 1.5, "1", None])
def test_unknown_subject(dreamer, dreamer_file, subject):
    with pytest.raises(UnknownSubjectError) as info:
        dreamer.load_subject(subject)
    assert isinstance(info.value, PhysioSyncError)
    assert dreamer_file.name in str(info.value)
    with pytest.raises(UnknownSubjectError):
        dreamer.age(subject)

"""The DEAP preprocessed-release reader, against golden values and bad input."""

import pickle

import mne
import numpy as np
import pytest

from physiosync import DataFormatError, DataNotFoundError, PhysioSyncError, UnknownSubjectError
from physiosync.datasets import DEAP
from physiosync.datasets._channels import DEAP_DAT_CHANNELS
from physiosync.synthetic._py2_pickle import write_py2_pickle


def test_golden_layout(deap_dat_dir):
    deap = DEAP(deap_dat_dir)
    assert deap.format == "dat"
    assert deap.subjects == [1, 2, 3]
    rec = deap.load_subject(2)
    assert rec.subject == 2 and rec.n_trials == 4
    assert rec.modalities == ("eeg", "eog", "emg", "gsr", "resp", "ppg", "temp")
    assert rec.ch_names("eeg")[:4] == ["Fp1", "AF3", "F3", "F7"]
    assert rec.ch_names("eeg")[-1] == "O2" and len(rec.ch_names("eeg")) == 32
    assert rec.ch_names("eog") == ["hEOG", "vEOG"] and rec.ch_names("gsr") == ["GSR"]
    assert all(rec.sfreq(m) == 128.0 for m in rec.modalities)
    assert rec.baseline("eeg", 0).shape == (32, 384)
    assert rec.stimulus("eeg", 3).shape == (32, 1280)
    assert rec.stimulus("temp", 1).shape == (1, 1280)
    assert list(rec.ratings.columns) == ["valence", "arousal", "dominance", "liking"]
    assert rec.ratings.index.tolist() == [0, 1, 2, 3]


def test_baseline_and_stimulus_are_views_of_the_file(deap_dat_dir):
    from physiosync.datasets._safe_pickle import load_pickle

    raw = load_pickle(deap_dat_dir / "s01.dat")
    rec = DEAP(deap_dat_dir).load_subject(1)
    np.testing.assert_array_equal(rec.baseline("gsr", 2), raw["data"][2, 36:37, :384])
    np.testing.assert_array_equal(rec.stimulus("eeg", 1), raw["data"][1, :32, 384:])
    np.testing.assert_array_equal(rec.ratings.to_numpy(), raw["labels"])
    assert np.shares_memory(rec.stimulus_array("eeg"), raw["data"]) is False  # separate loads
    assert not rec.stimulus("eeg", 0).flags.owndata


def test_stimulus_is_the_last_60_s(tmp_path):
    data = np.zeros((2, 40, 384 + 7680 + 128))
    data[:, :, -7680:] = 1.0
    write_py2_pickle({"labels": np.full((2, 4), 5.0), "data": data}, tmp_path / "s05.dat")
    rec = DEAP(tmp_path).load_subject(5)
    assert rec.stimulus("eeg", 0).shape == (32, 7680)
    assert np.all(rec.stimulus("eeg", 0) == 1.0)


def test_units_and_mne_objects(deap_dat_dir):
    rec = DEAP(deap_dat_dir).load_subject(1)
    eeg = rec.stimulus("eeg", 0)
    assert 1 < eeg.std() < 200  # microvolts
    raw = rec.to_raw("eeg")
    assert raw.info["sfreq"] == 128.0
    assert set(raw.get_channel_types()) == {"eeg"}
    np.testing.assert_allclose(raw.get_data()[:, 384:384 + 1280], eeg * 1e-6)
    assert raw.get_montage() is not None
    pos = raw.get_montage().get_positions()["ch_pos"]
    assert np.linalg.norm(pos["Cz"]) > 0
    events, ids = mne.events_from_annotations(raw, verbose="error")
    assert len(events) == 8 and "trial_03/stimulus" in ids
    types = {m: rec.to_raw(m).get_channel_types()[0] for m in rec.modalities}
    assert types == {"eeg": "eeg", "eog": "eog", "emg": "emg", "gsr": "gsr", "resp": "resp",
                     "ppg": "bio", "temp": "temperature"}
    gsr = rec.to_raw("gsr")
    assert gsr.info["chs"][0]["unit"] == mne.io.constants.FIFF.FIFF_UNIT_OHM
    epochs = rec.to_epochs("eeg")
    assert epochs.get_data().shape == (4, 32, 384 + 1280)
    assert epochs.tmin == pytest.approx(-3.0)
    assert list(epochs.metadata["trial"]) == [0, 1, 2, 3]
    np.testing.assert_allclose(epochs.metadata["valence"], rec.ratings["valence"])
    assert epochs.to_data_frame(time_format=None).shape[0] > 0


def test_mne_info_says_the_release_is_band_passed_and_average_referenced(deap_dat_dir):
    from mne.io.constants import FIFF

    rec = DEAP(deap_dat_dir).load_subject(1)
    for inst in (rec.to_epochs("eeg"), rec.to_raw("eeg")):
        # the release's EEG: 4-45 Hz, common average reference (not MNE's 0 Hz / Nyquist)
        assert inst.info["highpass"] == 4.0 and inst.info["lowpass"] == 45.0
        assert inst.info["custom_ref_applied"] == FIFF.FIFFV_MNE_CUSTOM_REF_ON
        assert "band-passed 4-45 Hz" in inst.info["description"]
    # its peripheral signals were only down-sampled: no filter, the recording's reference
    gsr = rec.to_epochs("gsr").info
    assert gsr["highpass"] == 0.0 and gsr["lowpass"] == 64.0
    assert gsr["custom_ref_applied"] == FIFF.FIFFV_MNE_CUSTOM_REF_OFF
    assert gsr["description"] == "DEAP preprocessed release: down-sampled to 128 Hz"


def test_auto_detects_top_level_folder(deap_dat_dir):
    deap = DEAP(deap_dat_dir.parent)
    assert deap.root == deap_dat_dir and deap.subjects == [1, 2, 3]


def test_stray_files_are_ignored(tmp_path, deap_dat_dir):
    for name in ("s01.dat", "s03.dat"):
        (tmp_path / name).write_bytes((deap_dat_dir / name).read_bytes())
    for stray in ("notes.dat", "s1.dat", "s99.dat", "s02.dat.bak", ".DS_Store", "README"):
        (tmp_path / stray).write_text("not a subject")
    deap = DEAP(tmp_path)
    assert deap.subjects == [1, 3]


def test_missing_folder_and_empty_folder(tmp_path):
    with pytest.raises(DataNotFoundError, match="does not exist"):
        DEAP(tmp_path / "nope")
    (tmp_path / "junk.txt").write_text("x")
    with pytest.raises(DataNotFoundError, match=r"No DEAP subject files.*" + tmp_path.name):
        DEAP(tmp_path)


def test_unknown_and_missing_subjects(deap_dat_dir):
    deap = DEAP(deap_dat_dir)
    with pytest.raises(UnknownSubjectError, match="no subject 33"):
        deap.load_subject(33)
    with pytest.raises(UnknownSubjectError):
        deap.load_subject("one")
    with pytest.raises(DataNotFoundError, match=r"s07\.dat is missing"):
        deap.load_subject(7)


def _write(tmp_path, data=None, labels=None, name="s04.dat", obj=None):
    if obj is None:
        obj = {"labels": labels if labels is not None else np.full((2, 4), 5.0),
               "data": data if data is not None else np.zeros((2, 40, 640))}
    write_py2_pickle(obj, tmp_path / name)
    return DEAP(tmp_path)


@pytest.mark.parametrize("case,match", [
    ("channels", r"s04\.dat.*39 channels.*expected 40"),
    ("no_room", r"s04\.dat.*no room.*baseline"),
    ("labels_mismatch", r"s04\.dat.*'labels' has shape \(3, 4\).*2 trials"),
    ("nan", r"s04\.dat.*non-finite"),
    ("inf", r"s04\.dat.*non-finite"),
    ("bad_ratings", r"s04\.dat.*non-finite ratings"),
    ("keys", r"s04\.dat.*expected a dict with keys 'data' and 'labels'"),
    ("ndim", r"s04\.dat.*'data' is a float64 array of shape \(40, 640\)"),
])
def test_bad_files(tmp_path, case, match):
    data, labels, obj = np.zeros((2, 40, 640)), np.full((2, 4), 5.0), None
    if case == "channels":
        data = np.zeros((2, 39, 640))
    elif case == "no_room":
        data = np.zeros((2, 40, 384))
    elif case == "labels_mismatch":
        labels = np.full((3, 4), 5.0)
    elif case == "nan":
        data[1, 3, 500] = np.nan
    elif case == "inf":
        data[0, 36, 10] = np.inf
    elif case == "bad_ratings":
        labels[1, 2] = np.nan
    elif case == "keys":
        obj = {"data": data}
    elif case == "ndim":
        data = np.zeros((40, 640))
    deap = _write(tmp_path, data, labels, obj=obj)
    with pytest.raises(DataFormatError, match=match):
        deap.load_subject(4)


def test_truncated_and_corrupt_files(tmp_path, deap_dat_dir):
    blob = (deap_dat_dir / "s01.dat").read_bytes()
    (tmp_path / "s01.dat").write_bytes(blob[: len(blob) - 1000])
    (tmp_path / "s02.dat").write_bytes(b"\x00" * 100)
    deap = DEAP(tmp_path)
    with pytest.raises(DataFormatError, match=r"s01\.dat.*truncated"):
        deap.load_subject(1)
    with pytest.raises(DataFormatError, match=r"s02\.dat"):
        deap.load_subject(2)


def test_no_raw_key_or_unpickling_errors_escape(tmp_path):
    # A valid pickle of the wrong thing, and a pickle with an unknown opcode.
    (tmp_path / "s01.dat").write_bytes(pickle.dumps([1, 2, 3], protocol=2))
    (tmp_path / "s02.dat").write_bytes(b"\x80\x02\xff.")
    deap = DEAP(tmp_path)
    for s in (1, 2):
        with pytest.raises(PhysioSyncError) as info:
            deap.load_subject(s)
        assert f"s0{s}.dat" in str(info.value)
        assert not isinstance(info.value, (KeyError, pickle.UnpicklingError))


def test_recording_errors(deap_dat_dir):
    rec = DEAP(deap_dat_dir).load_subject(1)
    with pytest.raises(PhysioSyncError, match="no modality 'ecg'"):
        rec.stimulus("ecg", 0)
    with pytest.raises(PhysioSyncError, match="no trial 9"):
        rec.baseline("eeg", 9)
    assert len(DEAP_DAT_CHANNELS) == 40

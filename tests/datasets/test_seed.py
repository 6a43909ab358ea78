"""The SEED reader (Preprocessed_EEG) and its synthetic writer: layout, quirks, bad input."""

from __future__ import annotations

import logging
import shutil

import numpy as np
import pytest
import scipy.io

from physiosync import DataFormatError, DataNotFoundError, PhysioSyncError, UnknownSubjectError
from physiosync.cli import main
from _tiny import emotion_cv
from physiosync.datasets import SEED
from physiosync.datasets._seed import SEED_EEG, SEED_EEG_RELEASE, canonical_channel
from physiosync.datasets.seed import SEED_DATES, SEED_LABELS
from physiosync.params import PrepareParams
from physiosync.preprocessing.cache import prepare
from physiosync.preprocessing.descriptives import frontal_alpha_asymmetry, subject_summary
from physiosync.synthetic import make_seed
from physiosync.synthetic.seed import seed_clip_seconds

SUBJECTS = [1, 2, 10]  # 10 sorts before 2 as a string
SECONDS = 3.0


@pytest.fixture(scope="module")
def seed_root(tmp_path_factory):
    """SEED_EEG/ of subjects 1, 2, 10 (15 clips of about 3 s); subject 10 lacks session 2."""
    out = tmp_path_factory.mktemp("seed") / "SEED" / "SEED_EEG"  # the release's nesting
    make_seed(out, subjects=SUBJECTS, seconds=SECONDS, effect=3.0, seed=4,
              missing_sessions={10: ["2"]})
    return out


@pytest.fixture(scope="module")
def ds(seed_root):
    return SEED(seed_root)


def _folder(seed_root):
    return seed_root / "Preprocessed_EEG"


def _copy(seed_root, tmp_path):
    dest = tmp_path / "Preprocessed_EEG"
    shutil.copytree(_folder(seed_root), dest)
    return dest


def test_writer_writes_the_release_layout(seed_root):
    folder = _folder(seed_root)
    names = sorted(p.name for p in folder.glob("*.mat"))
    expected = [f"{s}_{SEED_DATES[s][i]}.mat" for s in SUBJECTS for i in range(3)
                if not (s == 10 and i == 1)] + ["label.mat"]
    assert names == sorted(expected)
    mat = scipy.io.loadmat(folder / f"1_{SEED_DATES[1][0]}.mat")
    keys = [k for k in mat if not k.startswith("__")]
    assert keys == [f"djc_eeg{k}" for k in range(1, 16)]  # numeric order, as the release
    lengths = seed_clip_seconds(SECONDS)
    for k, key in enumerate(keys):
        assert mat[key].shape == (62, 200 * lengths[k] + 1) and mat[key].dtype == np.float64
    label = scipy.io.loadmat(folder / "label.mat")["label"]
    assert label.shape == (1, 15) and label.ravel().tolist() == list(SEED_LABELS)


@pytest.mark.parametrize("level", ["Preprocessed_EEG", "SEED_EEG", "above"])
def test_root_may_be_the_folder_or_one_above(seed_root, level):
    root = {"Preprocessed_EEG": _folder(seed_root), "SEED_EEG": seed_root,
            "above": seed_root.parent}[level]
    assert SEED(root).root == _folder(seed_root)


def test_round_trip(ds, seed_root):
    assert ds.subjects == SUBJECTS and ds.sfreq == 200.0
    assert ds.classes == ("negative", "neutral", "positive")
    rec = ds.load_subject(1)
    assert rec.dataset == "SEED" and rec.modalities == ("eeg",)
    assert rec.ch_names("eeg") == list(SEED_EEG) and rec.info("eeg").unit == "µV"
    assert rec.trials.tolist() == list(range(45))
    assert rec.sessions.tolist() == ["1"] * 15 + ["2"] * 15 + ["3"] * 15
    codes = [label + 1 for label in SEED_LABELS]
    assert rec.ratings["emotion"].tolist() == codes * 3
    assert rec.ratings["stimulus"].tolist() == list(range(15)) * 3
    lengths = seed_clip_seconds(SECONDS)
    for i, date in enumerate(SEED_DATES[1]):
        mat = scipy.io.loadmat(_folder(seed_root) / f"1_{date}.mat")
        for k in range(1, 16):
            stim = rec.stimulus("eeg", 15 * i + k - 1)
            # the extra (200 d + 1)-th sample is dropped: exactly d seconds remain
            assert stim.shape == (62, 200 * lengths[k - 1])
            np.testing.assert_array_equal(stim, mat[f"djc_eeg{k}"][:, :-1])
            assert rec.baseline("eeg", 15 * i + k - 1).shape == (62, 0)
    with pytest.warns(RuntimeWarning, match="CB1"):  # no position in the 10-20 montage
        raw = rec.to_raw("eeg")
    assert raw.info["sfreq"] == 200.0 and raw.info["lowpass"] == 75.0
    np.testing.assert_allclose(raw.get_data()[:, :10], rec.stimulus("eeg", 0)[:, :10] * 1e-6)


def test_trials_are_matched_by_clip_number_not_by_sorted_key(ds, seed_root):
    """The lexicographic-order trap: ``sorted(keys)`` puts eeg10..eeg15 before eeg2."""
    mat = scipy.io.loadmat(_folder(seed_root) / f"2_{SEED_DATES[2][0]}.mat")
    keys = [k for k in mat if not k.startswith("__")]
    assert sorted(keys) != keys  # the trap is there to fall into
    rec = ds.load_subject(2)
    lengths = 200 * seed_clip_seconds(SECONDS)
    numeric = rec.stimulus_lengths("eeg")[:15]
    string_sorted = np.array([mat[k].shape[1] - 1 for k in sorted(keys)])
    np.testing.assert_array_equal(numeric, lengths)
    assert not np.array_equal(numeric, string_sorted)
    # the same file with its variables stored in reverse order reads the same
    shuffled = scipy.io.loadmat(_folder(seed_root) / f"2_{SEED_DATES[2][0]}.mat")
    variables = {k: shuffled[k] for k in reversed(keys)}
    folder = seed_root.parent.parent / "reversed" / "Preprocessed_EEG"
    folder.mkdir(parents=True, exist_ok=True)
    scipy.io.savemat(folder / f"2_{SEED_DATES[2][0]}.mat", variables)
    again = SEED(folder).load_subject(2)
    for t in range(15):
        np.testing.assert_array_equal(again.stimulus("eeg", t), rec.stimulus("eeg", t))
    assert again.ratings["emotion"].tolist() == rec.ratings["emotion"].tolist()[:15]


def test_subjects_and_sessions_are_ordered_as_numbers(ds, seed_root):
    # files sorted as strings would put 10_... before 2_...
    order = [p.name.split("_")[0] for p in ds.source_files()[:-1]]
    assert order == ["1"] * 3 + ["2"] * 3 + ["10"] * 2
    assert ds.session_paths(10) == {
        "1": _folder(seed_root) / f"10_{SEED_DATES[10][0]}.mat",
        "3": _folder(seed_root) / f"10_{SEED_DATES[10][2]}.mat"}


def test_missing_session_is_reported_and_keeps_trial_numbers(seed_root, caplog):
    with caplog.at_level(logging.WARNING, logger="physiosync"):
        ds = SEED(seed_root)
    lines = [r.getMessage() for r in caplog.records if "absent" in r.getMessage()]
    assert lines == [f"{_folder(seed_root)}: subject(s) 3-9 absent (no session file); "
                     "reading the 3 others.",
                     "SEED subject 10: session(s) 2 absent; reading session(s) 1, 3."]
    rec = ds.load_subject(10)
    assert rec.trials.tolist() == list(range(15)) + list(range(30, 45))
    assert sorted(set(rec.sessions)) == ["1", "3"]
    assert rec.ratings["stimulus"].tolist() == list(range(15)) * 2


def test_sessions_follow_the_dates_when_they_are_not_the_releases(seed_root, tmp_path):
    folder = _copy(seed_root, tmp_path)
    for i, date in enumerate(SEED_DATES[2]):  # dates of another year, same order
        (folder / f"2_{date}.mat").rename(folder / f"2_2019{i + 1:02d}01.mat")
    (folder / "2_20190201.mat").rename(folder / "2_20190115.mat")
    ds = SEED(folder)
    assert list(ds.session_paths(2)) == ["1", "2", "3"]
    assert ds.session_paths(2)["2"].name == "2_20190115.mat"


def test_missing_clip_is_reported_in_one_line(seed_root, tmp_path, caplog):
    folder = _copy(seed_root, tmp_path)
    path = folder / f"1_{SEED_DATES[1][1]}.mat"
    mat = scipy.io.loadmat(path)
    scipy.io.savemat(path, {k: v for k, v in mat.items()
                            if not k.startswith("__") and k not in ("djc_eeg7", "djc_eeg12")})
    with caplog.at_level(logging.WARNING, logger="physiosync"):
        rec = SEED(folder).load_subject(1)
    lines = [r.getMessage() for r in caplog.records if "clip(s)" in r.getMessage()]
    assert lines == [f"{path}: clip(s) 7, 12 absent; reading the 13 others."]
    assert 15 + 6 not in rec.trials and 15 + 11 not in rec.trials and rec.n_trials == 43


def test_without_label_file_the_release_labels_are_used(seed_root, tmp_path, caplog):
    folder = _copy(seed_root, tmp_path)
    (folder / "label.mat").unlink()
    with caplog.at_level(logging.WARNING, logger="physiosync"):
        ds = SEED(folder)
    assert "no label.mat; using the release's clip labels" in caplog.text
    assert ds.load_subject(1).ratings["emotion"].tolist()[:15] == [c + 1 for c in SEED_LABELS]
    assert ds.source_files([1]) == list(ds.session_paths(1).values())


@pytest.mark.parametrize("label, match", [
    (np.array([[1, 0, 2] * 5]), "holds 2; expected -1"),
    (np.array([[1, 0, -1]]), "expected 15 clip labels"),
    (np.array(["abc"]), "expected 15 clip labels"),
])
def test_bad_label_file_is_refused(seed_root, tmp_path, label, match):
    folder = _copy(seed_root, tmp_path)
    scipy.io.savemat(folder / "label.mat", {"label": label})
    with pytest.raises(DataFormatError, match=rf"label\.mat: .*{match}"):
        SEED(folder)


def _rewrite(folder, change):
    path = folder / f"1_{SEED_DATES[1][0]}.mat"
    mat = {k: v for k, v in scipy.io.loadmat(path).items() if not k.startswith("__")}
    change(mat)
    scipy.io.savemat(path, mat)
    return path


@pytest.mark.parametrize("change, match", [
    (lambda m: m.update(djc_eeg3=m["djc_eeg3"][:61]), r"'djc_eeg3' has shape \(61, \d+\)"),
    (lambda m: m.update(eeg3=m["djc_eeg3"]), "'djc_eeg3' and 'eeg3' both hold clip 3"),
    (lambda m: m.update(djc_eeg16=m["djc_eeg3"]), "names clip 16; .* clips 1..15"),
    (lambda m: m.update(djc_eeg3=np.where(np.arange(m["djc_eeg3"].shape[1]) == 9, np.nan,
                                          m["djc_eeg3"])), "non-finite value"),
    (lambda m: m.update(djc_eeg3=1j * m["djc_eeg3"]), "'djc_eeg3' is not real-valued"),
    (lambda m: m.update(djc_eeg3=np.array(["x" * 10] * 62)), r"'djc_eeg3' has shape \(62,\)"),
    (lambda m: [m.pop(k) for k in list(m)] and m.update(other=np.zeros(3)),
     "no clip variable"),
])
def test_damaged_session_file_is_refused_naming_it(seed_root, tmp_path, change, match):
    folder = _copy(seed_root, tmp_path)
    path = _rewrite(folder, change)
    with pytest.raises(DataFormatError, match=match) as err:
        SEED(folder).load_subject(1)
    assert str(path) in str(err.value)


def test_truncated_and_hdf5_files_are_refused(seed_root, tmp_path):
    folder = _copy(seed_root, tmp_path)
    path = folder / f"2_{SEED_DATES[2][2]}.mat"
    path.write_bytes(path.read_bytes()[:-100])
    ds = SEED(folder)
    with pytest.raises(DataFormatError, match="truncated") as err:
        ds.load_subject(2)
    assert str(path) in str(err.value)
    path.write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(600))
    with pytest.raises(DataFormatError, match="v7.3"):
        ds.load_subject(2)


def test_bad_roots_and_subjects(seed_root, tmp_path):
    with pytest.raises(DataNotFoundError, match="does not exist"):
        SEED(tmp_path / "nowhere")
    with pytest.raises(DataNotFoundError, match="neither a Preprocessed_EEG folder"):
        SEED(tmp_path)
    with pytest.raises(DataNotFoundError, match="is a file"):
        SEED(_folder(seed_root) / "label.mat")
    ds = SEED(seed_root)
    with pytest.raises(UnknownSubjectError, match="no subject 3; subjects present: 1-2, 10"):
        ds.load_subject(3)
    folder = _copy(seed_root, tmp_path)
    shutil.copy(folder / f"1_{SEED_DATES[1][0]}.mat", folder / "1_20991231.mat")
    with pytest.raises(DataFormatError, match="subject 1 has 4 session files"):
        SEED(folder)


def test_channel_names_are_the_10_20_spelling():
    assert canonical_channel("FPZ") == "Fpz" and canonical_channel("FCZ") == "FCz"
    assert canonical_channel("CB1") == "CB1" and canonical_channel("PO7") == "PO7"
    assert len(set(SEED_EEG)) == 62 and len(SEED_EEG_RELEASE) == 62


def test_emotion_drives_frontal_alpha_asymmetry(ds):
    """The simulator's valence effect: positive clips have a larger FAA than negative ones."""
    faa, codes = [], []
    for s in ds.subjects:
        rec = ds.load_subject(s)
        faa.append(frontal_alpha_asymmetry(rec))
        codes.append(rec.ratings["emotion"].to_numpy())
    faa, codes = np.concatenate(faa), np.concatenate(codes)
    assert faa[codes == 2].mean() - faa[codes == 0].mean() > 0.3


def test_same_clip_shares_its_course_across_subjects_and_sessions(tmp_path):
    """Stimulus-locked synchrony: the slow EEG of clip 1 agrees between two subjects and
    across sessions, more than that of two different clips."""
    from scipy.signal import butter, sosfiltfilt

    folder = make_seed(tmp_path / "sync", n_subjects=2, n_trials=2, seconds=40.0, effect=0.0,
                       synchrony=3.0, seed=2)
    ds = SEED(folder)
    sos = butter(2, [0.2, 1.0], btype="band", fs=200.0, output="sos")

    def slow(rec, trial, n):
        return sosfiltfilt(sos, rec.stimulus("eeg", trial)[:, :n], axis=-1)

    def agreement(a, b):
        return np.mean([np.corrcoef(x, y)[0, 1] for x, y in zip(a, b)])

    r1, r2 = ds.load_subject(1), ds.load_subject(2)
    n = int(min(r1.stimulus_lengths("eeg")))
    same = [agreement(slow(r1, 0, n), slow(r2, 30, n)), agreement(slow(r1, 0, n), slow(r1, 15, n))]
    different = [agreement(slow(r1, 0, n), slow(r2, 31, n)),
                 agreement(slow(r1, 1, n), slow(r2, 0, n))]
    assert min(same) > 0.2 and min(same) > max(different) + 0.15


def test_info_describes_categorical_classes_and_sessions(ds, seed_root, capsys):
    table = subject_summary(ds)
    assert table.loc[1, "sessions"] == "1,2,3" and table.loc[10, "sessions"] == "1,3"
    for name in ("negative", "neutral", "positive"):
        assert table.loc[1, f"{name}_%"] == pytest.approx(100 / 3)
    assert "faa~valence" not in table and "high_valence_%" not in table
    assert main(["info", "seed", str(seed_root)]) == 0
    assert "positive_%" in capsys.readouterr().out


def test_cli_synth_writes_seed(tmp_path):
    assert main(["synth", "seed", str(tmp_path / "s"), "--subjects", "1", "--trials", "2",
                 "--seconds", "1"]) == 0
    ds = SEED(tmp_path / "s")
    assert ds.subjects == [1] and ds.synthetic()


def test_writer_refuses_options_it_cannot_honour(tmp_path):
    with pytest.raises(PhysioSyncError, match="rating_bias must be 0"):
        make_seed(tmp_path, rating_bias=0.2)
    with pytest.raises(PhysioSyncError, match="affect='static'"):
        make_seed(tmp_path, affect="dynamics")
    with pytest.raises(PhysioSyncError, match="n_trials must be an integer in \\[1, 15\\]"):
        make_seed(tmp_path, n_trials=16)
    with pytest.raises(PhysioSyncError, match="missing_sessions"):
        make_seed(tmp_path, missing_sessions={1: ["1", "2", "3"]})
    folder = tmp_path / "real" / "Preprocessed_EEG"
    folder.mkdir(parents=True)
    (folder / "1_20131027.mat").write_bytes(b"user data")
    with pytest.raises(PhysioSyncError, match="did not write"):
        make_seed(tmp_path / "real")


def test_prepare_needs_baseline_none(ds):
    with pytest.raises(PhysioSyncError, match="baseline='none'"):
        prepare(ds, [1], cache_dir=False)
    with pytest.raises(PhysioSyncError, match="norm='subject' .* has none"):
        prepare(ds, [1], cache_dir=False,
                params=PrepareParams(modalities=("eeg",), baseline="none",
                                     norm={"eeg": "subject"}))
    prepared = prepare(ds, [1, 10], cache_dir=False,
                       params=PrepareParams(modalities=("eeg",), baseline="none"))
    assert prepared[10].sessions.tolist() == ["1"] * 15 + ["3"] * 15
    assert prepared[1].seconds == min(seed_clip_seconds(SECONDS))


def test_cv_within_trial_kfold_on_emotion(seed_root, tmp_path):
    report = emotion_cv("seed", seed_root, tmp_path)
    assert (report["target"], report["protocol"]) == ("emotion", "within-trial-kfold")
    assert tuple(report["class_names"]) == ("negative", "neutral", "positive")
    headline = report["headline"]
    assert headline["metric"] == "subject.macro_f1" and headline["mean"] > headline["chance"]

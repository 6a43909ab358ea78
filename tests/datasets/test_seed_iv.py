"""The SEED-IV reader (eeg_raw_data) and its synthetic writer: layout, rate check, bad input."""

from __future__ import annotations

import logging
import shutil

import numpy as np
import pytest
import scipy.io

from physiosync import DataFormatError, DataNotFoundError, PhysioSyncError
from physiosync.cli import main
from _tiny import emotion_cv
from physiosync.datasets import SEEDIV
from physiosync.datasets import seed_iv as seed_iv_module
from physiosync.datasets.seed_iv import SEED_IV_LABELS, parse_readme
from physiosync.preprocessing.descriptives import subject_summary
from physiosync.synthetic import make_seed_iv
from physiosync.synthetic.seed import SEED_IV_DATES, seed_iv_clip_seconds

SECONDS, SEED = 4.0, 6


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    """SEED_IV/ with subjects 1 and 2 (24 clips of 4-7 s per session); 2 lacks session 3.
    Uncompressed (the SEED tests read compressed files)."""
    return make_seed_iv(tmp_path_factory.mktemp("seediv") / "SEED_IV", n_subjects=2,
                        seconds=SECONDS, effect=3.0, seed=SEED, missing_sessions={2: ["3"]},
                        compress=False)


@pytest.fixture(scope="module")
def ds(root):
    return SEEDIV(root)


def _name(subject, session):
    return f"{subject}_{SEED_IV_DATES[subject][int(session) - 1]}.mat"


def _copy(root, tmp_path, features=True):
    dest = tmp_path / "SEED_IV"
    shutil.copytree(root, dest, ignore=None if features else
                    shutil.ignore_patterns("eeg_feature_smooth"))
    return dest


def test_writer_writes_the_release_layout(root):
    lengths = seed_iv_clip_seconds(SECONDS, SEED)
    for session in "123":
        mat = scipy.io.loadmat(root / "eeg_raw_data" / session / _name(1, session))
        keys = [k for k in mat if not k.startswith("__")]
        assert keys == [f"djc_eeg{k}" for k in range(1, 25)]
        assert [mat[k].shape for k in keys] == [(62, 200 * d) for d in lengths[session]]
        feats = scipy.io.loadmat(root / "eeg_feature_smooth" / session / _name(1, session))
        assert feats["de_LDS5"].shape == (62, lengths[session][4] // 4, 5)
    assert not (root / "eeg_raw_data" / "3" / _name(2, "3")).exists()
    text = (root / "ReadMe.txt").read_text()
    assert "session1_label = [1,2,3,0,2,0,0,1,0,1,2,1,1,1,2,3,2,2,3,3,0,3,0,3];" in text
    assert parse_readme(root / "ReadMe.txt") == SEED_IV_LABELS


def test_round_trip(ds, root):
    assert ds.subjects == [1, 2] and ds.sfreq == 200.0
    assert "eeg_feature_smooth" in ds.rate_check
    assert ds.classes == ("neutral", "sad", "fear", "happy")
    rec = ds.load_subject(1)
    assert rec.dataset == "SEED-IV" and rec.trials.tolist() == list(range(72))
    assert rec.sessions.tolist() == ["1"] * 24 + ["2"] * 24 + ["3"] * 24
    assert rec.ratings["emotion"].tolist() == [c for k in "123" for c in SEED_IV_LABELS[k]]
    assert "stimulus" not in rec.ratings  # each session shows other clips
    mat = scipy.io.loadmat(root / "eeg_raw_data" / "2" / _name(1, "2"))
    for k in range(1, 25):
        np.testing.assert_array_equal(rec.stimulus("eeg", 24 + k - 1), mat[f"djc_eeg{k}"])
    # the lexicographic trap: clip k is the variable ending in k, whatever sorting gives
    keys = [k for k in mat if not k.startswith("__")]
    assert sorted(keys) != keys
    lengths = 200 * seed_iv_clip_seconds(SECONDS, SEED)["2"]
    np.testing.assert_array_equal(rec.stimulus_lengths("eeg")[24:48], lengths)
    assert not np.array_equal(lengths, [mat[k].shape[1] for k in sorted(keys)])


def test_missing_session_is_reported(root, caplog):
    with caplog.at_level(logging.WARNING, logger="physiosync"):
        ds = SEEDIV(root)
    assert [r.getMessage() for r in caplog.records if "absent" in r.getMessage()] == [
        "SEED-IV subject 2: session(s) 3 absent; reading session(s) 1, 2."]
    assert ds.load_subject(2).trials.tolist() == list(range(48))


@pytest.mark.parametrize("where", ["root", "eeg_raw_data", "above"])
def test_root_variants(root, where):
    given = {"root": root, "eeg_raw_data": root / "eeg_raw_data", "above": root.parent}[where]
    assert SEEDIV(given).root == root


def test_rate_is_checked_against_features_then_durations(root, tmp_path, monkeypatch):
    at_1000 = make_seed_iv(tmp_path / "k", n_subjects=1, n_trials=3, seconds=SECONDS,
                           sfreq=1000.0, missing_sessions={1: ["2", "3"]})
    ds = SEEDIV(at_1000)
    assert ds.sfreq == 1000.0 and "window counts" in ds.rate_check
    shutil.rmtree(at_1000 / "eeg_feature_smooth")
    assert SEEDIV(at_1000).sfreq == 200.0  # 4-7 s clips: plausible at 200 Hz as well
    monkeypatch.setattr(seed_iv_module, "MAX_CLIP_S", 10.0)  # 20-35 s at 200 Hz: too long
    ds = SEEDIV(at_1000)
    assert ds.sfreq == 1000.0 and "clip durations" in ds.rate_check
    monkeypatch.setattr(seed_iv_module, "MAX_CLIP_S", 1.0)
    with pytest.raises(DataFormatError, match="even at 1000 Hz"):
        SEEDIV(at_1000)
    assert SEEDIV(at_1000, sfreq=1000).rate_check == "given"
    with pytest.raises(PhysioSyncError, match="sfreq must be a positive number"):
        SEEDIV(at_1000, sfreq=-3)


def test_features_that_fit_no_rate_fall_back_to_durations(root, tmp_path, caplog):
    copy = _copy(root, tmp_path)
    path = copy / "eeg_feature_smooth" / "1" / _name(1, "1")
    scipy.io.savemat(path, {f"de_LDS{k}": np.zeros((62, 50, 5)) for k in range(1, 25)})
    with caplog.at_level(logging.WARNING, logger="physiosync"):
        ds = SEEDIV(copy)
    assert ds.sfreq == 200.0 and "clip durations" in ds.rate_check
    assert "fit neither 200 nor 1000 Hz" in caplog.text


def test_readme_labels(root, tmp_path, caplog):
    copy = _copy(root, tmp_path, features=False)
    readme = copy / "ReadMe.txt"
    text = readme.read_text()
    readme.write_text(text.replace("session2_label = [2,1,3,0,", "session2_label = [0,1,3,2,"))
    with caplog.at_level(logging.WARNING, logger="physiosync"):
        ds = SEEDIV(copy)
    assert ds.labels["2"][:4] == (0, 1, 3, 2) and "session 2's labels differ" in caplog.text
    assert ds.load_subject(1).ratings["emotion"].tolist()[24:28] == [0, 1, 3, 2]
    assert readme in ds.source_files([1])
    readme.unlink()
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="physiosync"):
        ds = SEEDIV(copy)
    assert ds.labels == SEED_IV_LABELS and "using the release's labels" in caplog.text


@pytest.mark.parametrize("line, match", [
    ("session1_label = [__import__('os').system('echo pwned'),1];", "expected 24 integers"),
    ("session1_label = [1,2,3];", "holds 3 value"),
    ("session1_label = [" + ",".join(["7"] * 24) + "];", "integers 0-3"),
])
def test_malformed_readme_is_refused_never_evaluated(root, tmp_path, line, match):
    copy = _copy(root, tmp_path, features=False)
    (copy / "ReadMe.txt").write_text(line + "\n")
    with pytest.raises(DataFormatError, match=match) as err:
        SEEDIV(copy)
    assert "ReadMe.txt" in str(err.value)


def test_session_folders_may_be_renamed_but_not_doubled(root, tmp_path):
    copy = _copy(root, tmp_path, features=False)
    (copy / "eeg_raw_data" / "1").rename(copy / "eeg_raw_data" / "session1")
    ds = SEEDIV(copy)
    assert ds.session_paths(1)["1"].parent.name == "session1"
    shutil.copytree(copy / "eeg_raw_data" / "session1", copy / "eeg_raw_data" / "1")
    with pytest.raises(DataFormatError, match="both hold session 1"):
        SEEDIV(copy)


def test_damaged_files_are_refused_naming_them(root, tmp_path):
    copy = _copy(root, tmp_path, features=False)
    path = copy / "eeg_raw_data" / "2" / _name(1, "2")
    mat = {k: v for k, v in scipy.io.loadmat(path).items() if not k.startswith("__")}
    mat["djc_eeg25"] = mat["djc_eeg1"]
    scipy.io.savemat(path, mat)
    ds = SEEDIV(copy)
    with pytest.raises(DataFormatError, match="names clip 25") as err:
        ds.load_subject(1)
    assert str(path) in str(err.value)
    path.write_bytes(path.read_bytes()[:5000])
    with pytest.raises(DataFormatError, match="truncated"):
        ds.load_subject(1)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataNotFoundError, match="no eeg_raw_data folder"):
        SEEDIV(tmp_path / "empty")


def test_info_and_cli(ds, root, tmp_path, capsys):
    table = subject_summary(ds)
    assert table.loc[1, "sessions"] == "1,2,3"
    for name in ("neutral", "sad", "fear", "happy"):
        assert table.loc[1, f"{name}_%"] == pytest.approx(25.0)
    assert main(["info", "seed-iv", str(root)]) == 0
    assert "happy_%" in capsys.readouterr().out
    assert main(["synth", "seed-iv", str(tmp_path / "s"), "--subjects", "1", "--trials", "2",
                 "--seconds", "4"]) == 0
    assert SEEDIV(tmp_path / "s").synthetic()


def test_cv_within_trial_kfold_on_emotion(root, tmp_path):
    report = emotion_cv("seed-iv", root, tmp_path)
    assert (report["target"], report["protocol"]) == ("emotion", "within-trial-kfold")
    assert tuple(report["class_names"]) == ("neutral", "sad", "fear", "happy")
    headline = report["headline"]
    assert headline["metric"] == "subject.macro_f1" and headline["mean"] > headline["chance"]

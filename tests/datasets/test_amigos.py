"""The AMIGOS reader and synthetic writer: round trip, the release's quirks, hostile files."""

from __future__ import annotations

import json
import logging
import shutil

import numpy as np
import pytest
import scipy.io

from physiosync import DataFormatError, DataNotFoundError, PhysioSyncError, UnknownSubjectError
from physiosync.datasets import AMIGOS
from physiosync.datasets.amigos import AMIGOS_VIDEOS, RATING_COLUMNS
from physiosync.synthetic import make_amigos

SEED = 4
EEG = ["AF3", "F7", "F3", "FC5", "T7", "P7", "O1", "O2", "P8", "T8", "FC6", "F4", "F8", "AF4"]
FILE_SCALES = ("arousal", "valence", "dominance", "liking", "familiarity")
BOXES = ("neutral", "disgust", "happiness", "surprise", "anger", "fear", "sadness")


@pytest.fixture(scope="module")
def nested(tmp_path_factory):
    """3 participants x 20 videos (short ~8 s, long ~16 s), nested: P03 without long
    videos, P02's trial 5 empty, P01's trial 2 holding NaN."""
    return make_amigos(tmp_path_factory.mktemp("amigos") / "nested", n_subjects=3,
                       n_trials=20, seconds=8.0, long_seconds=16.0, seed=SEED,
                       no_long_videos=(3,), empty_trials=((2, 5),), nan_trials=((1, 2),))


@pytest.fixture(scope="module")
def flat(tmp_path_factory):
    """2 participants x 4 short videos in one folder (the default quirks: P01 trial 2 NaN)."""
    return make_amigos(tmp_path_factory.mktemp("amigos") / "flat", n_subjects=2, n_trials=4,
                       seconds=3.0, seed=1, layout="flat")


def _file(root, s, nested=True):
    name = f"Data_Preprocessed_P{s:02d}"
    return root / name / f"{name}.mat" if nested else root / f"{name}.mat"


def _raw(path):
    """The file as public loaders read it (default loadmat)."""
    return scipy.io.loadmat(path)


def _resave(raw, path, **changes):
    """Save the four variables of *raw* (with *changes*) as a v5 MAT-file at *path*."""
    out = {k: v for k, v in raw.items() if not k.startswith("__")}
    out.update(changes)
    for k in [k for k, v in changes.items() if v is None]:
        del out[k]
    path.parent.mkdir(parents=True, exist_ok=True)
    scipy.io.savemat(path, out, do_compression=True)
    return path


def _one_participant(tmp_path, src, **changes):
    """A flat folder holding P01 = *src* with *changes*."""
    return _resave(_raw(src), tmp_path / "bad" / "Data_Preprocessed_P01.mat", **changes)


def _expect(path, match):
    with pytest.raises(DataFormatError, match=match) as info:
        AMIGOS(path.parent).load_subject(1)
    assert str(path) in str(info.value) and info.value.__cause__ is None
    return info.value


# --------------------------------------------------------------------------- round trip
def test_the_writer_writes_the_release_layout(nested):
    assert sorted(p.name for p in nested.iterdir()) == [f"Data_Preprocessed_P0{s}"
                                                         for s in (1, 2, 3)]
    raw = _raw(_file(nested, 1))
    assert sorted(k for k in raw if not k.startswith("__")) == [
        "VideoIDs", "joined_data", "labels_ext_annotation", "labels_selfassessment"]
    for k in ("VideoIDs", "joined_data", "labels_ext_annotation", "labels_selfassessment"):
        assert raw[k].shape == (1, 20) and raw[k].dtype == object
    assert [str(v[0]) for v in raw["VideoIDs"][0]] == list(AMIGOS_VIDEOS)
    first = raw["joined_data"][0, 0]
    assert first.dtype == np.float64 and first.shape[1] == 17 and first.shape[0] > 640
    assert raw["labels_selfassessment"][0, 0].shape == (1, 12)
    ext = raw["labels_ext_annotation"][0, 16]
    assert ext.shape[1] == 3 and ext[:, 0].tolist() == list(range(1, len(ext) + 1))
    # P03 without long videos: 0x0 data and 1x0 ratings, as the release's P08, P24, P28
    p3 = _raw(_file(nested, 3))
    assert all(p3["joined_data"][0, t].shape == (0, 0) for t in range(16, 20))
    assert all(p3["labels_selfassessment"][0, t].shape == (1, 0) for t in range(16, 20))
    assert np.isnan(raw["joined_data"][0, 2]).any()


def test_round_trip_signals_ratings_and_channels(nested):
    ds = AMIGOS(nested)
    assert ds.subjects == [1, 2, 3] and ds.layout == "nested"
    assert ds.source_files([2]) == [_file(nested, 2)] and ds.synthetic()
    rec = ds.load_subject(2)
    assert rec.modalities == ("eeg", "ecg", "gsr") and rec.dataset == "AMIGOS"
    assert rec.ch_names("eeg") == EEG and rec.ch_names("ecg") == ["ECG_right", "ECG_left"]
    assert {m: rec.sfreq(m) for m in rec.modalities} == {"eeg": 128.0, "ecg": 128.0,
                                                         "gsr": 128.0}
    assert rec.info("gsr").ch_type == "gsr" and rec.info("gsr").unit == "µS"
    assert rec.trials.tolist() == [t for t in range(20) if t != 5]
    raw = _raw(_file(nested, 2))
    for t in (0, 7, 19):
        trial = raw["joined_data"][0, t]
        np.testing.assert_array_equal(rec.baseline("eeg", t), trial[:640, :14].T)
        np.testing.assert_array_equal(rec.stimulus("eeg", t), trial[640:, :14].T)
        np.testing.assert_array_equal(rec.stimulus("ecg", t), trial[640:, 14:16].T)
        np.testing.assert_array_equal(rec.baseline("gsr", t), trial[:640, 16:].T)
        labels = raw["labels_selfassessment"][0, t][0]
        row = rec.ratings.loc[t]
        for j, col in enumerate(FILE_SCALES + BOXES):
            assert row[col] == labels[j], (t, col)
    assert list(rec.ratings.columns) == list(RATING_COLUMNS)
    assert rec.ratings.columns[:5].tolist() == ["valence", "arousal", "dominance", "liking",
                                                "familiarity"]
    lengths = rec.stimulus_lengths("eeg") / 128
    assert lengths[:15].max() < 12 and lengths[-4:].min() > 10  # long videos are longer
    assert len(set(lengths)) > 3  # unequal clip lengths, the same for every participant
    np.testing.assert_array_equal(ds.load_subject(1).stimulus_lengths("eeg")[-4:],
                                  rec.stimulus_lengths("eeg")[-4:])


def test_signals_look_like_the_release(nested):
    rec = AMIGOS(nested).load_subject(1)
    eeg = rec.stimulus("eeg", 0)
    # average reference and 4-45 Hz band: the channel mean is zero, no DC
    np.testing.assert_allclose(eeg.mean(axis=0), 0.0, atol=1e-6)
    assert np.abs(eeg.mean(axis=1)).max() < 0.2 * eeg.std()
    gsr = rec.stimulus("gsr", 0)
    assert 0.5 < np.median(gsr) < 50  # skin conductance in µS
    r = rec.ratings
    assert ((r[list(FILE_SCALES)] >= 1) & (r[list(FILE_SCALES)] <= 9)).all().all()
    assert set(np.unique(r[list(BOXES)])) <= {0.0, 1.0} and (r[list(BOXES)].sum(axis=1) >= 1).all()
    from mne.io.constants import FIFF

    raw = rec.to_raw("gsr")  # conductance in siemens, typed gsr
    assert raw.info["chs"][0]["unit"] == FIFF.FIFF_UNIT_S and raw.get_channel_types() == ["gsr"]
    np.testing.assert_allclose(raw.get_data()[0, 640:640 + gsr.shape[1]], gsr[0] * 1e-6)
    assert rec.to_raw("eeg").info["custom_ref_applied"] and rec.info("eeg").lowpass == 45.0
    epochs = rec.to_epochs("gsr")
    assert epochs.get_data().shape[0] == rec.n_trials and epochs.tmin == pytest.approx(-5.0)


def test_quirks_are_reported_in_one_line_each_and_skipped(nested, caplog):
    ds = AMIGOS(nested)
    with caplog.at_level(logging.WARNING, logger="physiosync"):
        recs = {s: ds.load_subject(s) for s in ds.subjects}
    lines = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(lines) == 3, lines
    nan, empty, no_long = (next(x for x in lines if f"participant {s} " in x)
                           for s in (1, 2, 3))
    assert "trial 2 (video 9) skipped" in nan and "NaN" in nan
    assert "trial 5 (video 18) skipped: empty" in empty
    assert "no long-video data (trials 16-19" in no_long and "short videos only" in no_long
    assert 2 not in recs[1].trials and 5 not in recs[2].trials
    assert recs[3].trials.tolist() == list(range(16))


def test_video_ids_and_external_annotations(nested):
    ds = AMIGOS(nested)
    videos = ds.video_ids(3)
    assert videos.tolist() == list(AMIGOS_VIDEOS) and videos.index.tolist() == list(range(20))
    ext = ds.external_annotations(1)
    assert list(ext.columns) == ["trial", "segment", "valence", "arousal"]
    raw = _raw(_file(nested, 1))["labels_ext_annotation"][0]
    assert len(ext) == sum(len(a) for a in raw)
    for t in (0, 17):
        np.testing.assert_array_equal(ext[ext.trial == t][["segment", "valence", "arousal"]]
                                      .to_numpy(), raw[t])
    assert ext[["valence", "arousal"]].abs().max().max() <= 1.0
    # one segment per started 20 s of the trial (5 s baseline + clip)
    rec = ds.load_subject(1)
    seconds = 5 + rec.stimulus_lengths("eeg") / 128
    per_trial = ext.groupby("trial").size()
    assert per_trial[rec.trials].tolist() == np.ceil(seconds / 20).astype(int).tolist()
    assert set(ds.external_annotations(3).trial) == set(range(16))  # P03: none for long ones


def test_flat_and_mixed_layouts(flat, nested, tmp_path, caplog):
    with caplog.at_level(logging.INFO, logger="physiosync"):
        ds = AMIGOS(flat)
    assert ds.layout == "flat" and ds.subjects == [1, 2]
    assert "flat (the files in one folder)" in caplog.text
    assert ds.load_subject(2).trials.tolist() == [0, 1, 2, 3]
    mixed = tmp_path / "mixed"
    shutil.copytree(flat, mixed)
    shutil.copytree(nested / "Data_Preprocessed_P03", mixed / "Data_Preprocessed_P03")
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="physiosync"):
        ds = AMIGOS(mixed)
    assert ds.layout == "mixed" and ds.subjects == [1, 2, 3]
    assert "mixed (2 flat, 1 in their own folder)" in caplog.text
    twice = mixed / "Data_Preprocessed_P01"
    twice.mkdir()
    shutil.copy(flat / "Data_Preprocessed_P01.mat", twice)
    with pytest.raises(DataFormatError, match="participant 1 has two files"):
        AMIGOS(mixed)


def test_names_not_of_the_release_are_skipped_with_a_warning(flat, tmp_path, caplog):
    root = tmp_path / "names"
    shutil.copytree(flat, root)
    (root / "Data_Preprocessed_P02.mat").rename(root / "data_preprocessed_p2.mat")
    with caplog.at_level(logging.WARNING, logger="physiosync"):
        ds = AMIGOS(root)
    assert ds.subjects == [1] and "data_preprocessed_p2.mat" in caplog.text
    with pytest.raises(DataNotFoundError, match=r"Data_Preprocessed_P02\.mat is missing"):
        ds.load_subject(2)
    with pytest.raises(UnknownSubjectError, match="subjects 1..40"):
        ds.load_subject(41)
    original = tmp_path / "original" / "Data_Original_P01"
    original.mkdir(parents=True)
    (original / "Data_Original_P01.mat").write_bytes(b"x")
    with pytest.raises(DataNotFoundError, match=r"No AMIGOS participant files .* 1 "
                                                r"Data_Original_PXX\.mat file\(s\) .* not read"):
        AMIGOS(tmp_path / "original")
    with pytest.raises(DataNotFoundError, match="does not exist"):
        AMIGOS(tmp_path / "nope")


def test_video_ids_out_of_order_are_put_back_in_video_order(flat, tmp_path, caplog):
    raw = _raw(_file(flat, 2, nested=False))
    order = [2, 0, 3, 1]
    perm = {k: np.empty((1, 4), dtype=object) for k in
            ("VideoIDs", "joined_data", "labels_ext_annotation", "labels_selfassessment")}
    for k, cell in perm.items():
        for i, j in enumerate(order):
            cell[0, i] = raw[k][0, j]
    path = _one_participant(tmp_path, _file(flat, 2, nested=False), **perm)
    with caplog.at_level(logging.WARNING, logger="physiosync"):
        rec = AMIGOS(path.parent).load_subject(1)
    assert "not in video-number order" in caplog.text
    expected = AMIGOS(flat).load_subject(2)
    assert rec.trials.tolist() == [0, 1, 2, 3]
    for t in range(4):
        np.testing.assert_array_equal(rec.stimulus("eeg", t), expected.stimulus("eeg", t))
    assert rec.ratings.equals(expected.ratings)


# ------------------------------------------------------------------------- bad files
def test_bad_shapes_and_values_are_refused_naming_the_file(flat, tmp_path):
    src = _file(flat, 2, nested=False)
    raw = _raw(src)

    def cell(key, t, value):
        out = raw[key].copy()
        out[0, t] = value
        return out

    jd = raw["joined_data"][0, 1]
    sa = raw["labels_selfassessment"][0, 1].copy()
    cases = [
        ({"joined_data": cell("joined_data", 1, jd[:, :16])}, r"has shape \(\d+, 16\); "
                                                              r"expected \(samples x 17\)"),
        ({"labels_selfassessment": cell("labels_selfassessment", 1, sa[:, :11])},
         "holds 11 values; expected 12"),
        ({"labels_selfassessment": cell("labels_selfassessment", 1, np.where(
            np.arange(12) == 1, 9.5, sa))}, "valence rating 9.5 is outside the AMIGOS scale"),
        ({"labels_selfassessment": cell("labels_selfassessment", 1, np.where(
            np.arange(12) == 7, 2.0, sa))}, "happiness checkbox is 2; expected 0 or 1"),
        ({"joined_data": None}, "no variable 'joined_data'.*Data_Original"),
        ({"labels_selfassessment": raw["labels_selfassessment"][:, :3]},
         "labels_selfassessment holds 3 cells but joined_data 4"),
        ({"joined_data": np.zeros((4, 17))}, "joined_data is a float64 array"),
    ]
    for i, (changes, match) in enumerate(cases):
        path = _resave(raw, tmp_path / f"c{i}" / "Data_Preprocessed_P01.mat", **changes)
        _expect(path, match)


def test_v73_truncated_and_foreign_files_are_refused(flat, tmp_path):
    src = _file(flat, 1, nested=False).read_bytes()
    folder = tmp_path / "x"
    folder.mkdir()
    path = folder / "Data_Preprocessed_P01.mat"
    path.write_bytes(b"\x00" * 512 + b"\x89HDF\r\n\x1a\n" + bytes(64))
    _expect(path, "MATLAB v7.3")
    path.write_bytes(src[: len(src) // 2])
    _expect(path, "truncated")
    path.write_bytes(b"not a MAT-file at all" * 10)
    _expect(path, "not a MATLAB v5 MAT-file")


def test_a_participant_without_any_usable_trial_is_refused(flat, tmp_path):
    raw = _raw(_file(flat, 1, nested=False))
    empty = raw["joined_data"].copy()
    for t in range(4):
        empty[0, t] = np.zeros((0, 0))
    path = _resave(raw, tmp_path / "e" / "Data_Preprocessed_P01.mat", joined_data=empty)
    _expect(path, "participant 1 has no usable trial")


def test_writer_options_are_checked(tmp_path):
    for kw, match in (({"layout": "tree"}, "layout must be 'nested' or 'flat'"),
                      ({"n_trials": 21}, r"n_trials must be an integer in \[1, 20\]"),
                      ({"n_subjects": 41}, r"n_subjects must be an integer in \[1, 40\]"),
                      ({"empty_trials": [(1,)]}, "empty_trials must be"),
                      ({"long_seconds": 0}, "long_seconds must be positive")):
        with pytest.raises(PhysioSyncError, match=match):
            make_amigos(tmp_path / "w", **kw)
    assert not (tmp_path / "w").exists()


def test_the_writer_never_replaces_files_it_did_not_write(tmp_path):
    folder = tmp_path / "real" / "Data_Preprocessed_P01"
    folder.mkdir(parents=True)
    (folder / "Data_Preprocessed_P01.mat").write_bytes(b"real data")
    for layout in ("nested", "flat"):
        with pytest.raises(PhysioSyncError, match="physiosync did not write"):
            make_amigos(tmp_path / "real", n_subjects=2, n_trials=1, seconds=1.0,
                        layout=layout)
    assert sorted(p.name for p in (tmp_path / "real").rglob("*")) == [
        "Data_Preprocessed_P01", "Data_Preprocessed_P01.mat"]
    assert (folder / "Data_Preprocessed_P01.mat").read_bytes() == b"real data"


# ------------------------------------------------------------------ command line, study
def test_synth_and_info_commands(tmp_path, capsys):
    from physiosync.cli import main

    out = tmp_path / "cli"
    assert main(["synth", "amigos", str(out), "--subjects", "2", "--trials", "3",
                 "--seconds", "4", "--seed", "2"]) == 0
    assert (out / "Data_Preprocessed_P02" / "Data_Preprocessed_P02.mat").is_file()
    assert main(["info", "amigos", str(out)]) == 0
    text = capsys.readouterr().out
    assert "<AMIGOS at" in text and "(nested)" in text and "high_valence_%" in text


@pytest.mark.integration
def test_a_tiny_cross_validated_study_runs_on_amigos(nested, tmp_path):
    from _tiny import tiny_study
    from physiosync import params
    from physiosync.experiment import run_experiment

    cfg = tiny_study(nested, tmp_path / "cache", "data.name=amigos", "data.target=arousal")
    assert params.default_modalities("amigos") == ("eeg", "gsr")  # EEG with the GSR
    run_experiment(cfg, tmp_path / "run", verbose=False, html=False)
    doc = json.loads((tmp_path / "run" / "report.json").read_text())
    assert doc["config"]["run"]["data_source"]["dataset"] == "AMIGOS"
    assert {p for p in doc["pipelines"]} == {"physiosync", "bandpower"}
    assert len(doc["folds"]) >= 2

"""The original-DEAP BDF reader and the synthetic BDF writer (physiosync.datasets._deap_bdf)."""

from __future__ import annotations

import logging
import shutil

import mne
import numpy as np
import pyedflib
import pytest
from scipy.stats import spearmanr

from physiosync.datasets import DEAP, Recording
from physiosync.datasets._deap_bdf import read_deap_bdf, read_participant_ratings
from physiosync.synthetic import make_deap_bdf
from physiosync.datasets._channels import DEAP_BDF_EXTRA, DEAP_EEG_GENEVA, DEAP_EEG_TWENTE
from physiosync.exceptions import DataFormatError, DataNotFoundError, PhysioSyncError

SFREQ = 512
N_TRIALS = 6
SECONDS = 4.0
IDS = (1, 25, 28, 30)  # Twente/Status, ''+system bits, ''+3 missing onsets, 49 ch/-1
STIM_NAME = {1: "Status", 25: "", 28: "", 30: "-1"}  # as MNE names the marker channel


@pytest.fixture(scope="session")
def bdf_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("deap_bdf")
    return make_deap_bdf(out, n_subjects=len(IDS), n_trials=N_TRIALS, seconds=SECONDS,
                         effect=2.0, seed=3, subject_ids=IDS)


@pytest.fixture(scope="session")
def table(bdf_dir):
    return read_participant_ratings(bdf_dir / "participant_ratings.csv")


@pytest.fixture(scope="session")
def recordings(bdf_dir, table):
    return {s: read_deap_bdf(bdf_dir / f"s{s:02d}.bdf", s, table) for s in IDS}


def _events(path, subject):
    raw = mne.io.read_raw_bdf(path, preload=False, stim_channel=STIM_NAME[subject],
                              verbose="error")
    ev = mne.find_events(raw, stim_channel=STIM_NAME[subject], mask=0xFF, mask_type="and",
                         consecutive=True, initial_event=True, verbose="error")
    return raw, ev


def _truth(path, subject, table):
    """video -> code-4 onset sample, derived independently of the reader.

    The writer's Start_time is the time from the first code 1 to the trial's code-3
    fixation; the reader never looks at code 3, so this is an independent check.
    """
    raw, ev = _events(path, subject)
    first1 = ev[ev[:, 2] == 1][0, 0]
    rows = table[table.Participant_id == subject]
    out = {}
    for on in ev[ev[:, 2] == 4, 0]:
        fix = ev[(ev[:, 2] == 3) & (ev[:, 0] < on), 0].max()
        start_us = (fix - first1) / SFREQ * 1e6
        hit = rows[np.abs(rows.Start_time - start_us) < 1000]
        assert len(hit) == 1
        out[int(hit.Experiment_id.iloc[0]) - 1] = int(on)
    return raw, out


# ------------------------------------------------------------------ writer format
def test_writer_channel_layout(bdf_dir):
    for s, n_ch, eeg in ((1, 48, DEAP_EEG_TWENTE), (25, 48, DEAP_EEG_GENEVA),
                         (30, 49, DEAP_EEG_GENEVA)):
        raw = mne.io.read_raw_bdf(bdf_dir / f"s{s:02d}.bdf", preload=False, stim_channel=None,
                                  verbose="error")
        assert len(raw.ch_names) == n_ch
        assert raw.ch_names[:32] == list(eeg)
        assert raw.ch_names[32:47] == list(DEAP_BDF_EXTRA)
        assert raw.info["sfreq"] == SFREQ
    assert raw.ch_names[47:] == ["-0", "-1"]  # two empty labels, de-duplicated by MNE


def test_writer_empty_label_and_system_bits(bdf_dir):
    with pyedflib.EdfReader(str(bdf_dir / "s25.bdf")) as f:
        assert f.getLabel(47) == ""
        status = f.readSignal(47, digital=True)
    assert status[0] == 0x1A0000
    assert 0x190004 in set(status.tolist())
    with pyedflib.EdfReader(str(bdf_dir / "s01.bdf")) as f:
        assert f.getLabel(47) == "Status"
        assert set(f.readSignal(47, digital=True).tolist()) == {0, 1, 2, 3, 4, 5, 7}


@pytest.mark.parametrize("subject", [1, 25, 30])
def test_writer_event_sequence(bdf_dir, subject):
    _, ev = _events(bdf_dir / f"s{subject:02d}.bdf", subject)
    expected = [1, 1, 2] + [3, 4, 5, 1] * N_TRIALS + [2, 7]
    assert ev[:, 2].tolist() == expected
    fix, on, end = ev[3:6, 0]
    assert (on - fix, end - on) == (5 * SFREQ, SECONDS * SFREQ)


def test_writer_missing_onsets_and_csv(bdf_dir, table):
    _, ev = _events(bdf_dir / "s28.bdf", 28)
    assert (ev[:, 2] == 4).sum() == N_TRIALS - 3
    assert (ev[:, 2] == 3).sum() == N_TRIALS
    assert sorted(table.Participant_id.unique()) == list(IDS)
    for s in IDS:
        rows = table[table.Participant_id == s]
        assert sorted(rows.Trial) == list(range(1, N_TRIALS + 1))
        assert sorted(rows.Experiment_id) == list(range(1, N_TRIALS + 1))
        assert rows.sort_values("Trial").Start_time.is_monotonic_increasing


def test_writer_is_deterministic(tmp_path):
    a = make_deap_bdf(tmp_path / "a", n_subjects=1, n_trials=2, seconds=1.0, seed=5)
    b = make_deap_bdf(tmp_path / "b", n_subjects=1, n_trials=2, seconds=1.0, seed=5)
    assert (a / "s01.bdf").read_bytes() == (b / "s01.bdf").read_bytes()
    csv = "participant_ratings.csv"
    assert (a / csv).read_text() == (b / csv).read_text()
    assert not [p for p in a.iterdir() if p.name.startswith(".physiosync-tmp-")]


# ------------------------------------------------------------------ reader
@pytest.mark.parametrize("subject", IDS)
def test_channels_in_geneva_order(recordings, subject):
    rec = recordings[subject]
    assert rec.ch_names("eeg") == list(DEAP_EEG_GENEVA)
    assert rec.ch_names("eog") == ["hEOG", "vEOG"]
    assert rec.ch_names("emg") == ["zEMG", "tEMG"]
    assert [rec.ch_names(m) for m in ("gsr", "resp", "ppg", "temp")] == [
        ["GSR"], ["Resp"], ["Plet"], ["Temp"]]
    assert rec.modalities == ("eeg", "eog", "emg", "gsr", "resp", "ppg", "temp")


@pytest.mark.parametrize("subject", IDS)
def test_shapes_and_rates(recordings, subject):
    rec = recordings[subject]
    n = 3 if subject == 28 else N_TRIALS
    assert rec.n_trials == n
    for m in rec.modalities:
        assert rec.sfreq(m) == SFREQ
        n_ch = len(rec.ch_names(m))
        assert rec.baseline_array(m).shape == (n, n_ch, 3 * SFREQ)
        assert rec.stimulus_array(m).shape == (n, n_ch, int(SECONDS * SFREQ))


@pytest.mark.parametrize("subject", IDS)
def test_trials_match_file_by_video(bdf_dir, table, recordings, subject):
    """Each video's segment is the one the file holds at that video's onset."""
    rec = recordings[subject]
    raw, truth = _truth(bdf_dir / f"s{subject:02d}.bdf", subject, table)
    assert rec.trials.tolist() == sorted(truth)
    n_stim = int(SECONDS * SFREQ)
    for video, on in truth.items():
        eeg = raw.get_data(picks=list(DEAP_EEG_GENEVA), start=on - 3 * SFREQ,
                           stop=on + n_stim) * 1e6
        np.testing.assert_allclose(rec.baseline("eeg", video), eeg[:, :3 * SFREQ], atol=1e-6)
        np.testing.assert_allclose(rec.stimulus("eeg", video), eeg[:, 3 * SFREQ:], atol=1e-6)
        exg = raw.get_data(picks=["EXG1", "EXG2", "GSR1"], start=on, stop=on + n_stim)
        np.testing.assert_allclose(rec.stimulus("eog", video)[0], (exg[0] - exg[1]) * 1e6,
                                   atol=1e-6)
        np.testing.assert_allclose(rec.stimulus("gsr", video)[0], exg[2])


@pytest.mark.parametrize("subject", IDS)
def test_ratings_by_video(table, recordings, subject):
    rec = recordings[subject]
    rows = table[table.Participant_id == subject].set_index("Experiment_id")
    expected = rows.loc[rec.trials + 1, ["Valence", "Arousal", "Dominance", "Liking"]]
    np.testing.assert_array_equal(rec.ratings.to_numpy(), expected.to_numpy())
    assert list(rec.ratings.columns) == ["valence", "arousal", "dominance", "liking"]
    assert rec.trials.tolist() == sorted(rec.trials.tolist())


@pytest.mark.parametrize("subject", IDS)
def test_signals_follow_the_video_ratings(recordings, subject):
    """zEMG amplitude follows valence: a wrong presentation->video map would break it."""
    rec = recordings[subject]
    zemg = rec.stimulus_array("emg")[:, 0].std(axis=1)
    assert spearmanr(zemg, rec.ratings["valence"]).statistic >= 0.9


def test_ratings_table_may_be_a_path(bdf_dir, recordings):
    rec = read_deap_bdf(bdf_dir / "s25.bdf", 25, bdf_dir / "participant_ratings.csv")
    assert rec.trials.tolist() == recordings[25].trials.tolist()
    np.testing.assert_array_equal(rec.stimulus_array("eeg"), recordings[25].stimulus_array("eeg"))


def test_units(recordings):
    rec = recordings[1]
    eeg = rec.stimulus_array("eeg")
    assert 1.0 < np.median(eeg.std(axis=-1)) < 100.0  # µV, not V
    assert np.abs(eeg).max() < 2000.0
    assert rec.info("eeg").unit == "µV"
    gsr = rec.stimulus_array("gsr")
    assert 1e4 < gsr.mean() < 1e7  # Ohm
    assert 20.0 < rec.stimulus_array("temp").mean() < 40.0  # °C


def test_fewer_onsets_fall_back_without_start_time(bdf_dir, table, tmp_path, caplog):
    blank = table.copy()
    blank["Start_time"] = np.nan
    blank.attrs["source"] = "blank.csv"
    with caplog.at_level(logging.WARNING, logger="physiosync"):
        rec = read_deap_bdf(bdf_dir / "s28.bdf", 28, blank)
    assert "assuming the onsets are presentation trials 1..3" in caplog.text
    rows = table[(table.Participant_id == 28) & (table.Trial <= 3)]
    assert rec.trials.tolist() == sorted(rows.Experiment_id - 1)
    aligned = read_deap_bdf(bdf_dir / "s28.bdf", 28, table)  # through Start_time
    assert aligned.trials.tolist() != rec.trials.tolist()  # so the alignment mattered


def test_through_deap_class(bdf_dir):
    deap = DEAP(bdf_dir)
    assert deap.format == "bdf"
    assert deap.subjects == list(IDS)
    rec = deap.load_subject(30)
    assert isinstance(rec, Recording) and rec.n_trials == N_TRIALS
    raw = rec.to_raw("eeg")
    assert raw.ch_names == list(DEAP_EEG_GENEVA)
    assert raw.n_times == N_TRIALS * (3 * SFREQ + int(SECONDS * SFREQ))
    assert len(raw.annotations) == 2 * N_TRIALS
    np.testing.assert_allclose(raw.get_data()[:, :10], rec.baseline("eeg", 0)[:, :10] * 1e-6)
    epochs = rec.to_epochs("gsr")
    assert len(epochs) == N_TRIALS
    assert epochs.tmin == pytest.approx(-3.0)
    np.testing.assert_array_equal(epochs.metadata["valence"], rec.ratings["valence"])


def test_mne_info_is_the_recording_as_its_header_declares(bdf_dir):
    import mne
    from mne.io.constants import FIFF

    rec = DEAP(bdf_dir).load_subject(30)
    header = mne.io.read_raw_bdf(DEAP(bdf_dir).subject_file(30), verbose="error").info
    for modality in ("eeg", "gsr"):
        info = rec.to_epochs(modality).info
        # raw BioSemi data: the header's filter edges, no re-reference (CMS/DRL)
        assert info["highpass"] == header["highpass"]
        assert info["lowpass"] == header["lowpass"] < SFREQ / 2
        assert info["custom_ref_applied"] == FIFF.FIFFV_MNE_CUSTOM_REF_OFF
        assert "unprocessed" in info["description"]


# ------------------------------------------------------------------ ratings table
def test_ratings_csv_tolerates_header_whitespace(tmp_path):
    csv = tmp_path / "participant_ratings.csv"
    csv.write_text(" Participant_id , Trial ,Experiment_id, Start_time ,Valence,Arousal,"
                   "Dominance,Liking, Familiarity \n"
                   "1,1,3,2000000,5.5,3,4,6,\n1,2,1,9000000,7,2.25,1,9,4\n")
    df = read_participant_ratings(csv)
    assert df.attrs["source"] == str(csv)
    assert df["Experiment_id"].tolist() == [3, 1]
    assert df["Experiment_id"].dtype == np.int64
    assert np.isnan(df["Familiarity"].iloc[0]) and df["Familiarity"].iloc[1] == 4


def test_ratings_csv_missing_file(tmp_path):
    with pytest.raises(DataNotFoundError, match="participant_ratings.csv"):
        read_participant_ratings(tmp_path / "participant_ratings.csv")


@pytest.mark.parametrize("text, match", [
    ("Participant_id,Trial,Experiment_id,Valence,Arousal,Dominance,Liking\n1,1,1,5,5,5,5\n",
     "missing column.*Start_time"),
    ("Participant_id,Trial,Experiment_id,Start_time,Valence,Arousal,Dominance,Liking\n"
     "1,1,1,0,high,5,5,5\n", "Valence.*'high'"),
])
def test_ratings_csv_bad_content(tmp_path, text, match):
    csv = tmp_path / "ratings.csv"
    csv.write_text(text)
    with pytest.raises(DataFormatError, match=match) as err:
        read_participant_ratings(csv)
    assert "ratings.csv" in str(err.value)


def test_deap_without_ratings_csv(bdf_dir, tmp_path):
    shutil.copy(bdf_dir / "s01.bdf", tmp_path / "s01.bdf")
    with pytest.raises(DataNotFoundError, match="participant_ratings.csv"):
        DEAP(tmp_path)


# ------------------------------------------------------------------ bad BDF input
def test_truncated_bdf(bdf_dir, table, tmp_path):
    data = (bdf_dir / "s01.bdf").read_bytes()
    bad = tmp_path / "s01.bdf"
    bad.write_bytes(data[:len(data) // 2])
    with pytest.raises(DataFormatError, match="truncated") as err:
        read_deap_bdf(bad, 1, table)
    assert "s01.bdf" in str(err.value)


def test_garbage_bdf(table, tmp_path):
    bad = tmp_path / "s01.bdf"
    bad.write_bytes(np.random.default_rng(0).bytes(5000))
    with pytest.raises(DataFormatError, match="BDF") as err:
        read_deap_bdf(bad, 1, table)
    assert "s01.bdf" in str(err.value)


def test_subject_absent_from_ratings(bdf_dir, table):
    with pytest.raises(PhysioSyncError, match="participant 1 has no rows") as err:
        read_deap_bdf(bdf_dir / "s01.bdf", 1, table[table.Participant_id != 1])
    assert "s01.bdf" in str(err.value)


def _write_small_bdf(path, labels, status):
    """A minimal BDF with the given labels; the last channel holds *status*."""
    n = len(status)
    headers = []
    for label in labels:
        headers.append(dict(label=label, dimension="uV", sample_frequency=SFREQ,
                            physical_min=-262144, physical_max=262143, digital_min=-8388608,
                            digital_max=8388607, transducer="", prefilter=""))
    headers[-1].update(dimension="Boolean", physical_min=-8388608, physical_max=8388607)
    data = [np.zeros(n) for _ in labels[:-1]] + [np.asarray(status, float)]
    with pyedflib.EdfWriter(str(path), len(labels), file_type=pyedflib.FILETYPE_BDF) as w:
        w.setSignalHeaders(headers)
        w.writeSamples(data)
    return path


@pytest.mark.parametrize("case, match", [
    ("no_onsets", "no trial onsets"),
    ("no_stim", "no Status"),
    ("missing_channel", "missing channel.*Cz"),
    ("early_onset", "leaves no room"),
])
def test_bad_bdf_content(table, tmp_path, case, match):
    path = _small_case(tmp_path, case)
    with pytest.raises(DataFormatError, match=match) as err:
        read_deap_bdf(path, 1, table)
    assert "s01.bdf" in str(err.value)


def _small_case(tmp_path, case):
    labels = list(DEAP_EEG_GENEVA) + list(DEAP_BDF_EXTRA) + ["Status"]
    status = np.zeros(20 * SFREQ)
    status[10 * SFREQ:15 * SFREQ] = 4
    status[15 * SFREQ:18 * SFREQ] = 5
    if case == "no_onsets":
        status[:] = 3
    elif case == "no_stim":
        labels[-1] = "Trigger"
    elif case == "missing_channel":
        labels[labels.index("Cz")] = "A32"
    elif case == "early_onset":
        status[:] = 0
        status[SFREQ:2 * SFREQ] = 4
    return _write_small_bdf(tmp_path / "s01.bdf", labels, status)


def test_stimulus_ends_at_code5_capped_at_60s(table, tmp_path):
    labels = list(DEAP_EEG_GENEVA) + list(DEAP_BDF_EXTRA) + ["Status"]
    status = np.zeros(85 * SFREQ)
    status[4 * SFREQ:9 * SFREQ] = 4
    status[9 * SFREQ:11 * SFREQ] = 5
    status[12 * SFREQ:80 * SFREQ] = 4  # held 68 s: only 60 s are the stimulus
    status[80 * SFREQ:83 * SFREQ] = 5
    path = _write_small_bdf(tmp_path / "s01.bdf", labels, status)
    rec = read_deap_bdf(path, 1, table)
    assert sorted(rec.stimulus_lengths("eeg").tolist()) == [5 * SFREQ, 60 * SFREQ]
    with pytest.raises(PhysioSyncError, match="different lengths"):
        rec.stimulus_array("eeg")
    assert rec.to_epochs("eeg").get_data().shape == (2, 32, 3 * SFREQ + 5 * SFREQ)


def test_non_finite_signal(table, tmp_path, monkeypatch):
    """NaN coming out of the BDF reader (e.g. corrupt scaling) is reported, not returned."""
    path = _small_case(tmp_path, "valid")
    original = mne.io.BaseRaw.get_data

    def poisoned(self, *args, **kwargs):
        data = original(self, *args, **kwargs)
        if data.shape[0] > 1:  # the signal picks, not the Status channel
            data[3, 7] = np.nan
        return data

    monkeypatch.setattr(mne.io.BaseRaw, "get_data", poisoned)
    with pytest.raises(DataFormatError, match="non-finite") as err:
        read_deap_bdf(path, 1, table)
    assert "s01.bdf" in str(err.value)


def test_small_valid_file_reads(table, tmp_path):
    rec = read_deap_bdf(_small_case(tmp_path, "valid"), 1, table)
    assert rec.n_trials == 1
    assert rec.stimulus_lengths("eeg").tolist() == [5 * SFREQ]  # ends at the code 5
    assert np.abs(rec.stimulus("eeg", rec.trials[0])).max() < 0.1  # zeros, to 1 LSB (µV)


def test_missing_bdf_file(table, tmp_path):
    with pytest.raises(DataNotFoundError, match="s07.bdf"):
        read_deap_bdf(tmp_path / "s07.bdf", 7, table)


# ------------------------------------------------------------------ ratings file from CLI and config
@pytest.fixture()
def bdf_apart(bdf_dir, tmp_path):
    """Two recordings in a folder without participant_ratings.csv; the ratings elsewhere."""
    only = tmp_path / "recordings"
    only.mkdir()
    for s in IDS[:2]:
        (only / f"s{s:02d}.bdf").symlink_to(bdf_dir / f"s{s:02d}.bdf")
    csv = tmp_path / "elsewhere" / "ratings.csv"
    csv.parent.mkdir()
    shutil.copy(bdf_dir / "participant_ratings.csv", csv)
    return only, csv


def test_ratings_csv_is_an_option_of_the_cli_and_the_config(bdf_apart, tmp_path, capsys,
                                                            monkeypatch):
    """The reader's refusal names the flag, the config key and the Python argument; each
    of them then reads the recordings."""
    from conftest import one_line_error
    from physiosync.cli import main

    only, csv = bdf_apart
    cache = ["--cache-dir", str(tmp_path / "cache")]
    assert main(["prepare", "deap", str(only), *cache]) == 2
    line = one_line_error(capsys)
    assert "participant_ratings.csv not found" in line
    assert all(s in line for s in ("--ratings-csv FILE", "data.ratings_csv", "ratings_csv="))
    assert main(["info", "deap", str(only), "--ratings-csv", str(csv)]) == 0
    assert "<DEAP bdf at" in capsys.readouterr().out
    run = ["cv", "--dataset", "deap", "--data-root", str(only), "--config", "tiny", "--folds",
           "2", "--set", "data.long_seconds=2", "--set", "data.n_sub=2", *cache, "--dry-run"]
    assert main(run) == 2 and "--ratings-csv FILE" in one_line_error(capsys)
    monkeypatch.chdir(csv.parent)  # a relative path, as typed
    assert main([*run, "--ratings-csv", csv.name]) == 0
    assert "2 subjects" in capsys.readouterr().out
    config = tmp_path / "mine.yaml"
    config.write_text(f"data: {{ratings_csv: {csv}}}\n")
    assert main([*run, "--config", str(config)]) == 0
    (tmp_path / "bad.yaml").write_text(f"data: {{ratings_csv: {tmp_path / 'none.csv'}}}\n")
    assert main([*run, "--config", str(tmp_path / "bad.yaml")]) == 2
    assert f"DEAP ratings file {tmp_path / 'none.csv'} not found" in one_line_error(capsys)
    assert main(["info", "dreamer", str(only), "--ratings-csv", str(csv)]) == 2
    assert "DEAP's .bdf recordings only" in one_line_error(capsys)


def test_ratings_csv_is_validated_and_part_of_the_run_fingerprint(bdf_apart, tmp_path,
                                                                  monkeypatch, caplog):
    """Another ratings file is another run (the labels changed), wherever it is named from;
    the .dat release and runs without the key keep their settings and fingerprints."""
    from physiosync.config import ConfigError, dump_config, ignored_keys, load_config
    from physiosync.runfolder import run_fingerprint

    only, csv = bdf_apart
    cfg = load_config({"data": {"root": str(only), "ratings_csv": str(csv)}})
    fp = run_fingerprint(cfg)
    assert fp["data"]["ratings_csv"][0][:2] == [csv.name, csv.stat().st_size]
    monkeypatch.chdir(csv.parent)
    assert run_fingerprint(load_config({"data": {"root": str(only),
                                                 "ratings_csv": csv.name}})) == fp
    assert f"ratings_csv: {csv}" in dump_config(
        load_config({"data": {"root": str(only), "ratings_csv": csv.name}}))
    csv.write_text(csv.read_text() + "\n")  # edited (here: one more line end)
    changed = run_fingerprint(cfg)
    assert changed["sha256"] != fp["sha256"] and changed["config"] == fp["config"]
    assert "ratings_csv" not in run_fingerprint(load_config({"data": {"root": str(only)}}))[
        "data"]
    with pytest.raises(ConfigError, match="'data.ratings_csv' must be a string"):
        load_config({"data": {"ratings_csv": 3}})
    with pytest.raises(ConfigError, match="'data.ratings_csv' .* DREAMER holds its ratings"):
        load_config({"data": {"name": "dreamer", "ratings_csv": "r.csv"}})
    from physiosync.synthetic import make_deap

    dat = make_deap(tmp_path / "dat", n_subjects=1, n_trials=2, seconds=2, seed=0)
    assert "data.ratings_csv" in ignored_keys(load_config(
        {"data": {"root": str(dat), "ratings_csv": str(csv)}}))
    with caplog.at_level(logging.WARNING, logger="physiosync"):
        DEAP(dat, ratings_csv=csv)  # the .dat release holds its ratings: said, not read
    assert f"the ratings file {csv} is not read; the .dat release holds its own" in caplog.text

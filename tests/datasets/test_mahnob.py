"""The MAHNOB-HCI reader (physiosync.datasets.mahnob) and its synthetic writer."""

from __future__ import annotations

import json
import logging
import re
import shutil

import mne
import numpy as np
import pyedflib
import pytest

from physiosync.datasets import MAHNOB, open_dataset
from physiosync.datasets._channels import MAHNOB_BDF_EXTRA, MAHNOB_EEG, MAHNOB_FELT_EMOTIONS
from physiosync.datasets.mahnob import natural_key, read_session, read_session_bdf
from physiosync.exceptions import DataFormatError, DataNotFoundError, UnknownSubjectError
from physiosync.synthetic import make_mahnob
from physiosync.synthetic.dreamer import synthetic_clip_seconds
from physiosync.synthetic.mahnob import session_id

SFREQ = 256
N_TRIALS = 4
SECONDS = 10.0
SEED = 3
IDS = (1, 2, 4)  # quirks: subject 3 has rated sessions without BDF files, 2 misses a trial
CLIP_S = synthetic_clip_seconds(N_TRIALS, SECONDS, SEED)


@pytest.fixture(scope="module")
def download(tmp_path_factory):
    return make_mahnob(tmp_path_factory.mktemp("mahnob") / "hci-tagging-database_download",
                       n_subjects=3, n_trials=N_TRIALS, seconds=SECONDS, seed=SEED)


@pytest.fixture(scope="module")
def dataset(download):
    return MAHNOB(download)


@pytest.fixture(scope="module")
def recordings(dataset):
    return {s: dataset.load_subject(s) for s in dataset.subjects}


def _copy(download, tmp_path):
    dst = tmp_path / "copy"
    shutil.copytree(download, dst)
    return dst


def _attrs(path):
    text = path.read_text()
    return dict(re.findall(r'(\w+)="([^"]*)"', text.split("<subject")[0]))


def _truth(bdf):
    """(onset, end) samples of the two Status pulses, read with MNE alone."""
    raw = mne.io.read_raw_bdf(bdf, preload=False, stim_channel="Status", verbose="error")
    ev = mne.find_events(raw, stim_channel="Status", mask=0xFFFF, mask_type="and",
                         consecutive=True, verbose="error")
    return raw, ev[:, 0]


# ------------------------------------------------------------------ writer format
def test_writer_layout_is_the_release_layout(download):
    sessions = download / "Sessions"
    names = {int(p.name) for p in sessions.iterdir()}
    for s in IDS:
        ks = [k for k in range(1, N_TRIALS + 1) if session_id(s, k) in names]
        assert len(ks) == (N_TRIALS - 1 if s == 2 else N_TRIALS)
        for k in ks:
            folder = sessions / str(session_id(s, k))
            assert (folder / f"Part_{s}_S_Trial{k}_emotion.bdf").is_file()
            attrs = _attrs(folder / "session.xml")
            assert attrs["isStim"] == "1" and 1 <= int(attrs["feltVlnc"]) <= 9
            neutral = sessions / str(session_id(s, k, "N"))
            assert (neutral / f"Part_{s}_N_Trial{k}_emotion.bdf").is_file()
            n_attrs = _attrs(neutral / "session.xml")
            assert n_attrs["isStim"] == "0" and not any(a.startswith("felt") for a in n_attrs)
    ghost = [sessions / str(session_id(3, k)) for k in range(1, N_TRIALS + 1)]
    assert all((g / "session.xml").is_file() and not list(g.glob("*.bdf")) for g in ghost)
    assert '<subject id="3"/>' in (ghost[0] / "session.xml").read_text()


def test_writer_bdf_channels_status_and_units(download):
    bdf = download / "Sessions" / str(session_id(1, 1)) / "Part_1_S_Trial1_emotion.bdf"
    with pyedflib.EdfReader(str(bdf)) as f:
        labels = f.getSignalLabels()
        assert labels == list(MAHNOB_EEG) + list(MAHNOB_BDF_EXTRA) + ["Status"]
        assert {f.getSampleFrequency(i) for i in range(len(labels))} == {SFREQ}
        assert f.getPhysicalDimension(labels.index("GSR1")) == "Ohm"
        status = f.readSignal(len(labels) - 1, digital=True)
    assert set(status.tolist()) == {0, 268}
    raw, (onset, end) = _truth(bdf)
    media = _attrs(bdf.parent / "session.xml")["mediaFile"]
    clip = CLIP_S[MAHNOB(download, verbose=False).stimuli.index(media)]
    assert onset == 30 * SFREQ and end - onset == clip * SFREQ
    assert raw.n_times == (60 + clip) * SFREQ


def test_writer_is_deterministic(tmp_path):
    a = make_mahnob(tmp_path / "a", n_subjects=1, n_trials=2, seconds=1.0, seed=5,
                    rest_seconds=1.0)
    b = make_mahnob(tmp_path / "b", n_subjects=1, n_trials=2, seconds=1.0, seed=5,
                    rest_seconds=1.0)
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    assert all((a / f).read_bytes() == (b / f).read_bytes() for f in files
               if f.name != ".physiosync-files")
    assert not [f for f in files if f.name.startswith(".physiosync-tmp-")]


def test_writer_ratings_are_the_simulation_s_for_each_clip(recordings):
    """Trial t of every subject carries the simulated ratings of clip t, the clip whose
    state drove the signals (the writer's video index, whatever the presentation order)."""
    from physiosync.synthetic._dynamics import Simulation
    from physiosync.synthetic._simulate import check_simulation_options

    sim = Simulation(SEED, check_simulation_options(1.0, 0.0), 2.0, max(IDS), N_TRIALS,
                     CLIP_S.astype(float), low=1, high=9, integer=True, n_scales=4)
    for s, rec in recordings.items():
        got = rec.ratings[["valence", "arousal", "dominance", "predictability"]].to_numpy()
        np.testing.assert_array_equal(got, sim.reported[s - 1, rec.trials])


def test_writer_in_the_dynamics_mode(tmp_path):
    out = make_mahnob(tmp_path, n_subjects=2, n_trials=2, seconds=2.0, seed=1,
                      rest_seconds=30.0, affect="dynamics", quirks=False)
    ds = MAHNOB(out, verbose=False)
    assert ds.subjects == [1, 2] and not ds.skipped
    rec = ds.load_subject(2)
    assert rec.n_trials == 2 and rec.baseline("eeg", 0).shape == (32, 30 * SFREQ)


def test_writer_never_writes_over_real_sessions(tmp_path):
    real = tmp_path / "Sessions" / "2"
    real.mkdir(parents=True)
    (real / "session.xml").write_text("<session/>")
    with pytest.raises(Exception, match="did not write"):
        make_mahnob(tmp_path, n_subjects=1, n_trials=1, seconds=1.0, rest_seconds=1.0)
    assert (real / "session.xml").read_text() == "<session/>"


# ------------------------------------------------------------------ reader: the folder
def test_subjects_stimuli_and_skipped_sessions(download, caplog):
    with caplog.at_level(logging.INFO, logger="physiosync"):
        ds = MAHNOB(download)
    assert ds.subjects == list(IDS)
    assert ds.sessions_dir == download / "Sessions"
    numbers = [int(m.split(".")[0]) for m in ds.stimuli]
    assert numbers == sorted(numbers) and len(ds.stimuli) == N_TRIALS
    assert list(ds.stimuli) != sorted(ds.stimuli)  # natural order, not lexicographic
    # every neutral-clip session (the one before each stimulus session) is unrated
    neutral = {str(int(sid) - 1) for sid in ds.table.session_id}
    assert set(ds.skipped["unrated"]) == neutral and len(neutral) == 3 * N_TRIALS - 1
    ghost = [str(session_id(3, k)) for k in range(1, N_TRIALS + 1)]
    assert ds.skipped["no stimulus BDF"] == ghost
    lines = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(lines) == 2 and all("\n" not in line for line in lines)
    assert f"skipped {3 * N_TRIALS - 1} session(s), unrated: " in lines[0]
    assert lines[1].endswith("skipped 4 session(s), no stimulus BDF: " + ", ".join(ghost))
    assert "EXG4, EXG5, EXG6, EXG7, EXG8, GSR2, Erg1, Erg2 not read" in caplog.text
    assert repr(ds).endswith(f"{len(IDS)} subjects, {4 + 3 + 4} trials of 4 stimuli>")


@pytest.mark.parametrize("where", ["download", "sessions", "parent"])
def test_root_may_be_the_download_its_sessions_or_the_folder_above(download, where):
    root = {"download": download, "sessions": download / "Sessions",
            "parent": download.parent}[where]
    ds = MAHNOB(root, verbose=False)
    assert ds.sessions_dir == download / "Sessions" and ds.subjects == list(IDS)
    assert isinstance(open_dataset("mahnob", root), MAHNOB)


def test_root_errors(download, tmp_path):
    with pytest.raises(DataNotFoundError, match="does not exist"):
        MAHNOB(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataNotFoundError, match="No MAHNOB-HCI Sessions folder"):
        MAHNOB(tmp_path / "empty")
    for name in ("a", "b"):
        (tmp_path / "two" / name / "Sessions").mkdir(parents=True)
    with pytest.raises(DataNotFoundError, match="several MAHNOB-HCI Sessions folders"):
        MAHNOB(tmp_path / "two")
    (tmp_path / "unrated" / "Sessions" / "1").mkdir(parents=True)
    (tmp_path / "unrated" / "Sessions" / "1" / "session.xml").write_text(
        '<session isStim="0"><subject id="1"/></session>')
    with pytest.raises(DataNotFoundError, match="No rated MAHNOB-HCI emotion session"):
        MAHNOB(tmp_path / "unrated", verbose=False)


# ------------------------------------------------------------------ reader: a subject
@pytest.mark.parametrize("subject", IDS)
def test_round_trip_against_the_files(dataset, recordings, subject):
    """Each trial is its session's BDF between the two triggers, 30 s of baseline before."""
    rec = recordings[subject]
    rows = dataset.table[dataset.table.subject == subject].set_index("trial")
    assert rec.trials.tolist() == sorted(rows.index)
    assert rec.modalities == ("eeg", "ecg", "gsr", "resp", "temp")
    for t in rec.trials:
        folder = dataset.sessions_dir / str(rows.loc[t, "session_id"])
        k = rows.loc[t, "position"]
        assert folder.name == str(session_id(subject, k))
        bdf = folder / f"Part_{subject}_S_Trial{k}_emotion.bdf"
        raw, (onset, end) = _truth(bdf)
        data = raw.get_data(picks=list(MAHNOB_EEG) + ["EXG1", "EXG2", "EXG3", "GSR1", "Temp"],
                            start=onset - 30 * SFREQ, stop=end)
        np.testing.assert_allclose(rec.baseline("eeg", t), data[:32, :30 * SFREQ] * 1e6,
                                   atol=1e-6)
        np.testing.assert_allclose(rec.stimulus("eeg", t), data[:32, 30 * SFREQ:] * 1e6,
                                   atol=1e-6)
        np.testing.assert_allclose(rec.stimulus("ecg", t), data[32:35, 30 * SFREQ:] * 1e6,
                                   atol=1e-6)
        np.testing.assert_allclose(rec.stimulus("gsr", t)[0], 1e6 / data[35, 30 * SFREQ:])
        np.testing.assert_allclose(rec.baseline("temp", t)[0], data[36, :30 * SFREQ])
        assert rec.stimulus_lengths("eeg")[list(rec.trials).index(t)] == CLIP_S[t] * SFREQ
        attrs = _attrs(folder / "session.xml")
        assert dataset.stimuli[t] == attrs["mediaFile"]
        expected = [float(attrs[a]) for a in ("feltVlnc", "feltArsl", "feltCtrl", "feltPred")]
        assert rec.ratings.loc[t, ["valence", "arousal", "dominance", "predictability"]
                               ].tolist() == expected
        assert rec.ratings.loc[t, "felt_emotion"] == int(attrs["feltEmo"])


def test_trial_ids_name_the_stimulus_for_every_subject(dataset, recordings):
    table = dataset.table
    assert (table.groupby("trial").media_file.nunique() == 1).all()
    positions = {s: recordings[s].ratings["position"].to_dict() for s in IDS}
    assert positions[1] != positions[4]  # each subject saw the clips in an order of their own
    for t in range(N_TRIALS):  # a clip lasts as long for everyone who saw it
        lengths = {recordings[s].stimulus("eeg", t).shape[1] for s in IDS
                   if t in recordings[s].trials}
        assert lengths == {CLIP_S[t] * SFREQ}


def test_ratings_columns_and_scale(recordings):
    rec = recordings[1]
    assert list(rec.ratings.columns) == ["valence", "arousal", "dominance", "predictability",
                                         "felt_emotion", "position", "session_id"]
    values = rec.ratings[["valence", "arousal", "dominance", "predictability"]].to_numpy()
    assert ((values >= 1) & (values <= 9) & (values == np.round(values))).all()
    assert set(rec.ratings["felt_emotion"]) <= set(MAHNOB_FELT_EMOTIONS)
    assert sorted(rec.ratings["position"]) == list(range(1, N_TRIALS + 1))
    assert (rec.sessions == "0").all()


def test_units_and_mne_objects(recordings):
    from mne.io.constants import FIFF

    rec = recordings[1]
    assert rec.info("gsr").unit == "µS" and rec.info("ecg").unit == "µV"
    gsr = rec.stimulus("gsr", 0)
    assert 0.5 < np.median(gsr) < 100.0  # µS of skin conductance
    assert 20.0 < np.median(rec.stimulus("temp", 0)) < 40.0
    assert 1.0 < np.median(rec.stimulus("eeg", 0).std(axis=-1)) < 200.0  # µV
    raw = rec.to_raw("gsr")
    assert raw.info["chs"][0]["unit"] == FIFF.FIFF_UNIT_S
    np.testing.assert_allclose(raw.get_data()[0, :5], rec.baseline("gsr", 0)[0, :5] * 1e-6)
    epochs = rec.to_epochs("eeg")
    assert epochs.tmin == pytest.approx(-30.0) and len(epochs) == rec.n_trials
    assert set(epochs.get_channel_types()) == {"eeg"}
    assert set(rec.to_raw("ecg").get_channel_types()) == {"ecg"}
    assert "unprocessed" in epochs.info["description"]


def test_subject_comes_from_session_xml_not_the_folder(download, tmp_path, caplog):
    root = _copy(download, tmp_path)
    sessions = root / "Sessions"
    before = MAHNOB(root, verbose=False)
    expected = before.load_subject(4)
    for k in range(1, N_TRIALS + 1):  # subject 4's folders renumbered far from its block
        (sessions / str(session_id(4, k))).rename(sessions / str(9000 + k))
    moved = sessions / str(session_id(1, 1))  # a subject-1 folder that says subject 7
    xml = moved / "session.xml"
    xml.write_text(xml.read_text().replace('<subject id="1"/>', '<subject id="7"/>'))
    with caplog.at_level(logging.WARNING, logger="physiosync"):
        ds = MAHNOB(root)
    assert ds.subjects == [1, 2, 4, 7]
    assert f"session(s) {session_id(1, 1)}; the subject is taken from session.xml" in caplog.text
    rec = ds.load_subject(4)
    np.testing.assert_array_equal(rec.stimulus("eeg", 0), expected.stimulus("eeg", 0))
    assert sorted(rec.ratings["session_id"]) == [9001, 9002, 9003, 9004]
    assert ds.load_subject(7).n_trials == 1 and ds.load_subject(1).n_trials == N_TRIALS - 1


def test_unknown_subject(dataset):
    with pytest.raises(UnknownSubjectError, match="no readable session of subject 3"):
        dataset.load_subject(3)
    with pytest.raises(UnknownSubjectError, match="subject ids are integers 1..4"):
        dataset.subject_file("one")


def test_cache_identity_source_files_and_synthetic(dataset, download, tmp_path):
    assert dataset.cache_identity() == {"dataset": "MAHNOB-HCI", "format": "bdf",
                                        "stimuli": list(dataset.stimuli)}
    files = dataset.source_files([2])
    assert len(files) == 2 * (N_TRIALS - 1)
    assert {f.name for f in files[::2]} == {"session.xml"} and files[1].suffix == ".bdf"
    assert dataset.subject_file(2) == files[1]
    assert dataset.synthetic() and dataset.synthetic([1])
    root = _copy(download, tmp_path)
    (root / ".physiosync-files").unlink()
    assert not MAHNOB(root, verbose=False).synthetic()


# ------------------------------------------------------------------ variants of session.xml
def _listed(text):
    """The session ids of a log line's list (``1, 3-5, 7``)."""
    out = set()
    for part in text.split(", "):
        a, _, b = part.partition("-")
        out.update(range(int(a), int(b or a) + 1))
    return out


def _edit_xml(folder, old, new):
    xml = folder / "session.xml"
    text = xml.read_text()
    assert old in text
    xml.write_text(text.replace(old, new))


@pytest.mark.parametrize("edit, reason", [
    (lambda t: re.sub(r' feltVlnc="\d"', ' feltVlnc=""', t), "unrated"),
    (lambda t: re.sub(r' feltArsl="\d"', "", t), "unrated"),
    (lambda t: re.sub(r' feltPred="\d"', "", t), "incomplete ratings"),
    (lambda t: re.sub(r' mediaFile="[^"]*"', "", t), "no mediaFile"),
    (lambda t: t.replace('<subject id="1"/>', '<subject id="1_2"/>'), "subject id not a whole"),
])
def test_session_variants_are_skipped_and_listed(download, tmp_path, edit, reason, caplog):
    root = _copy(download, tmp_path)
    folder = root / "Sessions" / str(session_id(1, 2))
    xml = folder / "session.xml"
    xml.write_text(edit(xml.read_text()))
    with caplog.at_level(logging.WARNING, logger="physiosync"):
        ds = MAHNOB(root)
    key = next(k for k in ds.skipped if k.startswith(reason))
    assert folder.name in ds.skipped[key]
    (line,) = [r.getMessage() for r in caplog.records if f"session(s), {key}: " in r.getMessage()]
    assert int(folder.name) in _listed(line.split(f"{key}: ")[1])
    assert ds.load_subject(1).n_trials == N_TRIALS - 1


def test_a_rated_session_of_another_experiment_is_no_trial(download, tmp_path):
    root = _copy(download, tmp_path)
    folder = root / "Sessions" / str(session_id(4, 1))
    (folder / "Part_4_S_Trial1_emotion.bdf").rename(folder / "Part_4_Trial1_taggingVideos.bdf")
    _edit_xml(folder, 'mediaFile="', 'mediaFile="tagging_')
    ds = MAHNOB(root, verbose=False)
    assert ds.skipped["not an emotion-elicitation session"] == [folder.name]
    assert len(ds.stimuli) == N_TRIALS and not any("tagging" in m for m in ds.stimuli)
    assert ds.load_subject(4).n_trials == N_TRIALS - 1


def test_same_clip_twice_for_one_subject_is_refused_on_load(download, tmp_path):
    root = _copy(download, tmp_path)
    sessions = root / "Sessions"
    ds = MAHNOB(root, verbose=False)
    other = _attrs(sessions / str(session_id(1, 1)) / "session.xml")["mediaFile"]
    mine = _attrs(sessions / str(session_id(1, 2)) / "session.xml")["mediaFile"]
    _edit_xml(sessions / str(session_id(1, 2)), f'mediaFile="{mine}"', f'mediaFile="{other}"')
    ds = MAHNOB(root, verbose=False)
    with pytest.raises(DataFormatError, match=f"subject 1 was shown {re.escape(other)} in "
                                              "sessions"):
        ds.load_subject(1)
    assert ds.load_subject(2).n_trials == N_TRIALS - 1


def test_natural_key():
    names = ["111.avi", "53.avi", "9.avi", "a10", "a9"]
    assert sorted(names, key=natural_key) == ["9.avi", "53.avi", "111.avi", "a9", "a10"]


# ------------------------------------------------------------------ hostile session.xml
HOSTILE_XML = {
    "doctype": ('<?xml version="1.0"?>\n<!DOCTYPE lolz [<!ENTITY lol "lol">'
                '<!ENTITY lol2 "&lol;&lol;&lol;&lol;">]>\n<session feltVlnc="&lol2;"/>',
                "document type declaration"),
    "external": ('<?xml version="1.0"?>\n<!DOCTYPE s SYSTEM "file:///etc/passwd">\n'
                 '<session/>', "document type declaration"),
    "undefined entity": ('<session feltVlnc="&x;" feltArsl="5"/>', "not well-formed"),
    "not xml": ("\x00\x01garbage", "not well-formed"),
    "truncated": ('<session feltVlnc="5" feltArsl="5"><subject id="1"/', "not well-formed"),
    "deep": ("<session>" + "<a>" * 40 + "</a>" * 40 + "</session>", "levels deep"),
    "many": ("<session>" + "<a/>" * 10_001 + "</session>", "more than 10000 elements"),
    "big": ("<session>" + " " * (1 << 20) + "</session>", "more than the 1048576"),
    "root": ('<sessions feltVlnc="5" feltArsl="5"/>', "root element is <sessions>"),
    "rating 10": ('<session feltVlnc="10" feltArsl="5" feltCtrl="5" feltPred="5" '
                  'mediaFile="1.avi"><subject id="1"/></session>', "feltVlnc='10'"),
    "rating text": ('<session feltVlnc="5" feltArsl="high" feltCtrl="5" feltPred="5" '
                    'mediaFile="1.avi"><subject id="1"/></session>', "feltArsl='high'"),
    "no subject": ('<session feltVlnc="5" feltArsl="5"/>', "without a <subject id"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE_XML))
def test_hostile_session_xml_is_refused_in_one_line(tmp_path, case):
    text, match = HOSTILE_XML[case]
    folder = tmp_path / "Sessions" / "2"
    folder.mkdir(parents=True)
    (folder / "session.xml").write_text(text, encoding="latin-1")
    with pytest.raises(DataFormatError, match=re.escape(match)) as err:
        read_session(folder)
    message = str(err.value)
    assert "\n" not in message and str(folder / "session.xml") in message
    with pytest.raises(DataFormatError):
        MAHNOB(tmp_path, verbose=False)


# ------------------------------------------------------------------ hostile or odd BDF files
def _small_bdf(path, status, gsr=2e5, drop=None, unit="Ohm"):
    labels = list(MAHNOB_EEG) + list(MAHNOB_BDF_EXTRA) + ["Status"]
    headers = []
    for label in labels:
        headers.append(dict(label=label, dimension="uV", sample_frequency=SFREQ,
                            physical_min=-262144, physical_max=262143, digital_min=-8388608,
                            digital_max=8388607, transducer="", prefilter=""))
    low, high = (0, 10_000_000) if unit == "Ohm" else (-100, 100)  # 8 characters at most
    headers[labels.index("GSR1")].update(dimension=unit, physical_min=low, physical_max=high)
    headers[-1].update(dimension="Boolean", physical_min=-8388608, physical_max=8388607)
    n = len(status)
    data = [np.zeros(n) for _ in labels[:-1]] + [np.asarray(status, float)]
    data[labels.index("GSR1")] = np.full(n, float(gsr))
    if drop:
        keep = [i for i, lab in enumerate(labels) if lab != drop]
        labels, headers, data = ([x[i] for i in keep] for x in (labels, headers, data))
    with pyedflib.EdfWriter(str(path), len(labels), file_type=pyedflib.FILETYPE_BDF) as w:
        w.setSignalHeaders(headers)
        w.writeSamples(data)
    return path


def _status(*pulses, seconds=50):
    status = np.zeros(seconds * SFREQ)
    for at in pulses:
        status[int(at * SFREQ):int(at * SFREQ) + 10] = 268
    return status


def test_small_bdf_reads(tmp_path):
    status = _status(30, 40) + 0x1E0000  # BioSemi system bits above the 16 trigger bits
    part = read_session_bdf(_small_bdf(tmp_path / "a.bdf", status, gsr=4e5))
    assert part.stimulus["eeg"].shape == (32, 10 * SFREQ)
    assert part.baseline["gsr"].shape == (1, 30 * SFREQ)
    np.testing.assert_allclose(part.stimulus["gsr"], 2.5, rtol=1e-4)  # 1e6 / 4e5 Ohm
    assert part.gsr_unit == "skin resistance (Ohm), converted to conductance in µS"


def test_gsr_given_as_conductance_is_scaled_not_inverted(tmp_path):
    part = read_session_bdf(_small_bdf(tmp_path / "a.bdf", _status(30, 40), gsr=3.0,
                                       unit="uS"))
    np.testing.assert_allclose(part.stimulus["gsr"], 3.0, rtol=1e-4)
    assert part.gsr_unit.startswith("skin conductance (uS)")


def test_more_than_two_triggers_use_the_first_and_last(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="physiosync"):
        part = read_session_bdf(_small_bdf(tmp_path / "a.bdf", _status(30, 35, 42)))
    assert part.stimulus["eeg"].shape[1] == 12 * SFREQ
    assert "3 trigger pulses" in caplog.text


def test_short_pre_stimulus_gives_a_shorter_baseline(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="physiosync"):
        part = read_session_bdf(_small_bdf(tmp_path / "a.bdf", _status(12, 20)))
    assert part.baseline["eeg"].shape[1] == 12 * SFREQ
    assert "starts 12.00 s into the file" in caplog.text


@pytest.mark.parametrize("case, match", [
    ("one pulse", "1 trigger pulse(s)"),
    ("no status", "no Status"),
    ("missing channel", "missing channel(s) Cz"),
    ("zero resistance", "not positive"),
    ("too long", "apart; expected a stimulus of at most 600 s"),
])
def test_bad_bdf_content(tmp_path, case, match):
    path = tmp_path / "Part_1_S_Trial1_emotion.bdf"
    if case == "one pulse":
        _small_bdf(path, _status(30))
    elif case == "no status":
        _small_bdf(path, _status(30, 40), drop="Status")
    elif case == "missing channel":
        _small_bdf(path, _status(30, 40), drop="Cz")
    elif case == "zero resistance":
        _small_bdf(path, _status(30, 40), gsr=0.0)
    else:
        _small_bdf(path, _status(30, 640, seconds=650))
    with pytest.raises(DataFormatError, match=re.escape(match)) as err:
        read_session_bdf(path)
    assert str(path) in str(err.value)


@pytest.mark.parametrize("damage", ["truncated", "garbage"])
def test_damaged_bdf_is_refused_when_its_subject_is_loaded(download, tmp_path, damage):
    root = _copy(download, tmp_path)
    ds = MAHNOB(root, verbose=False)
    bdf = ds.source_files([2])[1]
    data = bdf.read_bytes()
    bdf.write_bytes(data[:len(data) // 2] if damage == "truncated"
                    else np.random.default_rng(0).bytes(5000))
    with pytest.raises(DataFormatError, match="truncated|not a BioSemi") as err:
        ds.load_subject(2)
    assert str(bdf) in str(err.value)
    assert ds.load_subject(1).n_trials == N_TRIALS


# ------------------------------------------------------------------ command line and a study
def test_cli_synth_and_info(tmp_path, capsys):
    from physiosync.cli import main

    out = tmp_path / "synth"
    assert main(["synth", "mahnob", str(out), "--subjects", "2", "--trials", "2",
                 "--seconds", "2", "--seed", "1"]) == 0
    assert (out / "Sessions" / str(session_id(1, 1))).is_dir()
    assert main(["info", "mahnob", str(out)]) == 0
    text = capsys.readouterr().out
    assert "<MAHNOB-HCI bdf at" in text and "<Recording MAHNOB-HCI subject 1" in text
    assert "gsr 256" in text


def test_a_tiny_cv_study_runs(download, tmp_path):
    from physiosync.cli import main

    out = tmp_path / "run"
    assert main(["cv", "--dataset", "mahnob", "--data-root", str(download), "--config", "tiny",
                 "--folds", "2", "--pipelines", "bandpower", "--out", str(out), "-q",
                 "--set", "protocol.one_class=constant", "--set", "data.target=arousal",
                 "--cache-dir", str(tmp_path / "cache")]) == 0
    report = json.loads((out / "report.json").read_text())
    text = json.dumps(report)
    assert "MAHNOB-HCI" in text and "bandpower" in text

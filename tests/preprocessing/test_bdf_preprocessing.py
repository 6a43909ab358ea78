"""The release preprocessing of original DEAP recordings (``bdf_preprocessing``)."""

import numpy as np
import pytest

from physiosync.datasets import DEAP
from physiosync.synthetic import make_deap_bdf
from physiosync.exceptions import PhysioSyncError
from physiosync.preprocessing.cache import cache_key, prepare, prepare_recording
from physiosync.params import PrepareParams
from physiosync.preprocessing.transforms import release_preprocess

SECONDS = 8
RAW = {"baseline": "none", "norm": {"eeg": "none", "gsr": "none"}}  # isolate the filtering


@pytest.fixture(scope="module")
def bdf(tmp_path_factory):
    root = make_deap_bdf(tmp_path_factory.mktemp("bdf"), n_subjects=1, n_trials=2,
                         seconds=SECONDS, seed=1)
    ds = DEAP(root)
    return ds, ds.load_subject(ds.subjects[0])


def _power(x, sfreq):
    freqs = np.fft.rfftfreq(x.shape[-1], 1 / sfreq)
    return freqs, (np.abs(np.fft.rfft(np.asarray(x, float), axis=-1)) ** 2).reshape(
        -1, freqs.size).sum(0)


def test_release_preprocess_passes_4_45_hz_and_removes_the_rest():
    t = np.arange(20 * 512) / 512
    tones = {1: 0, 10: 1, 30: 2, 60: 3, 100: 4}  # Hz -> channel
    x = np.stack([np.sin(2 * np.pi * f * t) for f in tones] + [np.zeros_like(t)])
    y = release_preprocess(x, 512, eeg=True)
    assert y.shape == (6, 20 * 128)
    # common average reference: the mean over channels is 0 at every sample
    assert np.abs(y.mean(0)).max() < 1e-12
    core = slice(256, -256)  # away from the filter's edge padding
    amp = np.sqrt(2) * (y[:, core] - y[5, core]).std(axis=1)  # undo the reference
    assert amp[1] == pytest.approx(1, abs=0.02) and amp[2] == pytest.approx(1, abs=0.02)
    assert amp[0] < 0.01  # 1 Hz: below the pass band
    assert amp[3] < 0.01  # 60 Hz: above it
    assert amp[4] < 0.01  # 100 Hz: above the new Nyquist frequency, not aliased to 28 Hz
    # peripheral signals are only resampled: a slow 1 Hz wave passes unchanged
    z = release_preprocess(x[:1], 512, eeg=False)
    assert np.abs(z[0, core] - np.sin(2 * np.pi * t[::4][core])).max() < 1e-3


def test_bdf_release_preprocessing_gives_the_release_format(bdf):
    ds, rec = bdf
    assert rec.sfreq("eeg") == 512
    prep = prepare_recording(rec, PrepareParams(modalities=("eeg", "gsr"), **RAW))
    assert prep.sfreq == {"eeg": 128.0, "gsr": 128.0}
    assert prep.data["eeg"].shape == (2, 32, SECONDS * 128)
    assert prep.data["gsr"].shape == (2, 1, SECONDS * 128)
    eeg = prep.data["eeg"]
    assert np.abs(eeg.mean(axis=1)).max() < 1e-5 * np.abs(eeg).mean()  # average reference
    f, p = _power(eeg, 128)
    f_raw, p_raw = _power(rec.stimulus_array("eeg"), 512)

    def outside(freqs, power):
        return power[(freqs < 2) | (freqs > 50)].sum() / power.sum()

    assert outside(f_raw, p_raw) > 0.5  # the synthetic EEG is mostly slow drift
    assert outside(f, p) < 0.01
    # the default pipeline (baseline, normalisation) also runs at 128 Hz
    assert prepare_recording(rec, PrepareParams()).data["eeg"].shape == (2, 32, SECONDS * 128)


def test_bdf_preprocessing_none_keeps_512_hz_and_changes_the_cache_key(bdf, tmp_path):
    ds, rec = bdf
    none = PrepareParams(modalities=("eeg", "gsr"), bdf_preprocessing="none", **RAW)
    prep = prepare_recording(rec, none)
    assert prep.sfreq == {"eeg": 512.0, "gsr": 512.0}
    assert prep.data["eeg"].shape == (2, 32, SECONDS * 512)
    np.testing.assert_array_equal(prep.data["eeg"], rec.stimulus_array("eeg").astype(np.float32))
    release = PrepareParams(modalities=("eeg", "gsr"), **RAW)
    s = ds.subjects[0]
    assert cache_key(ds, s, release)[0] != cache_key(ds, s, none)[0]
    cached = {p.bdf_preprocessing: prepare(ds, params=p, cache_dir=tmp_path)[s]
              for p in (release, none)}
    assert cached["release"].sfreq["eeg"] == 128 and cached["none"].sfreq["eeg"] == 512
    assert len(list(tmp_path.glob("DEAP-s*"))) == 2
    with pytest.raises(PhysioSyncError, match="bdf_preprocessing"):
        PrepareParams(bdf_preprocessing="raw")


def test_dat_recordings_ignore_bdf_preprocessing(tmp_path):
    from physiosync.synthetic import make_deap

    ds = DEAP(make_deap(tmp_path, n_subjects=1, n_trials=2, seconds=4, seed=0))
    rec = ds.load_subject(ds.subjects[0])
    a, b = (prepare_recording(rec, PrepareParams(bdf_preprocessing=v)) for v in ("release",
                                                                                  "none"))
    np.testing.assert_array_equal(a.data["eeg"], b.data["eeg"])


def test_release_preprocessed_recording_says_what_was_done_in_its_mne_info(bdf):
    from mne.io.constants import FIFF

    from physiosync.preprocessing.cache import _release_recording

    _, rec = bdf
    out = _release_recording(rec, ("eeg", "gsr"))
    eeg = out.to_epochs("eeg").info
    assert eeg["sfreq"] == 128 and eeg["highpass"] == 4.0 and eeg["lowpass"] == 45.0
    assert eeg["custom_ref_applied"] == FIFF.FIFFV_MNE_CUSTOM_REF_ON
    assert "band-passed 4-45 Hz, common average reference" in eeg["description"]
    gsr = out.to_epochs("gsr").info
    assert gsr["lowpass"] == 64.0 and gsr["custom_ref_applied"] == FIFF.FIFFV_MNE_CUSTOM_REF_OFF

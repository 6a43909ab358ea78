"""The synthetic signals carry the documented emotion effects, and none at effect 0."""

import numpy as np
import pytest
from scipy.signal import find_peaks, welch
from scipy.stats import spearmanr

from physiosync import PhysioSyncError
from physiosync.datasets import DEAP
from physiosync.datasets._channels import DEAP_EEG_GENEVA
from physiosync.synthetic._ratings import draw_ratings
from physiosync.synthetic._simulate import SubjectSimulator
from physiosync.synthetic import make_deap
from physiosync.preprocessing.descriptives import frontal_alpha_asymmetry


def _band_power(x, sf, lo, hi):
    f, p = welch(x, fs=sf, nperseg=int(2 * sf))
    return p[..., (f >= lo) & (f <= hi)].mean(-1)


def _sim(effect, seed=0):
    return SubjectSimulator(np.random.default_rng(seed), effect)


def test_frontal_alpha_asymmetry_follows_valence():
    names = list(DEAP_EEG_GENEVA)
    f3, f4 = names.index("F3"), names.index("F4")

    def faa(effect, v):
        x = _sim(effect).eeg(DEAP_EEG_GENEVA, 128.0, 128 * 30, v, 0.0)
        p = _band_power(x[[f3, f4]], 128.0, 8, 13)
        return np.log(p[1]) - np.log(p[0])

    assert faa(2.0, 1.0) - faa(2.0, -1.0) > 1.0
    assert abs(faa(0.0, 1.0) - faa(0.0, -1.0)) < 1e-9  # same seed, no effect: identical


def test_arousal_raises_fast_eeg_power_scr_and_heart_rate():
    sim_hi, sim_lo = _sim(2.0, 1), _sim(2.0, 1)
    x_hi = sim_hi.eeg(DEAP_EEG_GENEVA, 128.0, 128 * 30, 0.0, 1.0)
    x_lo = sim_lo.eeg(DEAP_EEG_GENEVA, 128.0, 128 * 30, 0.0, -1.0)
    assert _band_power(x_hi, 128.0, 20, 45).mean() > 3 * _band_power(x_lo, 128.0, 20, 45).mean()
    n = 256 * 60
    beats_hi = len(find_peaks(_sim(2.0).ecg(n, 256.0, 0, 1.0)[0], height=600, distance=60)[0])
    beats_lo = len(find_peaks(_sim(2.0).ecg(n, 256.0, 0, -1.0)[0], height=600, distance=60)[0])
    assert beats_hi - beats_lo >= 25  # about 20 bpm faster, over one minute
    # Skin conductance (1 / resistance) rises more often and more with arousal.
    scl_hi = 1e6 / _sim(2.0, 5).gsr(128 * 120, 128.0, 0, 1.0)[0]
    scl_lo = 1e6 / _sim(2.0, 5).gsr(128 * 120, 128.0, 0, -1.0)[0]

    def rises(scl):  # total rise of the 1 s-averaged conductance
        return np.diff(scl.reshape(-1, 128).mean(1)).clip(0).sum()

    assert rises(scl_hi) > 2 * rises(scl_lo)


def test_subjects_differ_and_ratings_have_consensus():
    a, b = _sim(1.0, 1), _sim(1.0, 2)
    assert a.eeg_gain != b.eeg_gain and a.heart_rate != b.heart_rate
    r = draw_ratings(0, 20, 10, low=1, high=9, integer=False, n_scales=2)
    assert r.shape == (20, 10, 2) and r.min() >= 1 and r.max() <= 9
    per_video = r[..., 0].mean(0)
    assert per_video.std() > 2 * r[..., 0].std(0).mean() / np.sqrt(20)
    assert np.any(r == 5.0)  # exact midpoints exist, to exercise threshold rules
    ints = draw_ratings(0, 5, 18, low=1, high=5, integer=True, n_scales=3)
    assert set(np.unique(ints)) <= {1, 2, 3, 4, 5}


@pytest.mark.parametrize("synchrony", [1.0, 0.0])
@pytest.mark.parametrize("effect,expect_strong", [(2.0, True), (0.0, False)])
def test_effect_is_visible_in_written_files(tmp_path, effect, expect_strong, synchrony):
    # The stimulus-locked fluctuation (synchrony) neither hides the emotion effect nor,
    # at effect 0, ties the signals to the ratings.
    root = make_deap(tmp_path / "d", n_subjects=3, n_trials=12, seconds=8, effect=effect, seed=4,
                     synchrony=synchrony)
    deap = DEAP(root)
    rs = [spearmanr(frontal_alpha_asymmetry(rec), rec.ratings["valence"]).statistic
          for rec in deap]
    if expect_strong:
        assert min(rs) > 0.6
    else:
        assert abs(np.mean(rs)) < 0.45


def test_same_seed_same_files(tmp_path):
    a = make_deap(tmp_path / "a", n_subjects=1, n_trials=2, seconds=5, seed=9)
    b = make_deap(tmp_path / "b", n_subjects=1, n_trials=2, seconds=5, seed=9)
    c = make_deap(tmp_path / "c", n_subjects=1, n_trials=2, seconds=5, seed=10)
    assert (a / "s01.dat").read_bytes() == (b / "s01.dat").read_bytes()
    assert (a / "s01.dat").read_bytes() != (c / "s01.dat").read_bytes()


def test_size_checks(tmp_path):
    with pytest.raises(PhysioSyncError, match="n_subjects"):
        make_deap(tmp_path, n_subjects=33)
    with pytest.raises(PhysioSyncError, match="n_trials"):
        make_deap(tmp_path, n_trials=0)
    with pytest.raises(PhysioSyncError, match="seconds"):
        make_deap(tmp_path, seconds=0)

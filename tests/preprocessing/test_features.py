"""Differential entropy against its closed form, band selectivity, and causal smoothing."""

import numpy as np
import pytest

from physiosync import PhysioSyncError
from physiosync.preprocessing.features import (DE_BANDS, band_powers, differential_entropy,
                                               smooth_within_trials)

SFREQ, N_TIMES = 128.0, 640  # a 5 s window at DEAP's rate
#: Largest deviation from the closed form of a mid-band sinusoid, per method (nats).
SINE_TOL = {"filter": 0.03, "welch": 0.01}


def _gaussian_de(var):
    return 0.5 * np.log(2 * np.pi * np.e * var)


def _sines(freq, amplitude, n=8, seed=0):
    t = np.arange(N_TIMES) / SFREQ
    phase = np.random.default_rng(seed).uniform(0, 2 * np.pi, (n, 1, 1))
    return amplitude * np.sin(2 * np.pi * freq * t + phase)  # (n, 1 channel, n_times)


@pytest.mark.parametrize("method", ["filter", "welch"])
@pytest.mark.parametrize("band", range(len(DE_BANDS)))
def test_de_of_a_sinusoid_is_the_closed_form_of_its_power(method, band):
    lo, hi = DE_BANDS[band]
    amplitude = 2.0
    de = differential_entropy(_sines((lo + hi) / 2, amplitude), SFREQ, method=method)
    assert de.shape == (8, 1, len(DE_BANDS))
    # a sinusoid of amplitude A has variance A^2 / 2
    np.testing.assert_allclose(de[:, 0, band], _gaussian_de(amplitude ** 2 / 2),
                               atol=SINE_TOL[method])


@pytest.mark.parametrize("method,low,high", [("filter", -0.08, -0.03),
                                             ("welch", -0.01, 0.01)])
def test_de_of_white_noise_is_the_closed_form_of_its_band_share(method, low, high):
    # white noise of variance s2 puts s2 * (hi - lo) / (fs / 2) in band [lo, hi)
    s2 = 4.0
    x = np.random.default_rng(1).normal(0, np.sqrt(s2), (500, 2, N_TIMES))
    de = differential_entropy(x, SFREQ, method=method, dtype=np.float64)
    expected = np.array([_gaussian_de(s2 * (hi - lo) / (SFREQ / 2)) for lo, hi in DE_BANDS])
    # the closed form is that of the band variance: invert h = 1/2 log(2 pi e var)
    var = np.exp(2 * de) / (2 * np.pi * np.e)
    bias = _gaussian_de(var.mean(axis=(0, 1))) - expected
    # the filter's skirts make every band about 10 % narrower than nominal: -0.054 nats
    assert np.all((bias > low) & (bias < high)), bias


@pytest.mark.parametrize("method", ["filter", "welch"])
@pytest.mark.parametrize("band", range(len(DE_BANDS)))
def test_each_band_feature_moves_only_with_power_in_its_band(method, band):
    noise = np.random.default_rng(2).normal(0, 1, (6, 1, N_TIMES))
    lo, hi = DE_BANDS[band]
    before = differential_entropy(noise, SFREQ, method=method)
    after = differential_entropy(noise + _sines((lo + hi) / 2, 1.0, n=6), SFREQ,
                                 method=method)
    change = (after - before).mean(axis=(0, 1))
    assert change[band] > 0.5, change
    # the other bands move by the filter's skirts at most: a tenth of the band's own change
    others = np.abs(np.delete(change, band))
    assert np.all(others < 0.1 * change[band]) and np.all(others < 0.1), change


def test_de_is_vectorised_over_leading_axes_and_channels():
    x = np.random.default_rng(3).normal(size=(2, 3, 4, N_TIMES)).astype(np.float32)
    de = differential_entropy(x, SFREQ)
    assert de.shape == (2, 3, 4, len(DE_BANDS)) and de.dtype == np.float32
    one = differential_entropy(x[1, 2, 3][None], SFREQ)[0]  # one channel on its own
    np.testing.assert_allclose(de[1, 2, 3], one, rtol=1e-6)
    assert differential_entropy(x, SFREQ, dtype=np.float64).dtype == np.float64
    # a flat channel stays finite
    assert np.isfinite(differential_entropy(np.zeros((1, 1, N_TIMES)), SFREQ)).all()


def test_de_refuses_bad_arguments_with_the_value():
    x = np.zeros((1, 2, N_TIMES))
    with pytest.raises(PhysioSyncError, match="method 'fir'"):
        differential_entropy(x, SFREQ, method="fir")
    with pytest.raises(PhysioSyncError, match="band 50-70 Hz .* 64 Hz"):
        differential_entropy(x, SFREQ, bands=((50, 70),))
    with pytest.raises(PhysioSyncError, match="shape"):
        differential_entropy(np.zeros(N_TIMES), SFREQ)
    with pytest.raises(PhysioSyncError, match="no frequency bin"):
        differential_entropy(x, SFREQ, bands=((10.1, 10.2),), method="welch")


def test_band_powers_moved_beside_de_and_still_importable_from_baselines():
    from physiosync.evaluation import baselines

    assert baselines.band_powers is band_powers
    x = np.random.default_rng(4).normal(size=(3, 2, N_TIMES))
    assert band_powers(x, SFREQ).shape == (3, 2 * 4)


# ---- smoothing -------------------------------------------------------------------------
def test_smoothing_is_a_causal_moving_average_within_each_trial():
    f = np.arange(1.0, 7.0)[:, None] * [1.0, 10.0]           # 6 windows, 2 features
    trial = np.array([[1, 0], [1, 0], [1, 0], [1, 1], [1, 1], [2, 0]])  # (subject, trial)
    window = np.array([0, 1, 2, 0, 1, 0])
    out = smooth_within_trials(f, trial, window, width=2)
    np.testing.assert_allclose(out[:, 0], [1, 1.5, 2.5, 4, 4.5, 6])
    np.testing.assert_allclose(out[:, 1], out[:, 0] * 10)
    # causal: changing a later window changes no earlier one
    g = f.copy()
    g[2] += 100
    np.testing.assert_array_equal(smooth_within_trials(g, trial, window, 2)[:2], out[:2])
    # never across trials: same subject other trial, same trial id other subject
    g = f.copy()
    g[[0, 1, 2]] += 100
    np.testing.assert_array_equal(smooth_within_trials(g, trial, window, 3)[3:],
                                  smooth_within_trials(f, trial, window, 3)[3:])


def test_smoothing_ignores_row_order_and_skips_missing_windows():
    rng = np.random.default_rng(5)
    f = rng.normal(size=(20, 3))
    trial = np.repeat([0, 1], 10)
    window = np.tile(np.arange(10), 2)
    out = smooth_within_trials(f, trial, window, width=3)
    perm = rng.permutation(20)
    np.testing.assert_allclose(smooth_within_trials(f[perm], trial[perm], window[perm], 3),
                               out[perm])
    # window 4 of trial 0 absent: window 5 averages windows 3 (too far) .. 5 present = 5 only
    keep = np.flatnonzero(~((trial == 0) & (window == 4)))
    gap = smooth_within_trials(f[keep], trial[keep], window[keep], width=2)
    row = np.flatnonzero((trial[keep] == 0) & (window[keep] == 5))[0]
    np.testing.assert_allclose(gap[row], f[5])
    assert np.array_equal(smooth_within_trials(f, trial, window, 1), f)


def test_smoothing_refuses_bad_inputs():
    f = np.zeros((3, 2))
    with pytest.raises(PhysioSyncError, match="width must be an integer >= 1, got 0"):
        smooth_within_trials(f, [0, 0, 0], [0, 1, 2], 0)
    with pytest.raises(PhysioSyncError, match="same trial and window"):
        smooth_within_trials(f, [0, 0, 0], [0, 1, 1], 2)
    with pytest.raises(PhysioSyncError, match="one row per window"):
        smooth_within_trials(f, [0, 0], [0, 1], 2)


def test_band_powers_are_the_same_whatever_the_block_size(monkeypatch):
    """The windows are transformed a block at a time to bound the memory (the windows of
    14 full-size SEED subjects, transformed at once, took more than 23 GB); a window's
    features must not depend on its block, bit for bit."""
    from physiosync.preprocessing import features

    x = np.random.default_rng(3).standard_normal((37, 5, 256)).astype(np.float32)
    whole = features.band_powers(x, 128.0)  # one block: 37 x 5 x 256 < _BLOCK_SAMPLES
    monkeypatch.setattr(features, "_BLOCK_SAMPLES", 5 * 256 * 4)  # blocks of 4 windows
    assert np.array_equal(features.band_powers(x, 128.0), whole)
    monkeypatch.setattr(features, "_BLOCK_SAMPLES", 1)  # one window per block
    assert np.array_equal(features.band_powers(x, 128.0), whole)
    assert whole.shape == (37, 5 * len(features.BANDS)) and np.isfinite(whole).all()

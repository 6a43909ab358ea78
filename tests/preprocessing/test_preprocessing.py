"""Baseline removal, normalisation and labels, against plain re-computations."""

import numpy as np
import pandas as pd
import pytest

from physiosync import PhysioSyncError
from physiosync.params import PrepareParams
from physiosync.preprocessing.transforms import make_labels, normalize, remove_baseline


@pytest.fixture
def trial():
    rng = np.random.default_rng(3)
    return rng.standard_normal((2, 3, 640)), rng.standard_normal((2, 3, 384))


def test_baseline_deviation_matches_the_formula(trial):
    stim, base = trial
    out = remove_baseline(stim, base, 128.0, "deviation")
    template = (base[..., :128] + base[..., 128:256] + base[..., 256:]) / 3
    expected = stim - np.tile(template, (1, 1, 5))
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)
    assert out.dtype == np.float32


def test_baseline_deviation_uses_last_whole_seconds_and_partial_tail():
    stim = np.zeros((1, 1, 300))
    base = np.concatenate([np.full(10, 100.0), np.tile(np.arange(128.0), 3)])[None, None]
    out = remove_baseline(stim, base, 128.0, "deviation")
    np.testing.assert_allclose(out[0, 0, :128], -np.arange(128.0))
    np.testing.assert_allclose(out[0, 0, 256:], -np.arange(44.0))


def test_baseline_mean_and_none(trial):
    stim, base = trial
    np.testing.assert_allclose(remove_baseline(stim, base, 128.0, "mean"),
                               stim - base.mean(-1, keepdims=True), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(remove_baseline(stim, base, 128.0, "none"), stim, rtol=1e-6)


def test_baseline_needs_a_whole_second():
    with pytest.raises(PhysioSyncError, match="at least 1 s"):
        remove_baseline(np.zeros((1, 1, 256)), np.zeros((1, 1, 100)), 128.0)
    with pytest.raises(PhysioSyncError, match="allowed values"):
        remove_baseline(np.zeros((1, 1, 256)), np.zeros((1, 1, 128)), 128.0, "median")


def test_normalize_spatial_and_channel(trial):
    x = trial[0].astype(np.float32) * 7 + 3
    spatial = normalize(x.copy(), "spatial")
    ref = (x - x.mean(1, keepdims=True)) / x.std(1, keepdims=True)
    np.testing.assert_allclose(spatial, ref, rtol=1e-4, atol=1e-4)
    chan = normalize(x.copy(), "channel")
    np.testing.assert_allclose(chan.mean(-1), 0, atol=1e-5)
    np.testing.assert_allclose(chan.std(-1), 1, atol=1e-4)
    np.testing.assert_array_equal(normalize(x.copy(), "none"), x)
    with pytest.raises(PhysioSyncError, match="at least 2 channels"):
        normalize(x[:, :1].copy(), "spatial")
    flat = np.ones((1, 2, 10), np.float32)
    assert np.isfinite(normalize(flat, "channel")).all()


def test_labels_binary_threshold_is_inclusive():
    r = pd.DataFrame({"valence": [4.99, 5.0, 9.0, 1.0], "arousal": [5.0, 4.0, 5.0, 4.99]})
    np.testing.assert_array_equal(make_labels(r, "valence", 5.0), [0, 1, 1, 0])
    np.testing.assert_array_equal(make_labels(r, "arousal", 5.0), [1, 0, 1, 0])


def test_four_class_quadrants_without_the_reference_bug():
    # The reference assigns class 3 whenever A <= 5 and V <= 5, overwriting exact 5.0s.
    r = pd.DataFrame({"valence": [5.0, 4.0, 5.0, 4.0, 7.0, 2.0],
                      "arousal": [5.0, 5.0, 4.0, 4.0, 8.0, 8.0]})
    labels = make_labels(r, "four", 5.0)
    np.testing.assert_array_equal(labels, [0, 1, 2, 3, 0, 1])
    dreamer = pd.DataFrame({"valence": [3, 2, 3, 1], "arousal": [3, 3, 2, 1]})
    np.testing.assert_array_equal(make_labels(dreamer, "four", 3.0), [0, 1, 2, 3])


def test_label_errors():
    r = pd.DataFrame({"valence": [1.0], "arousal": [2.0]})
    with pytest.raises(PhysioSyncError, match="no 'liking' rating"):
        make_labels(r, "liking", 5.0)
    with pytest.raises(PhysioSyncError, match="target"):
        make_labels(r, "happiness", 5.0)


def test_params_validation_and_defaults():
    p = PrepareParams()
    assert p.norm_for("eeg") == "spatial" and p.norm_for("gsr") == "channel"
    assert PrepareParams(norm={"gsr": "none"}).to_dict()["norm"] == {"eeg": "spatial",
                                                                    "gsr": "none"}
    with pytest.raises(PhysioSyncError, match="baseline"):
        PrepareParams(baseline="z")
    with pytest.raises(PhysioSyncError, match="norm"):
        PrepareParams(norm={"eeg": "robust"})
    with pytest.raises(PhysioSyncError, match="stimulus_seconds"):
        PrepareParams(stimulus_seconds=-1)


def test_normalize_subject_keeps_amplitude_differences_between_trials():
    rng = np.random.default_rng(3)
    base = rng.normal(5.0, 2.0, (3, 1, 384))
    x = np.stack([k * np.ones((1, 640)) for k in (1.0, 2.0, 4.0)])
    out = normalize(x.copy(), "subject", base)
    np.testing.assert_allclose(out, x / base.std())  # one scale per subject and channel
    assert out[2].max() == pytest.approx(4 * out[0].max())  # a per-trial z-score loses this
    with pytest.raises(PhysioSyncError, match="needs the subject's baselines"):
        normalize(x.copy(), "subject")


def test_subject_norm_is_part_of_the_cache_key():
    from physiosync.preprocessing.cache import cache_key
    from physiosync.synthetic import make_deap
    from physiosync.datasets import DEAP
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        ds = DEAP(make_deap(tmp, n_subjects=1, n_trials=1, seconds=1.0))
        default = cache_key(ds, 1, PrepareParams())[0]
        assert cache_key(ds, 1, PrepareParams(norm={"gsr": "channel"}))[0] == default
        assert cache_key(ds, 1, PrepareParams(norm={"gsr": "subject"}))[0] != default

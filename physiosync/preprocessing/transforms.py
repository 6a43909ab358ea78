"""Baseline removal, normalisation and labels: pure array functions.

All functions work on ``(n_trials, n_channels, n_samples)`` arrays of one modality
and one subject, in float32, and never look at other subjects or trials, so they
cannot leak information across a train/test split.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .._utils import check_option
from ..dataset_specs import CATEGORICAL_TARGETS
from ..exceptions import PhysioSyncError
from ..params import (BASELINE_METHODS, BDF_PREPROCESSING, NORM_METHODS, RELEASE_BAND,
                      RELEASE_SFREQ, TARGETS, THRESHOLDS, PrepareParams)

__all__ = [
    "PrepareParams", "remove_baseline", "normalize", "make_labels", "release_preprocess",
    "THRESHOLDS", "BASELINE_METHODS", "NORM_METHODS", "TARGETS", "BDF_PREPROCESSING",
    "RELEASE_SFREQ", "RELEASE_BAND",
]

_EPS = 1e-8


def release_preprocess(x: np.ndarray, sfreq: float, *, eeg: bool) -> np.ndarray:
    """DEAP's release preprocessing of one continuous segment.

    Parameters
    ----------
    x : ndarray, shape (n_channels, n_samples)
        One modality's signals at *sfreq*.
    sfreq : float
        Sampling rate of *x* in Hz.
    eeg : bool
        Whether *x* is the EEG: only EEG is band-passed and re-referenced.

    Returns
    -------
    y : ndarray of float64, shape (n_channels, round(n_samples * 128 / sfreq))
        *x* resampled to :data:`RELEASE_SFREQ` (128 Hz) by :func:`mne.filter.resample`,
        whose FFT method removes everything above the new Nyquist frequency (64 Hz)
        before decimating. EEG is then band-passed to :data:`RELEASE_BAND` (4-45 Hz)
        by :func:`mne.filter.filter_data` (zero-phase FIR, MNE's default transition
        bands) and re-referenced to the common average (the mean over channels is
        subtracted at every sample, as :func:`mne.set_eeg_reference` does with
        ``"average"``).
    """
    import mne

    y = np.asarray(x, dtype=np.float64)
    if sfreq != RELEASE_SFREQ:
        y = mne.filter.resample(y, up=RELEASE_SFREQ, down=float(sfreq), npad="auto",
                                verbose=False)
    if eeg:
        y = mne.filter.filter_data(y, RELEASE_SFREQ, *RELEASE_BAND, verbose=False)
        y = y - y.mean(axis=0, keepdims=True)
    return y


def remove_baseline(stimulus: np.ndarray, baseline: np.ndarray, sfreq: float,
                    method: str = "deviation", *, out: np.ndarray | None = None) -> np.ndarray:
    """Remove the pre-stimulus baseline from every trial.

    Parameters
    ----------
    stimulus : ndarray, shape (n_trials, n_channels, n_samples)
        Stimulus segments.
    baseline : ndarray, shape (n_trials, n_channels, n_baseline_samples)
        Baseline segments of the same trials.
    sfreq : float
        Sampling rate; ``"deviation"`` works in chunks of one second.
    method : {"deviation", "mean", "none"}
        See :class:`PrepareParams`.
    out : ndarray | None
        Where to write the result (may be *stimulus* itself, for in-place operation).
        By default a new float32 array.

    Returns
    -------
    out : ndarray, shape (n_trials, n_channels, n_samples)
    """
    check_option("baseline", method, BASELINE_METHODS)
    if out is None:
        out = stimulus.astype(np.float32, copy=True)
    elif out is not stimulus:
        out[...] = stimulus
    if method == "none":
        return out
    if baseline.shape[-1] == 0:
        raise PhysioSyncError(
            f"baseline={method!r} needs a pre-stimulus baseline, and this recording has none "
            "(SEED and SEED-IV hold the clips only); set baseline='none' (data.baseline: "
            "none in a configuration).")
    if method == "mean":
        out -= baseline.mean(axis=-1, keepdims=True, dtype=np.float64).astype(out.dtype)
        return out
    chunk = int(round(sfreq))
    if abs(chunk - sfreq) > 1e-9:
        raise PhysioSyncError(f"baseline='deviation' needs an integer sampling rate, got {sfreq}.")
    n_chunks = baseline.shape[-1] // chunk
    if n_chunks < 1:
        raise PhysioSyncError(
            f"baseline='deviation' needs at least 1 s of baseline; got {baseline.shape[-1]} "
            f"samples at {sfreq:g} Hz.")
    n_tr, n_ch = baseline.shape[:2]
    # The last whole seconds of the baseline, i.e. those closest to the stimulus.
    tail = baseline[..., baseline.shape[-1] - n_chunks * chunk:]
    template = tail.reshape(n_tr, n_ch, n_chunks, chunk).mean(axis=2, dtype=np.float64)
    template = template.astype(out.dtype)
    n_full = out.shape[-1] // chunk
    body = out[..., :n_full * chunk].reshape(n_tr, n_ch, n_full, chunk)
    body -= template[:, :, None, :]
    rest = out.shape[-1] - n_full * chunk
    if rest:
        out[..., n_full * chunk:] -= template[..., :rest]
    return out


def normalize(x: np.ndarray, method: str, baseline: np.ndarray | None = None) -> np.ndarray:
    """Normalise *x* in place and return it.

    Parameters
    ----------
    x : ndarray, shape (n_trials, n_channels, n_samples)
        Float array, modified in place.
    method : {"spatial", "channel", "subject", "none"}
        ``"spatial"``: z-score across channels at every time sample (a
        single-channel modality would become all zeros, so it is refused).
        ``"channel"``: z-score of each channel over its trial. ``"subject"``: each
        channel divided by one scale for the whole subject, the SD of *baseline*
        pooled over all its trials and samples; nothing is subtracted (the baseline
        step does that), so a trial whose responses are larger than another's stays
        larger. It reads the pre-stimulus baselines only, never a stimulus.
        ``"none"``: unchanged.
    baseline : ndarray, shape (n_trials, n_channels, n_baseline_samples) | None
        The subject's baselines; required by ``"subject"``.
    """
    check_option("norm", method, NORM_METHODS)
    if method == "none":
        return x
    if method == "subject":
        if baseline is None:
            raise PhysioSyncError("norm='subject' needs the subject's baselines.")
        if np.shape(baseline)[-1] == 0:
            raise PhysioSyncError(
                "norm='subject' scales by the SD of the pre-stimulus baselines, and this "
                "recording has none (SEED and SEED-IV hold the clips only); use 'channel', "
                "'spatial' or 'none'.")
        scale = np.asarray(baseline, dtype=np.float64).std(axis=(0, 2))[None, :, None]
        x /= np.maximum(scale, _EPS).astype(x.dtype)
        return x
    axis = 1 if method == "spatial" else 2
    if method == "spatial" and x.shape[1] < 2:
        raise PhysioSyncError(
            "norm='spatial' z-scores across channels and needs at least 2 channels; use "
            "'channel' or 'subject' for single-channel signals such as GSR.")
    mean = x.mean(axis=axis, keepdims=True)
    x -= mean
    std = np.sqrt(np.square(x).mean(axis=axis, keepdims=True))
    x /= np.maximum(std, _EPS)
    return x


def make_labels(ratings: pd.DataFrame, target: str, threshold: float | None) -> np.ndarray:
    """Class labels of trials from their ratings (or their declared classes).

    Parameters
    ----------
    ratings : DataFrame
        One row per trial with the rating columns (``valence``, ``arousal``, ...) and,
        for a categorical target, a column of that name holding class codes.
    target : str
        One of :data:`TARGETS`. A rating target is ``1`` (high) when the rating is
        ``>= threshold``. ``"four"`` gives the quadrants 0 = HA-HV, 1 = HA-LV,
        2 = LA-HV, 3 = LA-LV, with "low" meaning strictly below the threshold on both
        axes (the reference's ``<= 5`` bug is not reproduced). A categorical target
        (``"emotion"``: SEED's three classes, SEED-IV's four) is its column's integer
        codes, which the reader numbered 0..K-1.
    threshold : float | None
        For example :data:`THRESHOLDS` ``["deap"]`` = 5 or ``["dreamer"]`` = 3 (the
        display names ``"DEAP"``, ``"DREAMER"`` find the same entries); unused by a
        categorical target (a dataset without ratings has ``None``).

    Returns
    -------
    labels : ndarray of int64, shape (n_trials,)
    """
    check_option("target", target, TARGETS)
    if target in CATEGORICAL_TARGETS:
        if target not in ratings:
            raise PhysioSyncError(f"This dataset has no {target!r} classes; available: "
                                  f"{', '.join(ratings.columns)}.")
        codes = ratings[target].to_numpy()
        if not (np.isfinite(codes.astype(float)).all() and (codes >= 0).all()
                and (codes == np.round(codes)).all()):
            raise PhysioSyncError(f"target {target!r}: class codes must be integers 0, 1, ...;"
                                  f" got {sorted(set(codes.tolist()))[:8]}.")
        return codes.astype(np.int64)
    if threshold is None:
        raise PhysioSyncError(f"target {target!r} is a rating, but this dataset has no "
                              "rating threshold (it has no ratings).")
    if target == "four":
        for col in ("valence", "arousal"):
            if col not in ratings:
                raise PhysioSyncError(f"target 'four' needs a {col!r} rating column.")
        high_a = ratings["arousal"].to_numpy() >= threshold
        high_v = ratings["valence"].to_numpy() >= threshold
        return np.where(high_a, np.where(high_v, 0, 1), np.where(high_v, 2, 3)).astype(np.int64)
    if target not in ratings:
        raise PhysioSyncError(
            f"This dataset has no {target!r} rating; available: {', '.join(ratings.columns)}.")
    return (ratings[target].to_numpy() >= threshold).astype(np.int64)

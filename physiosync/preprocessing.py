"""Baseline removal, normalisation and labels: pure array functions.

All functions work on ``(n_trials, n_channels, n_samples)`` arrays of one modality
and one subject, in float32, and never look at other subjects or trials, so they
cannot leak information across a train/test split.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from .exceptions import PhysioSyncError

__all__ = [
    "PrepareParams", "remove_baseline", "normalize", "make_labels", "release_preprocess",
    "THRESHOLDS", "BASELINE_METHODS", "NORM_METHODS", "TARGETS", "BDF_PREPROCESSING",
    "RELEASE_SFREQ", "RELEASE_BAND",
]

BASELINE_METHODS = ("deviation", "mean", "none")
NORM_METHODS = ("spatial", "channel", "none")
TARGETS = ("valence", "arousal", "dominance", "liking", "four")
#: Rating at or above which a trial is "high", per dataset (DEAP 1-9, DREAMER 1-5 scales).
THRESHOLDS = {"DEAP": 5.0, "DREAMER": 3.0}
#: Four-class quadrant codes.
QUADRANTS = {0: "HA-HV", 1: "HA-LV", 2: "LA-HV", 3: "LA-LV"}
#: What ``PrepareParams.bdf_preprocessing`` may be.
BDF_PREPROCESSING = ("release", "none")
#: Sampling rate (Hz) and EEG pass band (Hz) of DEAP's preprocessed (``.dat``) release.
RELEASE_SFREQ = 128.0
RELEASE_BAND = (4.0, 45.0)
_EPS = 1e-8


def _check_option(name, value, allowed):
    if value not in allowed:
        raise PhysioSyncError(
            f"Invalid {name} {value!r}; allowed values are {', '.join(map(repr, allowed))}.")


@dataclass(frozen=True)
class PrepareParams:
    """Everything that determines the prepared arrays (and so the cache key).

    Parameters
    ----------
    modalities : tuple of str
        Modalities to prepare, e.g. ``("eeg", "gsr")`` for DEAP, ``("eeg", "ecg")``
        for DREAMER.
    baseline : {"deviation", "mean", "none"}
        ``"deviation"`` (PhysioSync): the mean of the baseline's 1 s
        chunks is subtracted from every 1 s chunk of the stimulus. ``"mean"``: the
        baseline's per-channel mean is subtracted. ``"none"``: nothing.
    norm : dict of str -> str
        Per-modality normalisation: ``"spatial"`` (z-score across channels at every
        time sample, the reference's EEG normalisation), ``"channel"`` (z-score of
        each channel over its trial) or ``"none"``. Modalities not listed use
        ``"spatial"`` for EEG and ``"channel"`` for the rest (the reference leaves GSR
        raw; pass ``{"gsr": "none"}`` to reproduce that).
    stimulus_seconds : float | None
        Stimulus length to keep from every trial. ``None`` keeps the longest length
        common to all trials of the subject (60 s on DEAP; the shortest clip on
        DREAMER).
    stimulus_align : {"start", "end"}
        Keep the first (``"start"``, the reference's choice on DREAMER) or the last
        *stimulus_seconds* of each stimulus.
    dtype : str
        Storage dtype of the prepared arrays.
    bdf_preprocessing : {"release", "none"}
        What happens to the original DEAP recordings (``sXX.bdf``, 512 Hz) before the
        steps above; recordings from any other file are not touched. ``"release"``
        (default) reproduces the preprocessed ``.dat`` release, for which the
        configurations are tuned: every modality is resampled to 128 Hz (with MNE's
        anti-alias low-pass), and EEG is band-passed 4-45 Hz and re-referenced to the
        common average (see :func:`release_preprocess`). Each trial (its baseline and
        stimulus, contiguous in the file) is filtered on its own, so the first and last
        tenths of a second see the filter's edge padding. The release also removed
        EOG artefacts; that is not reproduced. ``"none"``: the signals at 512 Hz, as
        recorded.
    """

    modalities: tuple = ("eeg", "gsr")
    baseline: str = "deviation"
    norm: dict = field(default_factory=dict)
    stimulus_seconds: float | None = None
    stimulus_align: str = "start"
    dtype: str = "float32"
    bdf_preprocessing: str = "release"

    def __post_init__(self):
        object.__setattr__(self, "modalities", tuple(self.modalities))
        object.__setattr__(self, "norm", dict(self.norm))
        _check_option("baseline", self.baseline, BASELINE_METHODS)
        _check_option("stimulus_align", self.stimulus_align, ("start", "end"))
        _check_option("bdf_preprocessing", self.bdf_preprocessing, BDF_PREPROCESSING)
        for m, method in self.norm.items():
            _check_option(f"norm[{m!r}]", method, NORM_METHODS)
        if self.stimulus_seconds is not None and not self.stimulus_seconds > 0:
            raise PhysioSyncError(
                f"stimulus_seconds must be positive or None, got {self.stimulus_seconds!r}.")
        if not self.modalities:
            raise PhysioSyncError("modalities must name at least one modality.")

    def norm_for(self, modality: str) -> str:
        """Normalisation method used for *modality*."""
        return self.norm.get(modality, "spatial" if modality == "eeg" else "channel")

    def to_dict(self) -> dict:
        """A JSON-serialisable description (used for the cache key)."""
        d = asdict(self)
        d["modalities"] = list(self.modalities)
        d["norm"] = {m: self.norm_for(m) for m in self.modalities}
        return d


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
    _check_option("baseline", method, BASELINE_METHODS)
    if out is None:
        out = stimulus.astype(np.float32, copy=True)
    elif out is not stimulus:
        out[...] = stimulus
    if method == "none":
        return out
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


def normalize(x: np.ndarray, method: str) -> np.ndarray:
    """Z-score *x* in place and return it.

    Parameters
    ----------
    x : ndarray, shape (n_trials, n_channels, n_samples)
        Float array, modified in place.
    method : {"spatial", "channel", "none"}
        ``"spatial"``: across channels at every time sample (a single-channel modality
        would become all zeros, so it is refused). ``"channel"``: each channel over
        its trial. ``"none"``: unchanged.
    """
    _check_option("norm", method, NORM_METHODS)
    if method == "none":
        return x
    axis = 1 if method == "spatial" else 2
    if method == "spatial" and x.shape[1] < 2:
        raise PhysioSyncError(
            "norm='spatial' z-scores across channels and needs at least 2 channels; use "
            "'channel' for single-channel signals such as GSR.")
    mean = x.mean(axis=axis, keepdims=True)
    x -= mean
    std = np.sqrt(np.square(x).mean(axis=axis, keepdims=True))
    x /= np.maximum(std, _EPS)
    return x


def make_labels(ratings: pd.DataFrame, target: str, threshold: float) -> np.ndarray:
    """Class labels of trials from their ratings.

    Parameters
    ----------
    ratings : DataFrame
        One row per trial with ``valence``, ``arousal`` (and ``dominance``, ``liking``).
    target : {"valence", "arousal", "dominance", "liking", "four"}
        A binary target is ``1`` (high) when the rating is ``>= threshold``. ``"four"``
        gives the quadrants 0 = HA-HV, 1 = HA-LV, 2 = LA-HV, 3 = LA-LV, with "low"
        meaning strictly below the threshold on both axes (the reference's ``<= 5``
        bug is not reproduced).
    threshold : float
        For example :data:`THRESHOLDS` ``["DEAP"]`` = 5 or ``["DREAMER"]`` = 3.

    Returns
    -------
    labels : ndarray of int64, shape (n_trials,)
    """
    _check_option("target", target, TARGETS)
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

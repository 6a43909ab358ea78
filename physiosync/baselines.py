"""Simple baselines to report next to PhysioSync.

:class:`BandPowerClassifier` is the classic affective-computing baseline: log band
powers of every channel (Welch), standardised, then logistic regression. It takes the
same inputs as :class:`~physiosync.estimator.PhysioSyncClassifier` (windows as
``(n_windows, n_channels, n_times)`` or a dict of modalities), so both can run on the
same folds of the same protocol.
"""

from __future__ import annotations

import numpy as np
from scipy.signal import welch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, column_or_1d, validate_data

from .exceptions import PhysioSyncError

__all__ = ["BandPowerClassifier", "band_powers", "BANDS"]

#: Classic EEG bands in Hz (theta, alpha, beta, gamma), within DEAP's 4-45 Hz band-pass.
BANDS = ((4.0, 8.0), (8.0, 13.0), (13.0, 30.0), (30.0, 45.0))


def band_powers(x: np.ndarray, sfreq: float, bands=BANDS) -> np.ndarray:
    """Log mean power of each channel in each band.

    Parameters
    ----------
    x : ndarray, shape (n_windows, n_channels, n_times)
        Windows.
    sfreq : float
        Sampling rate in Hz.
    bands : sequence of (float, float)
        Frequency bands ``[lo, hi)`` in Hz.

    Returns
    -------
    features : ndarray, shape (n_windows, n_channels * n_bands)
    """
    x = np.asarray(x, dtype=np.float64)
    nperseg = int(min(x.shape[-1], 2 * sfreq))
    freqs, psd = welch(x, fs=sfreq, nperseg=nperseg, axis=-1)
    cols = []
    for lo, hi in bands:
        sel = (freqs >= lo) & (freqs < hi)
        if not sel.any():
            raise PhysioSyncError(f"band {lo}-{hi} Hz has no frequency bin at {sfreq:g} Hz with "
                                  f"{nperseg}-sample segments.")
        cols.append(np.log(psd[..., sel].mean(-1) + 1e-20))
    return np.stack(cols, axis=-1).reshape(len(x), -1)


class BandPowerClassifier(ClassifierMixin, BaseEstimator):
    """Log band powers per channel + standardisation + logistic regression.

    Parameters
    ----------
    sfreq : float | dict of str -> float
        Sampling rate (per modality for dict input).
    bands : sequence of (float, float)
        Frequency bands.
    C : float
        Inverse regularisation strength of the logistic regression.
    """

    def __init__(self, sfreq=128.0, bands=BANDS, C=0.1):
        self.sfreq = sfreq
        self.bands = bands
        self.C = C

    def _features(self, X) -> np.ndarray:
        if isinstance(X, dict):
            parts = []
            for m, v in X.items():
                sf = self.sfreq[m] if isinstance(self.sfreq, dict) else self.sfreq
                parts.append(band_powers(v, sf, self.bands))
            return np.concatenate(parts, axis=1)
        X = np.asarray(X)
        if X.ndim == 2:
            X = X[:, None, :]
        return band_powers(X, float(self.sfreq), self.bands)

    def fit(self, X, y, **ignored):
        """Fit on windows; extra keyword arguments (subject, trial, ...) are ignored."""
        if not isinstance(X, dict):
            X, y = validate_data(self, X, y, allow_nd=True, dtype=np.float64)
        y = column_or_1d(y, warn=True)
        check_classification_targets(y)
        self.classes_ = np.unique(y)
        self.pipeline_ = make_pipeline(StandardScaler(),
                                       LogisticRegression(C=self.C, max_iter=2000))
        self.pipeline_.fit(self._features(X), y)
        return self

    def predict_proba(self, X):
        """Class probabilities, columns in ``classes_`` order."""
        check_is_fitted(self)
        if not isinstance(X, dict):
            X = validate_data(self, X, allow_nd=True, dtype=np.float64, reset=False)
        return self.pipeline_.predict_proba(self._features(X))

    def predict(self, X):
        """Predicted classes."""
        proba = self.predict_proba(X)
        return self.classes_[proba.argmax(1)]

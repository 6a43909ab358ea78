"""Simple baselines to report next to PhysioSync.

:class:`BandPowerClassifier` is the classic affective-computing baseline: log band
powers of every channel (Welch), standardised, then logistic regression. It takes the
same inputs as :class:`~physiosync.estimators.PhysioSyncClassifier` (windows as
``(n_windows, n_channels, n_times)`` or a dict of modalities), so both can run on the
same folds of the same protocol.

:class:`StimulusPriorClassifier` looks at no signal at all: it predicts a stimulus
from the labels other subjects gave the same stimulus in training. Under protocols that
keep the test subjects' stimuli in training (``loso``, ``subject-kfold``) its score is
what knowing the stimulus alone is worth.
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

from ..exceptions import PhysioSyncError

__all__ = ["BandPowerClassifier", "StimulusPriorClassifier", "band_powers", "BANDS"]

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


def _stimulus_ids(X) -> np.ndarray:
    """Stimulus ids from 1-D ids or ``(n, 2)`` ``(subject, trial)`` pairs."""
    X = np.asarray(X)
    if X.ndim == 2 and X.shape[1] == 2:
        return X[:, 1]
    if X.ndim == 1:
        return X
    raise PhysioSyncError(f"X must be stimulus ids, shape (n,), or (subject, trial) pairs, "
                          f"shape (n, 2); got shape {X.shape}.")


class StimulusPriorClassifier(ClassifierMixin, BaseEstimator):
    """Predict a stimulus from the training labels of the same stimulus.

    The probability of each class for a stimulus is the share of training rows of that
    stimulus with that class: with one row per ``(subject, trial)`` unit, the
    frequencies of the other subjects' labels for the same video. A stimulus absent
    from training (every held-out stimulus under ``within-trial-kfold``,
    ``within-loto`` or ``subject-stimulus-kfold``) gets the class frequencies of all
    training rows, the prior, so there the classifier is at chance level by
    construction.

    It uses no signal, only which stimulus a row shows; a protocol under which it
    scores above chance lets a model score by recognising the stimulus.

    Attributes
    ----------
    classes_ : ndarray, shape (n_classes,)
        Sorted class labels.
    stimuli_ : ndarray, shape (n_stimuli,)
        Sorted stimulus ids seen in training.
    stimulus_proba_ : ndarray, shape (n_stimuli, n_classes)
        Class frequencies of each training stimulus (rows follow ``stimuli_``).
    prior_ : ndarray, shape (n_classes,)
        Class frequencies of all training rows, for unseen stimuli.

    Examples
    --------
    >>> import numpy as np
    >>> units = np.array([[1, 0], [2, 0], [3, 0], [1, 1], [2, 1]])  # (subject, trial)
    >>> clf = StimulusPriorClassifier().fit(units, [1, 1, 0, 0, 0])
    >>> clf.predict_proba([[4, 0], [4, 1], [4, 7]]).round(2)
    array([[0.33, 0.67],
           [1.  , 0.  ],
           [0.6 , 0.4 ]])
    """

    def fit(self, X, y):
        """Count the classes of each stimulus.

        Parameters
        ----------
        X : array, shape (n,) or (n, 2)
            Stimulus id of each row, or ``(subject, trial)`` pairs (the trial is the
            stimulus). Each row counts once: give one row per unit, not per window,
            to weight subjects equally.
        y : array, shape (n,)
            Class of each row.

        Returns
        -------
        self : StimulusPriorClassifier
        """
        stim = _stimulus_ids(X)
        y = column_or_1d(y, warn=True)
        if len(stim) != len(y) or len(y) == 0:
            raise PhysioSyncError(f"X and y must have the same, non-zero length; got "
                                  f"{len(stim)} and {len(y)}.")
        check_classification_targets(y)
        self.classes_, y_idx = np.unique(y, return_inverse=True)
        self.stimuli_, s_idx = np.unique(stim, return_inverse=True)
        counts = np.zeros((len(self.stimuli_), len(self.classes_)))
        np.add.at(counts, (s_idx, y_idx), 1.0)
        self.stimulus_proba_ = counts / counts.sum(1, keepdims=True)
        self.prior_ = counts.sum(0) / counts.sum()
        return self

    def predict_proba(self, X):
        """Class frequencies of each row's stimulus (the prior for unseen stimuli).

        Parameters
        ----------
        X : array, shape (n,) or (n, 2)
            Stimulus ids or ``(subject, trial)`` pairs.

        Returns
        -------
        proba : ndarray, shape (n, n_classes)
            Columns in ``classes_`` order.
        """
        check_is_fitted(self)
        stim = _stimulus_ids(X)
        pos = np.searchsorted(self.stimuli_, stim).clip(0, len(self.stimuli_) - 1)
        seen = self.stimuli_[pos] == stim
        return np.where(seen[:, None], self.stimulus_proba_[pos], self.prior_[None])

    def predict(self, X):
        """Most frequent class of each row's stimulus (ties: the first in ``classes_``)."""
        proba = self.predict_proba(X)
        return self.classes_[proba.argmax(1)]

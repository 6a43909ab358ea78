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

:class:`DEClassifier` is the standard baseline of EEG emotion recognition: the
differential entropy of five bands per channel, optionally smoothed within each trial,
standardised, then a logistic regression or an RBF SVM whose ``C`` and ``gamma`` are
chosen on the protocol's validation windows.
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit, softmax
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, PredefinedSplit
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, column_or_1d, validate_data

from .._utils.checks import check_option
from ..exceptions import PhysioSyncError
from ..params import DE_METHODS
from ..preprocessing.features import (BANDS, DE_BANDS, band_powers, differential_entropy,
                                      smooth_within_trials)
from .._utils.docs import fill_doc

__all__ = ["BandPowerClassifier", "DEClassifier", "StimulusPriorClassifier", "band_powers",
           "BANDS", "DE_BANDS", "DE_ESTIMATORS"]


class _ChannelShares:
    """``channel_importance`` of a classifier of per-channel band features (``layout_``,
    ``bands``) whose last step is linear (``pipeline_[-1].coef_``)."""

    def channel_importance(self, modality="eeg"):
        """Share of each channel of *modality* in the logistic regression's weights.

        The sum over bands (and classes) of the absolute standardised coefficients of
        each channel, divided by the total over the channels of *modality*.

        Parameters
        ----------
        modality : str | None
            A modality of the dict given to :meth:`fit` (None for array input).

        Returns
        -------
        importance : ndarray, shape (n_channels,) | None
            None for a model without per-feature weights (the RBF SVM), or when
            *modality* was not fitted.
        """
        check_is_fitted(self)
        last = self.pipeline_[-1]
        if not hasattr(last, "coef_"):  # an RBF kernel has no per-feature weight
            return None
        return _channel_shares(last.coef_, self.layout_, len(self.bands), modality)


@fill_doc
class BandPowerClassifier(_ChannelShares, ClassifierMixin, BaseEstimator):
    """Log band powers per channel + standardisation + logistic regression.

    Parameters
    ----------
    %(sfreq_modalities)s
    bands : sequence of (float, float)
        Frequency bands.
    C : float
        Inverse regularisation strength of the logistic regression.

    Attributes
    ----------
    classes_ : ndarray, shape (n_classes,)
        Sorted class labels.
    pipeline_ : sklearn.pipeline.Pipeline
        The fitted scaler and logistic regression.
    layout_ : list of (str | None, int)
        The modalities in feature order and their channel counts; each channel has
        ``len(bands)`` consecutive features.
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

    @staticmethod
    def _layout(X) -> list:
        if isinstance(X, dict):
            return [(m, np.shape(v)[1]) for m, v in X.items()]
        return [(None, 1 if np.ndim(X) == 2 else np.shape(X)[1])]

    def fit(self, X, y, **ignored):
        """Fit on windows; extra keyword arguments (subject, trial, ...) are ignored."""
        if not isinstance(X, dict):
            X, y = validate_data(self, X, y, allow_nd=True, dtype=np.float64)
        y = column_or_1d(y, warn=True)
        check_classification_targets(y)
        self.classes_ = np.unique(y)
        self.layout_ = self._layout(X)
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


def _channel_shares(coef, layout, n_bands: int, modality):
    """Per channel of *modality*, its share of the absolute coefficients over its bands.

    *layout* lists ``(modality, n_channels)`` in feature order, each channel holding
    *n_bands* consecutive features; None when *modality* is not in it.
    """
    coef = np.abs(coef).sum(0)
    start = 0
    for name, n_channels in layout:
        if name == modality:
            w = coef[start:start + n_channels * n_bands].reshape(n_channels, n_bands).sum(1)
            return w / w.sum() if w.sum() > 0 else w
        start += n_channels * n_bands
    return None


#: The classifiers :class:`DEClassifier` may end with.
DE_ESTIMATORS = ("lr", "svm")


@fill_doc
class DEClassifier(_ChannelShares, ClassifierMixin, BaseEstimator):
    """Differential entropy per channel and band + standardisation + LR or RBF SVM.

    The features are :func:`~physiosync.preprocessing.features.differential_entropy`
    of every channel in every band, optionally smoothed by a causal moving average
    over the windows of each trial
    (:func:`~physiosync.preprocessing.features.smooth_within_trials`), then
    standardised on the training windows and classified by a logistic regression
    (``estimator="lr"``) or an RBF support-vector machine (``"svm"``).

    With *param_grid*, :meth:`fit` chooses the hyper-parameters on the validation
    windows it is given (``X_val``, ``y_val``): every combination is trained on the
    training windows and scored (balanced accuracy) on the validation windows
    (:class:`~sklearn.model_selection.PredefinedSplit`), then the best is refitted on
    the training windows alone, so the final model learns from the same windows as a
    model that used the validation windows only to choose its epoch. Without
    validation windows, or with validation windows of one class (on which balanced
    accuracy would favour whatever predicts that class), *C* and *gamma* are used and
    ``selection_`` says so. Nothing but the windows given to :meth:`fit` is seen
    before prediction.

    Parameters
    ----------
    %(sfreq_modalities)s
    bands : sequence of (float, float)
        Bands in Hz (default: delta, theta, alpha, beta, gamma,
        :data:`~physiosync.preprocessing.features.DE_BANDS`).
    method : {"welch", "filter"}
        How each band's variance is measured (see
        :func:`~physiosync.preprocessing.features.differential_entropy`).
    smoothing : int
        Width, in windows, of the causal moving average within each trial (1: none).
        Above 1, :meth:`fit` and :meth:`predict_proba` need *window_ids*.
    estimator : {"lr", "svm"}
        Logistic regression or RBF SVM. The SVM's probabilities are the logistic
        function (softmax for more than two classes) of its decision values: not
        calibrated, but they rank windows for the ROC AUC, average into trial votes,
        and their most probable class is the SVM's prediction.
    C : float
        Inverse regularisation strength, used unless a search on validation windows
        chooses another.
    gamma : float
        RBF kernel width in units of ``1 / n_features`` (``"svm"``; the features are
        standardised, so 1 is scikit-learn's ``gamma="scale"``).
    param_grid : dict of str -> list | None
        Values of ``"C"`` (and ``"gamma"``, same units as *gamma*) searched on the
        validation windows; None: no search.

    Attributes
    ----------
    classes_ : ndarray, shape (n_classes,)
        Sorted class labels.
    best_params_ : dict
        The ``C`` (and ``gamma``) of the fitted model.
    selection_ : str
        ``"validation"`` (chosen on the validation windows), ``"default (no validation
        windows)"``, ``"default (validation windows of one class)"`` (*C* and *gamma*
        used) or ``"fixed"`` (no *param_grid*).
    search_scores_ : list of dict
        With a search: each combination's parameters and validation balanced accuracy.
    pipeline_ : sklearn.pipeline.Pipeline
        The fitted scaler and classifier.
    layout_ : list of (str | None, int)
        The modalities in feature order and their channel counts; each channel has
        ``len(bands)`` consecutive features.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((40, 2, 256))
    >>> X[20:, 0] *= 3                                # class 1: more power on channel 0
    >>> y = np.repeat([0, 1], 20)
    >>> clf = DEClassifier(sfreq=128.0).fit(X, y)
    >>> clf.predict(X[[0, 39]])
    array([0, 1])
    """

    def __init__(self, sfreq=128.0, bands=DE_BANDS, method="welch", smoothing=1,
                 estimator="lr", C=1.0, gamma=1.0, param_grid=None):
        self.sfreq = sfreq
        self.bands = bands
        self.method = method
        self.smoothing = smoothing
        self.estimator = estimator
        self.C = C
        self.gamma = gamma
        self.param_grid = param_grid

    def _features(self, X, window_ids) -> tuple:
        """``(features, layout)``: one row per window; ``(modality, n_channels)`` pairs."""
        if not isinstance(X, dict):
            X = np.asarray(X)
            X = {None: X[:, None, :] if X.ndim == 2 else X}
        parts, layout = [], []
        for m, v in X.items():
            sf = self.sfreq[m] if isinstance(self.sfreq, dict) else self.sfreq
            de = differential_entropy(v, float(sf), self.bands, method=self.method,
                                      dtype=np.float64)
            parts.append(de.reshape(len(v), -1))
            layout.append((m, de.shape[-2]))
        features = np.concatenate(parts, axis=1)
        if self.smoothing != 1:
            if window_ids is None:
                raise PhysioSyncError(f"smoothing={self.smoothing} needs window_ids, the "
                                      "(subject, trial, window) of each window; pass them "
                                      "or set smoothing=1.")
            ids = np.asarray(window_ids)
            if ids.ndim != 2 or ids.shape[1] < 2:
                raise PhysioSyncError(f"window_ids must have shape (n_windows, k >= 2): the "
                                      f"trial columns, then the window index; got shape "
                                      f"{ids.shape}.")
            features = smooth_within_trials(features, ids[:, :-1], ids[:, -1].astype(np.int64),
                                            self.smoothing)
        return features, layout

    def _make(self, params: dict, n_features: int):
        if self.estimator == "lr":
            clf = LogisticRegression(C=params["C"], max_iter=2000)
        else:
            clf = SVC(C=params["C"], gamma=params["gamma"] / n_features, kernel="rbf")
        return make_pipeline(StandardScaler(), clf)

    @fill_doc
    def fit(self, X, y, X_val=None, y_val=None, window_ids=None, window_ids_val=None):
        """Fit on training windows, choosing hyper-parameters on validation windows.

        Parameters
        ----------
        %(training_windows)s
        X_val, y_val : same types | None
            Validation windows and labels, used only to choose among *param_grid*.
        window_ids, window_ids_val : ndarray, shape (n_windows, k) | None
            Per window, the columns that identify its trial (e.g. subject, trial) then
            its window index; needed when ``smoothing > 1``.

        Returns
        -------
        self : DEClassifier
        """
        check_option("method", self.method, DE_METHODS)
        check_option("estimator", self.estimator, DE_ESTIMATORS)
        if (isinstance(self.smoothing, bool) or not isinstance(self.smoothing, (int, np.integer))
                or self.smoothing < 1):
            raise PhysioSyncError(f"smoothing must be an integer >= 1 (windows averaged), got "
                                  f"{self.smoothing!r}.")
        if not isinstance(X, dict):
            X, y = validate_data(self, X, y, allow_nd=True, dtype=np.float64)
        y = column_or_1d(y, warn=True)
        check_classification_targets(y)
        self.classes_ = np.unique(y)
        features, self.layout_ = self._features(X, window_ids)
        n_features = features.shape[1]
        defaults = {"C": self.C} if self.estimator == "lr" else {"C": self.C,
                                                                 "gamma": self.gamma}
        self.search_scores_ = []
        if not self.param_grid:
            best, self.selection_ = defaults, "fixed"
        elif X_val is None or y_val is None or len(y_val) == 0:
            best, self.selection_ = defaults, "default (no validation windows)"
        elif len(np.unique(y_val)) < 2:
            # balanced accuracy on one class would favour whatever predicts that class
            best, self.selection_ = defaults, "default (validation windows of one class)"
        else:
            best = self._search(features, y, X_val, y_val, window_ids_val, defaults, n_features)
            self.selection_ = "validation"
        self.best_params_ = {k: float(v) for k, v in best.items()}
        self.pipeline_ = self._make(self.best_params_, n_features)
        self.pipeline_.fit(features, y)
        return self

    def _search(self, features, y, X_val, y_val, window_ids_val, defaults, n_features):
        unknown = set(self.param_grid) - set(defaults)
        if unknown:
            raise PhysioSyncError(f"param_grid keys {sorted(unknown)} are not parameters of "
                                  f"estimator={self.estimator!r}; use {sorted(defaults)}.")
        val, _ = self._features(X_val, window_ids_val)
        y_val = column_or_1d(y_val, warn=True)
        # Train on the training rows, score on the validation rows, once per combination.
        split = PredefinedSplit(np.r_[np.full(len(y), -1), np.zeros(len(y_val), dtype=int)])
        grid = {k: list(self.param_grid[k]) for k in self.param_grid}
        if "gamma" in grid:
            grid["svc__gamma"] = [g / n_features for g in grid.pop("gamma")]
        step = "svc" if self.estimator == "svm" else "logisticregression"
        grid = {(k if "__" in k else f"{step}__{k}"): v for k, v in grid.items()}
        search = GridSearchCV(self._make(defaults, n_features), grid,
                              scoring="balanced_accuracy", cv=split, refit=False,
                              error_score="raise")
        search.fit(np.concatenate([features, val]), np.concatenate([y, y_val]))
        best = dict(defaults)
        for key, value in search.best_params_.items():
            name = key.split("__", 1)[1]
            best[name] = value * n_features if name == "gamma" else value
        for params, score in zip(search.cv_results_["params"],
                                 search.cv_results_["mean_test_score"]):
            row = {k.split("__", 1)[1]: v for k, v in params.items()}
            if "gamma" in row:
                row["gamma"] *= n_features
            self.search_scores_.append({**row, "balanced_accuracy": float(score)})
        return best

    def predict_proba(self, X, window_ids=None):
        """Class probabilities, columns in ``classes_`` order.

        Parameters
        ----------
        X : dict of str -> ndarray | ndarray
            Windows, as in :meth:`fit`.
        window_ids : ndarray, shape (n_windows, k) | None
            As in :meth:`fit`; smoothing uses each window's own trial's earlier
            windows among *X*.

        Returns
        -------
        proba : ndarray, shape (n_windows, n_classes)
        """
        check_is_fitted(self)
        if not isinstance(X, dict):
            X = validate_data(self, X, allow_nd=True, dtype=np.float64, reset=False)
        features = self._features(X, window_ids)[0]
        if self.estimator == "lr":
            return self.pipeline_.predict_proba(features)
        decision = self.pipeline_.decision_function(features)
        if decision.ndim == 1:  # two classes: the second class's side is positive
            p1 = expit(decision)
            return np.column_stack([1 - p1, p1])
        return softmax(decision, axis=1)

    def predict(self, X, window_ids=None):
        """Predicted classes (the most probable)."""
        proba = self.predict_proba(X, window_ids)
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

"""The Riemannian tangent-space baseline, ``riemann-lr`` (optional extra ``riemann``).

Each window becomes the covariance matrix of its channels, estimated with shrinkage
(pyRiemann's :class:`~pyriemann.estimation.Covariances`, ``"oas"`` by default); the
covariances are mapped to the tangent space of the Riemannian manifold of symmetric
positive-definite matrices at their mean over the training windows
(:class:`~pyriemann.tangentspace.TangentSpace`), and a logistic regression classifies
the tangent vectors (Barachant et al., 2012, 2013). Its inverse regularisation ``C`` is
chosen on the protocol's validation windows, as ``de-svm`` chooses its own. This is
the "TS + LR" pipeline that MOABB benchmarks for motor imagery and that pyRiemann
documents; here it runs under every physiosync protocol, on the same folds as the other
pipelines.

References
----------
.. [1] A. Barachant, S. Bonnet, M. Congedo, C. Jutten. Multiclass brain-computer
   interface classification by Riemannian geometry. IEEE Transactions on Biomedical
   Engineering 59(4):920-928, 2012.
.. [2] A. Barachant, S. Bonnet, M. Congedo, C. Jutten. Classification of covariance
   matrices using a Riemannian-based kernel for BCI applications. Neurocomputing
   112:172-178, 2013.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, PredefinedSplit
from sklearn.pipeline import make_pipeline
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, column_or_1d

from .._utils.docs import fill_doc
from ..exceptions import PhysioSyncError
from .pipelines import EstimatorKind

__all__ = ["TangentSpaceClassifier", "check_pyriemann", "RIEMANN_LR"]

_MISSING = "the riemann-lr baseline needs pyRiemann: pip install 'physiosync[riemann]'"


def check_pyriemann():
    """Import pyRiemann, or say in one line how to install it.

    Returns
    -------
    pyriemann : module

    Raises
    ------
    PhysioSyncError
        If pyRiemann is not installed.
    """
    try:
        import pyriemann
        import pyriemann.estimation  # noqa: F401
        import pyriemann.tangentspace  # noqa: F401
    except ImportError:
        raise PhysioSyncError(_MISSING) from None
    return pyriemann


class TangentSpaceClassifier(ClassifierMixin, BaseEstimator):
    """Shrunk covariances, Riemannian tangent space, logistic regression.

    The channels of every modality given are stacked (they must share one window
    length) into one covariance matrix per window.

    With *C_grid*, :meth:`fit` chooses ``C`` on the validation windows it is given
    (``X_val``, ``y_val``): every value is trained on the training windows and scored
    (balanced accuracy) on the validation windows, then the best is refitted on the
    training windows alone. Without validation windows, or with validation windows of
    one class, *C* is used and :attr:`selection_` says so. The tangent space's
    reference point is the mean of the training covariances only.

    Parameters
    ----------
    estimator : str
        Covariance estimator of :class:`pyriemann.estimation.Covariances`.
    metric : str
        Metric of the mean and the tangent space
        (:class:`pyriemann.tangentspace.TangentSpace`).
    C : float
        Inverse regularisation strength of the logistic regression, used unless a
        search on validation windows chooses another.
    C_grid : list of float | None
        Values of ``C`` searched on the validation windows; None: no search.

    Attributes
    ----------
    classes_ : ndarray, shape (n_classes,)
        Sorted class labels.
    best_params_ : dict
        The ``C`` of the fitted model.
    selection_ : str
        ``"validation"``, ``"default (no validation windows)"``, ``"default
        (validation windows of one class)"`` or ``"fixed"`` (no *C_grid*).
    search_scores_ : list of dict
        With a search: each ``C`` and its validation balanced accuracy.
    pipeline_ : sklearn.pipeline.Pipeline
        The fitted tangent space and logistic regression (on covariances).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((40, 3, 256))
    >>> X[20:, 1] += X[20:, 0]                       # class 1: channels 0 and 1 correlate
    >>> y = np.repeat([0, 1], 20)
    >>> TangentSpaceClassifier().fit(X, y).predict(X[[0, 39]])
    array([0, 1])
    """

    def __init__(self, estimator="oas", metric="riemann", C=1.0, C_grid=None):
        self.estimator = estimator
        self.metric = metric
        self.C = C
        self.C_grid = C_grid

    def _covariances(self, X) -> np.ndarray:
        from pyriemann.estimation import Covariances

        if isinstance(X, dict):
            lengths = {m: np.shape(v)[-1] for m, v in X.items()}
            if len(set(lengths.values())) > 1:
                raise PhysioSyncError(
                    f"modalities {', '.join(lengths)} have windows of different lengths "
                    f"{sorted(set(lengths.values()))}; one covariance matrix needs one. Set "
                    "finetune.modalities to modalities of one sampling rate (e.g. [eeg]).")
            X = np.concatenate([np.asarray(v, dtype=np.float64) for v in X.values()], axis=1)
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 3 or X.shape[1] < 2:
            raise PhysioSyncError(f"windows must have shape (n_windows, n_channels >= 2, "
                                  f"n_times); got shape {X.shape}.")
        return Covariances(estimator=self.estimator).transform(X)

    def _make(self, C: float):
        from pyriemann.tangentspace import TangentSpace

        return make_pipeline(TangentSpace(metric=self.metric),
                             LogisticRegression(C=C, max_iter=2000))

    @fill_doc
    def fit(self, X, y, X_val=None, y_val=None):
        """Fit on training windows, choosing ``C`` on validation windows.

        Parameters
        ----------
        %(training_windows)s
        X_val, y_val : same types | None
            Validation windows and labels, used only to choose ``C``.

        Returns
        -------
        self : TangentSpaceClassifier
        """
        check_pyriemann()
        y = column_or_1d(y, warn=True)
        check_classification_targets(y)
        self.classes_ = np.unique(y)
        cov = self._covariances(X)
        if len(cov) != len(y):
            raise PhysioSyncError(f"X holds {len(cov)} windows and y {len(y)} labels.")
        self.search_scores_ = []
        C = float(self.C)
        if not self.C_grid:
            self.selection_ = "fixed"
        elif X_val is None or y_val is None or len(y_val) == 0:
            self.selection_ = "default (no validation windows)"
        elif len(np.unique(y_val)) < 2:
            # balanced accuracy on one class would favour whatever predicts that class
            self.selection_ = "default (validation windows of one class)"
        else:
            C = self._search(cov, y, self._covariances(X_val), column_or_1d(y_val, warn=True))
            self.selection_ = "validation"
        self.best_params_ = {"C": C}
        self.pipeline_ = self._make(C).fit(cov, y)
        return self

    def _search(self, cov, y, cov_val, y_val) -> float:
        # Train on the training rows, score on the validation rows, once per C.
        split = PredefinedSplit(np.r_[np.full(len(y), -1), np.zeros(len(y_val), dtype=int)])
        search = GridSearchCV(self._make(float(self.C)),
                              {"logisticregression__C": [float(c) for c in self.C_grid]},
                              scoring="balanced_accuracy", cv=split, refit=False,
                              error_score="raise")
        search.fit(np.concatenate([cov, cov_val]), np.concatenate([y, y_val]))
        for params, score in zip(search.cv_results_["params"],
                                 search.cv_results_["mean_test_score"]):
            self.search_scores_.append({"C": params["logisticregression__C"],
                                        "balanced_accuracy": float(score)})
        return float(search.best_params_["logisticregression__C"])

    def predict_proba(self, X):
        """Class probabilities, columns in ``classes_`` order."""
        check_is_fitted(self)
        return self.pipeline_.predict_proba(self._covariances(X))

    def predict(self, X):
        """Predicted classes (the most probable)."""
        return self.classes_[self.predict_proba(X).argmax(1)]


class _RiemannKind(EstimatorKind):
    """``riemann-lr``: :class:`TangentSpaceClassifier` with the options of
    ``baselines.riemann`` (:class:`~physiosync.pipeline_specs.RiemannParams`)."""

    def __init__(self):
        super().__init__(
            "riemann-lr", self._classifier, validation="fit",
            text="EEG covariances (shrinkage) in the Riemannian tangent space + logistic "
                 "regression, C chosen on the validation windows")

    @staticmethod
    def _classifier(cfg, data):
        return TangentSpaceClassifier(**cfg.baselines["riemann"])

    def preflight(self, cfg, data, folds: list, *, pipeline: str) -> None:
        """pyRiemann must be installed, and the windows must give one covariance each."""
        try:
            check_pyriemann()
            mods = tuple(cfg.finetune.modalities or data.slots.modalities)
            n_times = {data.slots.n_times(m) for m in mods}
            if len(n_times) > 1:
                raise PhysioSyncError(
                    f"modalities {', '.join(mods)} have windows of different lengths "
                    f"{sorted(n_times)}; one covariance matrix needs one. Set "
                    "finetune.modalities to modalities of one sampling rate (e.g. [eeg]).")
            if sum(data.slots.n_chans(m) for m in mods) < 2:
                raise PhysioSyncError(f"modalities {', '.join(mods)} have one channel; a "
                                      "covariance matrix needs two or more.")
        except PhysioSyncError as err:
            raise type(err)(f"pipeline {pipeline!r}: {err}") from None


#: The ``riemann-lr`` pipeline kind (declared in
#: :data:`physiosync.pipeline_specs.PIPELINE_KIND_SPECS`).
RIEMANN_LR = _RiemannKind()

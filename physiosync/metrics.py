"""Metrics over whole folds, window-level and trial-level, with chance levels.

Unlike the reference, which averages accuracy and F1 over test *batches*, every metric
here is computed once over all predictions of a fold.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn import metrics as skm

__all__ = ["classification_metrics", "trial_vote", "chance_level", "permutation_pvalue"]


def classification_metrics(y_true, y_pred, proba=None, *, n_classes: int = 2) -> dict:
    """Metrics of one set of predictions.

    Parameters
    ----------
    y_true, y_pred : array of int, shape (n,)
        True and predicted classes ``0..n_classes-1``.
    proba : array, shape (n, n_classes) | None
        Class probabilities, for ROC-AUC (binary targets only).
    n_classes : int
        2 for high/low targets, 4 for quadrants.

    Returns
    -------
    metrics : dict of str -> float
        Binary: ``accuracy``, ``balanced_accuracy``, ``f1`` (positive = high = 1),
        ``macro_f1`` and ``roc_auc`` (NaN when the test set holds one class or no
        probabilities are given). Four-class: ``accuracy``, ``balanced_accuracy``,
        ``macro_f1``, ``weighted_f1``.
    """
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    labels = list(range(n_classes))
    out = {"accuracy": float(skm.accuracy_score(y_true, y_pred))}
    with np.errstate(all="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # classes absent from a small test fold
            out["balanced_accuracy"] = float(skm.balanced_accuracy_score(y_true, y_pred))
            out["macro_f1"] = float(skm.f1_score(y_true, y_pred, labels=labels,
                                                 average="macro", zero_division=0))
            if n_classes == 2:
                out["f1"] = float(skm.f1_score(y_true, y_pred, pos_label=1, average="binary",
                                               zero_division=0))
                if proba is not None and len(np.unique(y_true)) == 2:
                    out["roc_auc"] = float(skm.roc_auc_score(y_true, np.asarray(proba)[:, 1]))
                else:
                    out["roc_auc"] = float("nan")
            else:
                out["weighted_f1"] = float(skm.f1_score(y_true, y_pred, labels=labels,
                                                        average="weighted", zero_division=0))
    return out


def trial_vote(y_true, proba, groups) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Trial-level predictions: the class with the highest mean probability per trial.

    Parameters
    ----------
    y_true : array, shape (n_windows,)
        Window labels (constant within a trial).
    proba : array, shape (n_windows, n_classes)
        Window class probabilities.
    groups : array, shape (n_windows, k)
        Identity of each window's trial, e.g. ``(subject, trial)`` columns.

    Returns
    -------
    y_trial, pred_trial, proba_trial : arrays, one row per trial
    """
    proba = np.asarray(proba)
    frame = pd.DataFrame(np.asarray(groups).reshape(len(proba), -1))
    keys = frame.apply(tuple, axis=1)
    codes, uniques = pd.factorize(keys)
    n = len(uniques)
    sums = np.zeros((n, proba.shape[1]))
    np.add.at(sums, codes, proba)
    counts = np.bincount(codes, minlength=n)[:, None]
    mean = sums / counts
    y_trial = np.zeros(n, dtype=np.int64)
    y_trial[codes] = np.asarray(y_true)
    return y_trial, mean.argmax(1), mean


def chance_level(y_test) -> float:
    """Accuracy of always predicting the test fold's majority class."""
    y = np.asarray(y_test)
    if y.size == 0:
        return float("nan")
    return float(np.bincount(y).max() / y.size)


def permutation_pvalue(y_true, y_pred, *, groups=None, n_permutations: int = 1000,
                       seed: int = 0, metric=skm.balanced_accuracy_score) -> float:
    """p-value of *metric* against label permutations.

    When *groups* (e.g. trial ids) is given, labels are permuted between groups, not
    windows, so that the windows of a trial keep one label (the honest null for
    trial-level labels).
    """
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    rng = np.random.default_rng(seed)
    observed = metric(y_true, y_pred)
    if groups is not None:
        codes, _ = pd.factorize(pd.Series(list(map(tuple, np.asarray(groups).reshape(len(y_true), -1)))))
        group_label = np.zeros(codes.max() + 1, dtype=y_true.dtype)
        group_label[codes] = y_true
    hits = 0
    for _ in range(n_permutations):
        if groups is None:
            perm = rng.permutation(y_true)
        else:
            perm = rng.permutation(group_label)[codes]
        hits += metric(perm, y_pred) >= observed
    return float((hits + 1) / (n_permutations + 1))

"""Metrics over whole folds, window-level and trial-level, with chance levels.

Unlike the reference, which averages accuracy and F1 over test *batches*, every metric
here is computed once over all predictions of a fold. Each metric of
:func:`classification_metrics` has its chance level (:func:`chance_levels`, pooled over
models by :func:`chance_levels_from_counts` and :func:`model_chance_levels`).

The subject-level headline metric and its permutation nulls live in
:mod:`~physiosync.evaluation.subject_level`; they are importable from here too.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn import metrics as skm
from .._utils.docs import fill_doc
# The subject-level metrics and their nulls, importable from here as the docs name them.
from .subject_level import (NULLS, default_chain_steps, headline_metric,
                            margin_preserving_tables, subject_level_score,
                            subject_permutation_test, subject_scores)

__all__ = ["classification_metrics", "trial_vote", "chance_level", "chance_levels",
           "chance_levels_from_counts", "model_chance_levels", "permutation_pvalue",
           "headline_metric", "subject_scores", "subject_level_score",
           "subject_permutation_test", "margin_preserving_tables", "default_chain_steps", "NULLS"]


@fill_doc
def classification_metrics(y_true, y_pred, proba=None, *, n_classes: int = 2) -> dict:
    """Metrics of one set of predictions.

    Parameters
    ----------
    y_true, y_pred : array of int, shape (n,)
        True and predicted classes ``0..n_classes-1``.
    proba : array, shape (n, n_classes) | None
        Class probabilities, for ROC-AUC (binary targets only).
    %(n_classes)s

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
    """Accuracy of always predicting the test fold's majority class.

    This looks at the test labels; :func:`chance_levels` gives the chance level of each
    metric from the training labels, as a label-blind model could reach it.
    """
    y = np.asarray(y_test)
    if y.size == 0:
        return float("nan")
    return float(np.bincount(y).max() / y.size)


@fill_doc
def chance_levels(y_test, y_train, n_classes: int = 2) -> dict:
    """Chance level of every metric of :func:`classification_metrics`.

    The chance level of a metric is the score of a predictor that ignores the input
    and knows only the training labels:

    - ``balanced_accuracy`` (mean recall over the classes present in the test labels):
      ``1 / n_classes`` when every class occurs, ``1 / n_present`` otherwise (always
      predicting a present class);
    - ``accuracy``: predicting the majority class of the *training* labels, scored on
      the test labels (ties between training classes: the mean over the tied classes);
    - ``roc_auc``: 0.5;
    - ``f1`` (binary, positive = 1 = high), ``macro_f1``, ``weighted_f1``: the larger of
      (a) the stratified predictor, which draws each prediction from the training class
      frequencies, scored on its expected confusion matrix (for binary F1 this is
      ``2 p q / (p + q)``, with ``p`` the test and ``q`` the training share of
      positives), and (b) the best constant predictor on the test labels (binary F1:
      always predict high, ``2 p / (1 + p)``).

    Parameters
    ----------
    y_test, y_train : array of int
        Test and training labels ``0..n_classes-1``. With ``y_train=None`` the test
        labels stand in for the training labels (accuracy: the test majority).
    %(n_classes)s

    Returns
    -------
    chance : dict of str -> float
        The keys of :func:`classification_metrics` for *n_classes*; NaN without test
        labels.
    """
    test = _class_counts(y_test, n_classes)
    train = test if y_train is None else _class_counts(y_train, n_classes)
    return chance_levels_from_counts(test[None], train[None], n_classes=n_classes)


def _class_counts(y, n_classes: int) -> np.ndarray:
    y = np.asarray(y, dtype=np.int64).ravel()
    if y.size and (y.min() < 0 or y.max() >= n_classes):
        raise ValueError(f"labels must be in 0..{n_classes - 1}, got {sorted(set(y.tolist()))}.")
    return np.bincount(y, minlength=n_classes).astype(float)


@fill_doc
def chance_levels_from_counts(test_counts, train_counts, *, n_classes: int = 2,
                              average: str = "all") -> dict:
    """:func:`chance_levels` of test sets pooled over several models.

    Each row is one evaluation set (e.g. one fold's test windows of one subject) with
    the class counts of its model's training labels; the chance level is that of the
    pooled test sets, each predicted from its own training labels (accuracy: each
    row's training majority; stratified predictor: each row's training frequencies).

    Parameters
    ----------
    test_counts, train_counts : array, shape (n_sets, n_classes)
        Class counts of the test labels and of the training labels of each set. A row
        of training counts that sums to 0 counts as uniform.
    %(n_classes)s
    average : {"all", "active"}
        Classes that macro F1 averages over. ``"all"``: every class, as
        :func:`classification_metrics` does for a fold. ``"active"``: as the
        per-subject metrics of :func:`~.subject_level.subject_scores` do, the classes
        present in the test labels or predicted; balanced accuracy and macro F1 are then
        NaN when the test labels hold fewer than two classes.

    Returns
    -------
    chance : dict of str -> float
        As :func:`chance_levels`.
    """
    if average not in ("all", "active"):
        raise ValueError(f"average must be 'all' or 'active', got {average!r}.")
    test = np.atleast_2d(np.asarray(test_counts, dtype=float))
    train = np.atleast_2d(np.asarray(train_counts, dtype=float))
    if test.shape != train.shape or test.shape[1] != n_classes:
        raise ValueError(f"test_counts and train_counts must both have shape (n_sets, "
                         f"{n_classes}), got {test.shape} and {train.shape}.")
    keys = (["accuracy", "balanced_accuracy", "macro_f1", "f1", "roc_auc"] if n_classes == 2
            else ["accuracy", "balanced_accuracy", "macro_f1", "weighted_f1"])
    total = test.sum()
    if total <= 0:
        return dict.fromkeys(keys, float("nan"))
    totals = train.sum(axis=1, keepdims=True)
    prior = np.divide(train, totals, out=np.full_like(train, 1.0 / n_classes),
                      where=totals > 0)
    # Accuracy of each set's training majority (ties: the mean over the tied classes).
    tied = prior >= prior.max(axis=1, keepdims=True) - 1e-12
    hits = (test * tied).sum(axis=1) / tied.sum(axis=1)
    pooled = test.sum(axis=0)

    def f1_per_class(conf):
        tp, support, predicted = np.diag(conf), conf.sum(axis=1), conf.sum(axis=0)
        denom = support + predicted
        return np.divide(2 * tp, denom, out=np.zeros(n_classes), where=denom > 0)

    stratified = f1_per_class(test.T @ prior)  # expected confusion: rows true, cols predicted
    constant = 2 * pooled / (pooled + total)  # F1 of class c when always predicting c
    share = pooled / total
    present = pooled > 0
    n_present = int(present.sum())
    # Balanced accuracy averages recall over the classes present in the test labels
    # (scikit-learn): 1/C when every class occurs, and any label-blind predictor
    # scores 1/C in expectation; always predicting a present class scores 1/n_present.
    out = {"accuracy": float(hits.sum() / total), "balanced_accuracy": 1.0 / n_present}
    if average == "all":
        out["macro_f1"] = float(max(stratified.mean(), constant.max() / n_classes))
    elif n_present < 2:  # per-subject metrics are undefined for one class
        out["balanced_accuracy"] = out["macro_f1"] = float("nan")
    else:
        active = present | (prior.sum(axis=0) > 0)
        # always predicting c: F1 of c over the classes present plus c itself
        per_constant = constant / (n_present + ~present)
        out["macro_f1"] = float(max(stratified[active].mean(), per_constant.max()))
    if n_classes == 2:
        out["f1"] = float(max(stratified[1], constant[1]))
        out["roc_auc"] = 0.5
    else:
        out["weighted_f1"] = float(max(share @ stratified, (share * constant).max()))
    return out


@fill_doc
def model_chance_levels(y_test, subjects, train_labels, *, n_classes: int = 2, folds=None,
                        average: str = "all") -> dict:
    """Chance levels of test windows, each predicted by its own fold's model.

    Parameters
    ----------
    y_test, subjects : array, shape (n,)
        Test labels and the subject of each.
    train_labels : dict | None
        The ``train_labels`` of a fold record of :func:`physiosync.evaluation.runner.cross_validate`:
        ``per_subject_models`` (bool), ``pooled`` (training class counts of the pooled
        model) and ``subjects`` (``{str(subject): counts}`` of the per-subject models).
        With *folds*, a mapping ``{fold: train_labels}``. ``None`` (a fold file written
        before training labels were recorded): the test labels stand in for the training
        labels, so the accuracy chance is the majority of the test labels.
    %(n_classes)s
    folds : array, shape (n,) | None
        Fold of each test window, when the windows come from several folds.
    average : {"all", "active"}
        See :func:`chance_levels_from_counts`.

    Returns
    -------
    chance : dict of str -> float
        As :func:`chance_levels`.
    """
    y = np.asarray(y_test, dtype=np.int64).ravel()
    subjects = np.asarray(subjects).ravel()
    folds = np.zeros(len(y), dtype=np.int64) if folds is None else np.asarray(folds).ravel()
    by_fold = train_labels if isinstance(train_labels, dict) and "pooled" not in train_labels \
        else {f: train_labels for f in np.unique(folds).tolist()}
    keys = pd.MultiIndex.from_arrays([folds, subjects]) if len(y) else []
    test_rows, train_rows = [], []
    for (fold, subject), idx in (pd.Series(np.arange(len(y))).groupby(keys).indices.items()
                                 if len(y) else []):
        test = _class_counts(y[idx], n_classes)
        record = by_fold.get(fold)
        if record is None:
            train = test
        else:
            counts = (record["subjects"].get(str(subject)) if record.get("per_subject_models")
                      else record["pooled"])
            if counts is None:
                raise ValueError(f"fold {fold}: no training labels recorded for the model of "
                                 f"subject {subject!r}.")
            train = np.asarray(counts, dtype=float)
        test_rows.append(test)
        train_rows.append(train)
    if not test_rows:
        return chance_levels_from_counts(np.zeros((1, n_classes)), np.zeros((1, n_classes)),
                                         n_classes=n_classes, average=average)
    return chance_levels_from_counts(np.array(test_rows), np.array(train_rows),
                                     n_classes=n_classes, average=average)


def permutation_pvalue(y_true, y_pred, *, groups=None, n_permutations: int = 1000,
                       seed: int = 0, metric=skm.balanced_accuracy_score) -> float:
    """p-value of *metric* against label permutations (deprecated: ignores subjects).

    .. deprecated::
        Use :func:`~.subject_level.subject_permutation_test`. This test permutes labels
        across all subjects, so a model that has only learnt each subject's label prior
        (a subject who rated most videos high) looks significant.

    When *groups* (e.g. trial ids) is given, labels are permuted between groups, not
    windows, so that the windows of a trial keep one label.
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

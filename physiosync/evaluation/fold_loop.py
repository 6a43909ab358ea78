"""One fold of any pipeline kind: its cells, the loop over its models, its metrics.

:func:`run_fold_with` is the fold loop of every pipeline kind: it checks the fold
(:func:`~physiosync.evaluation.protocols.check_disjoint`, :func:`one_class_models`),
groups the fold's cells by subject (or pools them, :func:`fold_cells`) and lets a
:class:`FoldRunner` say what is trained and applied per group. :func:`fold_metrics`
scores a fold's predictions with the chance levels of the labels its models learn
from (:func:`train_label_counts`), and :func:`permute_training_labels` draws the
training labels of a refit permutation null.

The runners themselves live in :mod:`~physiosync.evaluation.runners`, the fold files
in :mod:`~physiosync.evaluation.fold_store`, the loop over folds in
:mod:`~physiosync.evaluation.runner`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .._logging import deprecated_show_progress, verbose
from .._utils.checks import check_option
from .._utils.docs import fill_doc
from ..exceptions import PhysioSyncError
from ..params import ONE_CLASS_RULES
from ..training.sampling import SlotData
from .metrics import classification_metrics, model_chance_levels, trial_vote
from .protocols import Fold, check_disjoint

__all__ = ["FoldRunner", "run_fold_with", "fold_cells", "one_class_models", "fold_metrics",
           "train_label_counts", "permute_training_labels"]


def fold_cells(data: SlotData, fold: Fold, *, val_size: float = 0.1, seed: int = 0):
    """``(train, val, test)`` window cells ``(s, t, w)`` of a fold.

    For unit folds these are the valid windows of the fold's units. For a
    ``legacy-segment`` fold, ``fold.test_windows`` index the valid windows of
    ``fold.train`` (all units, in their given order); the rest is training data, of
    which a random *val_size* share of windows is held out for epoch selection (never
    the test windows).
    """
    if not fold.leaky:
        return tuple(data.cells(u) for u in (fold.train, fold.val, fold.test))
    cells = data.cells(fold.train, order="units")
    test_mask = np.zeros(len(cells), dtype=bool)
    idx = np.asarray(fold.test_windows, dtype=np.int64)
    if idx.size and idx.max() >= len(cells):
        raise PhysioSyncError(f"fold {fold.fold}: test window index {idx.max()} is out of range "
                              f"for {len(cells)} windows; the folds were made for other data.")
    test_mask[idx] = True
    rest = np.nonzero(~test_mask)[0]
    rng = np.random.default_rng(seed + fold.fold)
    n_val = int(round(val_size * len(rest)))
    val_idx = np.sort(rng.choice(rest, n_val, replace=False)) if n_val else rest[:0]
    train_idx = np.setdiff1d(rest, val_idx)
    return cells[train_idx], cells[val_idx], cells[test_mask]


def _groups(cells: np.ndarray, per_subject: bool) -> list:
    return sorted(set(cells[:, 0].tolist())) if per_subject else [None]


def _pick(cells: np.ndarray, g) -> np.ndarray:
    return cells[cells[:, 0] == g] if g is not None else cells


def one_class_models(data: SlotData, fold: Fold, *, per_subject: bool = True,
                     one_class: str = "error", val_size: float = 0.1,
                     seed: int = 0) -> dict:
    """Check, before any training, that every model of a fold sees two classes.

    Returns
    -------
    single : dict
        ``{group: class}`` for the models whose training windows hold one class
        (only with ``one_class="constant"``); the group is a subject row index or
        ``None`` for a pooled model.

    Raises
    ------
    PhysioSyncError
        With ``one_class="error"``, naming the fold and the subject.
    """
    check_option("one_class", one_class, ONE_CLASS_RULES)
    train, _, test = fold_cells(data, fold, val_size=val_size, seed=seed)
    single = {}
    for g in _groups(test, per_subject):
        classes = np.unique(data.labels[tuple(_pick(train, g)[:, :2].T)])
        if len(classes) < 2:
            who = f"subject {data.subjects[g]}" if g is not None else "the pooled model"
            if one_class == "error":
                raise PhysioSyncError(
                    f"fold {fold.fold}: the training windows of {who} hold one class only "
                    f"({classes.tolist()}); use fewer folds, another target, pooled "
                    "fine-tuning, or one_class='constant' to predict that class (flagged in "
                    "the report).")
            single[g] = int(classes[0]) if len(classes) else 0
    return single


def _prediction_frame(data: SlotData, cells: np.ndarray, proba: np.ndarray,
                      one_class: bool) -> pd.DataFrame:
    units = data.units_of(cells)
    frame = pd.DataFrame({"subject": units[:, 0], "trial": units[:, 1], "window": cells[:, 2],
                          "y": data.labels[cells[:, 0], cells[:, 1]]})
    for c in range(proba.shape[1]):
        frame[f"p{c}"] = proba[:, c]
    frame["one_class"] = one_class
    return frame


class FoldRunner:
    """How one kind of model is trained and applied within a fold.

    :func:`run_fold_with` owns the fold loop that every pipeline kind shares: it
    checks the fold, groups its cells by subject (or pools them), gives a group whose
    training labels hold one class the constant prediction, and builds the prediction
    frame. A runner only says what happens once per fold (:meth:`prepare_fold`, e.g.
    pre-training), how one group's model is fitted and applied (:meth:`fit_predict`)
    and what it recorded (``fold_details()``).

    Attributes
    ----------
    importance_method : str | None
        How the runner's channel importance is computed, for the report (None: it
        computes none).
    """

    importance_method: str | None = None

    def hyperparameters(self) -> dict:
        """JSON-ready settings that define the runner's results (hashed into fold keys)."""
        return {}

    def prepare_fold(self, data: SlotData, fold: Fold) -> None:
        """Start a fold: reset what ``fold_details()`` reports, do per-fold work."""
        self._importance = []
        self._curves = {}

    @fill_doc
    def fit_predict(self, data: SlotData, train: np.ndarray, val: np.ndarray,
                    test: np.ndarray, *, n_classes: int, subject: int | None) -> np.ndarray:
        """Fit one model on a group's cells and return its test cells' class probabilities.

        Parameters
        ----------
        %(labelled_slots)s
        train, val, test : ndarray of int, shape (n, 3)
            The group's ``(s, t, w)`` grid cells; *val* (validation, for model
            selection) may be empty; *train* holds two classes at least.
        n_classes : int
            Columns of the result.
        subject : int | None
            The group's subject, None for a pooled model.

        Returns
        -------
        proba : ndarray, shape (len(test), n_classes)
        """
        raise NotImplementedError

    def fold_details(self) -> dict:
        """``curves`` and ``channel_importance`` (EEG, mean over the fold's models, or None)."""
        weights = getattr(self, "_importance", [])
        return {"curves": getattr(self, "_curves", {}),
                "channel_importance": np.mean(weights, axis=0).tolist() if weights else None}


@verbose
@deprecated_show_progress
def run_fold_with(data: SlotData, fold: Fold, *, model: FoldRunner, per_subject: bool = True,
                  one_class: str = "error", val_size: float = 0.1, seed: int = 0,
                  verbose: bool | str | int | None = None):
    """Run one fold with any :class:`FoldRunner`: the fold loop of every pipeline kind.

    Parameters
    ----------
    data : SlotData
        Labelled long windows of every subject.
    %(fold)s
    model : FoldRunner
        What is trained and applied.
    per_subject : bool
        One model per subject (within-subject protocols) instead of one pooled model.
    one_class : {"error", "constant"}
        What to do when a model's training windows hold one class only (a subject
        who rated every training video high, say): ``"error"`` raises before any
        training; ``"constant"`` predicts that class with probability 1 for the
        group's test windows and marks them ``one_class=True``.
    val_size, seed : float, int
        ``legacy-segment`` only: share of training windows held out for validation.
    %(verbose)s
        It covers the runner's training and its bars.

    Returns
    -------
    predictions : DataFrame
        One row per test window: ``subject, trial, window, y``, ``p0..p{C-1}`` and
        ``one_class``.
    details : dict
        :meth:`FoldRunner.fold_details`.
    """
    if data.labels is None:
        raise PhysioSyncError("cross-validation needs labelled SlotData.")
    check_disjoint(fold)
    single = one_class_models(data, fold, per_subject=per_subject, one_class=one_class,
                              val_size=val_size, seed=seed)
    train, val, test = fold_cells(data, fold, val_size=val_size, seed=seed)
    model.prepare_fold(data, fold)
    n_classes = data.n_classes
    frames = []
    for g in _groups(test, per_subject):
        te = _pick(test, g)
        if len(te) == 0:
            continue
        if g in single:
            proba = np.zeros((len(te), n_classes))
            proba[:, single[g]] = 1.0
        else:
            proba = model.fit_predict(data, _pick(train, g), _pick(val, g), te,
                                      n_classes=n_classes,
                                      subject=None if g is None else int(data.subjects[g]))
        frames.append(_prediction_frame(data, te, proba, g in single))
    return pd.concat(frames, ignore_index=True), model.fold_details()


@fill_doc
def fold_metrics(pred: pd.DataFrame, n_classes: int = 2,
                 train_labels: dict | None = None) -> dict:
    """Window- and trial-level metrics of one fold's predictions, with their chance levels.

    Parameters
    ----------
    pred : DataFrame
        The fold's predictions (``subject``, ``trial``, ``y``, ``p0..p{C-1}``).
    %(n_classes)s
    train_labels : dict | None
        Class counts of the fold's training labels (see :func:`train_label_counts`).
        ``None``: the chance levels fall back on the test labels (the accuracy chance
        is then the test majority) and ``chance_source`` says so.

    Returns
    -------
    metrics : dict
        ``window`` and ``trial`` metrics (:func:`~physiosync.evaluation.metrics.classification_metrics`),
        ``chance`` (``window`` and ``trial``: metric -> chance level, see
        :func:`~physiosync.evaluation.metrics.chance_levels`) and ``chance_source``
        (``"training labels"`` or ``"test labels"``).
    """
    proba = pred[[f"p{c}" for c in range(n_classes)]].to_numpy()
    y = pred["y"].to_numpy()
    subjects = pred["subject"].to_numpy()
    out = {"window": classification_metrics(y, proba.argmax(1), proba, n_classes=n_classes)}
    yt, pt, mt = trial_vote(y, proba, pred[["subject", "trial"]].to_numpy())
    out["trial"] = classification_metrics(yt, pt, mt, n_classes=n_classes)
    # trial_vote orders trials by first appearance, as drop_duplicates does
    trial_subjects = pred[["subject", "trial"]].drop_duplicates()["subject"].to_numpy()
    out["chance"] = {
        "window": model_chance_levels(y, subjects, train_labels, n_classes=n_classes),
        "trial": model_chance_levels(yt, trial_subjects, train_labels, n_classes=n_classes)}
    out["chance_source"] = "test labels" if train_labels is None else "training labels"
    return out


def train_label_counts(data: SlotData, fold: Fold, *, per_subject: bool = True,
                       val_size: float = 0.1, seed: int = 0) -> dict:
    """Class counts of the windows a fold's models learn from (``train`` + ``val``).

    Returns
    -------
    train_labels : dict
        ``per_subject_models`` (*per_subject*), ``pooled`` (counts over all training
        windows) and ``subjects`` (``{str(subject): counts}``), each a list of
        ``n_classes`` integers.
    """
    train, val, _ = fold_cells(data, fold, val_size=val_size, seed=seed)
    cells = np.concatenate([train, val])
    n_classes = data.n_classes
    labels = data.labels[cells[:, 0], cells[:, 1]]
    subjects = data.units_of(cells)[:, 0]

    def counts(y):
        return np.bincount(y, minlength=n_classes).astype(int).tolist()

    return {"per_subject_models": bool(per_subject), "pooled": counts(labels),
            "subjects": {str(s): counts(labels[subjects == s]) for s in np.unique(subjects)}}


def permute_training_labels(data: SlotData, fold: Fold, *, seed: int = 0) -> SlotData:
    """A view of *data* whose fold-``train`` and ``val`` labels are shuffled within subjects.

    The labels of each subject's ``train`` units are permuted among those units, and
    those of its ``val`` units among those, so that every model of the fold keeps its
    class counts (the one-class checks pass exactly when they pass on the true
    labels). ``test`` units keep their true labels. This is the label permutation of
    a refit permutation null (as in :func:`sklearn.model_selection.permutation_test_score`).

    Parameters
    ----------
    data : SlotData
        Labelled windows.
    fold : Fold
        A unit fold (not ``legacy-segment``, whose test windows share trials with
        training).
    seed : int
        Seed of the permutation.

    Returns
    -------
    permuted : SlotData
        A shallow copy sharing *data*'s window tensors, with a new ``labels`` grid.
    """
    import copy

    if data.labels is None:
        raise PhysioSyncError("permute_training_labels needs labelled SlotData.")
    if fold.leaky:
        raise PhysioSyncError(f"fold {fold.fold} is a legacy-segment fold: its test windows "
                              "share trials with training, so training labels cannot be "
                              "permuted without permuting test labels.")
    rng = np.random.default_rng(seed)
    labels = data.labels.copy()
    for part in (fold.train, fold.val):
        if len(part) == 0:
            continue
        rows = data.locate(part)
        for s in np.unique(rows[:, 0]):
            i, j = rows[rows[:, 0] == s].T
            labels[i, j] = rng.permutation(labels[i, j])
    out = copy.copy(data)  # shares the window tensors
    out.labels = labels
    return out

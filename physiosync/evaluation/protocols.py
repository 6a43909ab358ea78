"""Evaluation protocols: who is trained and tested on what.

Every protocol turns the list of ``(subject, trial)`` units of a dataset into folds
of disjoint ``train``, ``val`` and ``test`` sets of units, with scikit-learn's group
splitters. A *unit* is one subject watching one stimulus; all windows of a unit
always fall in the same partition, except under ``legacy-segment``, which exists only
to reproduce the authors' leaky numbers.

============================  ===============================================  =========
protocol                      test fold                                        leaky?
============================  ===============================================  =========
``within-trial-kfold``        a set of stimuli, for every subject (default)    no
``within-loto``               one stimulus, for every subject                  no
``loso``                      one subject, all stimuli                         no
``subject-kfold``             a set of subjects                                no
``subject-stimulus-kfold``    a set of subjects on a set of stimuli            no
``legacy-segment``            random windows, pooled (authors' protocol)       **yes**
============================  ===============================================  =========

Validation units (for epoch selection) come from the training units only: other
stimuli under the within-subject protocols, other subjects under the cross-subject
ones. Pre-training of a fold may use the ``pretrain`` units: under within-subject
protocols every subject's *training* stimuli (other subjects watching the same
stimuli is the point of inter-subject synchrony), never a held-out stimulus of any
subject; under cross-subject protocols the training subjects only.

``loso`` and ``subject-kfold`` keep the test subjects' stimuli in training, rated by
the other subjects (see :data:`CAVEATS`). ``subject-stimulus-kfold`` removes that
shortcut: fold *k* holds out subject group *k* and stimulus group *k* together; it
trains, validates and pre-trains on the other subjects watching the other stimuli
and tests the held-out subjects on the held-out stimuli. The units of held-out
subjects on training stimuli, and of training subjects on held-out stimuli, are used
nowhere in that fold, so each fold tests about ``1 / n_splits**2`` of the units and
every subject and every stimulus is tested in exactly one fold.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..exceptions import LeakageError, PhysioSyncError

__all__ = ["PROTOCOLS", "CAVEATS", "Fold", "LeakageError", "make_folds", "check_disjoint"]

PROTOCOLS = ("within-trial-kfold", "within-loto", "loso", "subject-kfold",
             "subject-stimulus-kfold", "legacy-segment")
#: Within-subject protocols (held-out stimuli; one model per subject by default).
WITHIN = ("within-trial-kfold", "within-loto")
#: Cross-subject protocols (held-out subjects; one pooled model).
CROSS = ("loso", "subject-kfold", "subject-stimulus-kfold")

_STIMULUS_SHORTCUT = (
    "{what} keeps the stimuli of the {whose} in training, labelled by the other "
    "subjects' ratings of the same videos. Labels largely follow the stimulus (subjects "
    "mostly agree on a video), so this score can partly measure recognising the "
    "stimulus rather than the test subject's emotion. Compare it with the "
    "stimulus-prior baseline, which predicts only from the other subjects' labels for "
    "the same stimulus, and with the subject-stimulus-kfold protocol, which holds out "
    "subjects and stimuli together.")

#: Caveats that reports print under the title of a protocol's results (protocol -> text).
CAVEATS: dict[str, str] = {
    "loso": _STIMULUS_SHORTCUT.format(what="Leave-one-subject-out", whose="test subject"),
    "subject-kfold": _STIMULUS_SHORTCUT.format(what="Subject k-fold", whose="test subjects"),
}



@dataclass
class Fold:
    """One fold: disjoint sets of ``(subject, trial)`` units.

    Attributes
    ----------
    fold : int
        Index of the fold.
    train, val, test, pretrain : ndarray of int, shape (n, 2)
        ``(subject, trial)`` units of each partition. ``pretrain`` lists the units
        pre-training may use (a superset of ``train`` + ``val`` within subjects).
    leaky : bool
        True only for ``legacy-segment``, whose windows, not units, are split.
    test_windows : ndarray of int | None
        ``legacy-segment`` only: indices of the test windows.
    held_out : tuple of {"subject", "trial"}
        Unit columns held out as a whole: no test subject (``"subject"``) or no test
        stimulus (``"trial"``) may appear in ``train``, ``val`` or ``pretrain``.
        :func:`check_disjoint` enforces it. Set by :func:`make_folds`; empty for a
        fold made by hand, which is then checked for disjoint units only.
    """

    fold: int
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    pretrain: np.ndarray
    leaky: bool = False
    test_windows: np.ndarray | None = field(default=None, repr=False)
    held_out: tuple = ()

    def manifest(self) -> dict:
        """JSON-ready ``fold``, ``leaky`` and ``train``/``val``/``test``/``pretrain`` lists.

        Units are ``[subject, trial]`` pairs; legacy folds add ``test_windows``.
        """
        out = {"fold": self.fold, "leaky": self.leaky,
               **{k: getattr(self, k).astype(int).tolist()
                  for k in ("train", "val", "test", "pretrain")}}
        if self.leaky and self.test_windows is not None:
            out["test_windows"] = np.asarray(self.test_windows).astype(int).tolist()
        return out


def _units(units) -> np.ndarray:
    arr = np.asarray(units, dtype=np.int64)
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise PhysioSyncError(f"units must be (n, 2) (subject, trial) pairs, got shape "
                              f"{arr.shape}.")
    return arr


def check_disjoint(fold: Fold) -> None:
    """Raise :class:`LeakageError` if a fold leaks test data into training.

    A unit may not be in two of ``train``, ``val`` and ``test``; for every column in
    ``fold.held_out``, no subject or stimulus of ``test`` may appear in ``train``,
    ``val`` or ``pretrain``. ``legacy-segment`` folds are leaky by design and pass.
    """
    if fold.leaky:
        return
    seen = {}
    for name in ("train", "val", "test"):
        for s, t in map(tuple, getattr(fold, name)):
            if (s, t) in seen:
                raise LeakageError(
                    f"fold {fold.fold}: (subject {s}, trial {t}) is in both {seen[(s, t)]} and "
                    f"{name}.")
            seen[(s, t)] = name
    for column in fold.held_out:
        col = {"subject": 0, "trial": 1}[column]
        held = set(np.asarray(fold.test).reshape(-1, 2)[:, col].tolist())
        for name in ("train", "val", "pretrain"):
            used = held.intersection(np.asarray(getattr(fold, name)).reshape(-1, 2)[:, col]
                                     .tolist())
            if used:
                raise LeakageError(
                    f"fold {fold.fold}: held-out {column} {min(used)} of the test set is also "
                    f"in {name}.")


def _split_val(units, groups, labels, val_size, seed, min_groups=2):
    """Hold out whole groups of *units* for validation (stratified when possible)."""
    from sklearn.model_selection import GroupShuffleSplit

    n_groups = len(np.unique(groups))
    if not val_size or n_groups < min_groups:
        return units, units[:0]
    splitter = GroupShuffleSplit(n_splits=20, test_size=val_size, random_state=seed)
    best = None
    for train, val in splitter.split(units, labels, groups):
        if labels is None or len(np.unique(labels[train])) == len(np.unique(labels)):
            return units[train], units[val]
        best = best or (train, val)
    train, val = best
    return units[train], units[val]


def make_folds(units, protocol: str = "within-trial-kfold", *, n_splits: int = 5,
               labels=None, val_size: float = 0.2, seed: int = 0,
               n_windows: int | None = None) -> list[Fold]:
    """Split ``(subject, trial)`` units into folds for one protocol.

    Parameters
    ----------
    units : array of int, shape (n_units, 2)
        The ``(subject, trial)`` pairs present in the data.
    protocol : str
        One of :data:`PROTOCOLS`.
    n_splits : int
        Folds for the k-fold protocols (ignored by ``within-loto`` and ``loso``); for
        ``subject-stimulus-kfold``, the number of subject groups and of stimulus groups.
    labels : array of int, shape (n_units,) | None
        Label of each unit; used to stratify the stimulus folds and to keep every
        class in the training part of the validation split.
    val_size : float
        Fraction of the training groups (stimuli within subjects, subjects across
        subjects) held out for validation.
    seed : int
        Seed of the fold assignment.
    n_windows : int | array of int | None
        ``legacy-segment`` only: windows per unit, one number for all units or one per
        unit (the windows are split, not units). Test window ``i`` is the
        ``i``-th window when the units' windows are concatenated in *units* order.

    Returns
    -------
    folds : list of Fold
        Each checked with :func:`check_disjoint` (except ``legacy-segment``).

    Raises
    ------
    PhysioSyncError
        For an unknown protocol, *n_splits* larger than the number of stimuli or
        subjects available, or a ``subject-stimulus-kfold`` fold left without test or
        training units (data where subjects watched different stimuli).
    """
    from sklearn.model_selection import (GroupKFold, KFold, LeaveOneGroupOut,
                                         StratifiedGroupKFold)

    if protocol not in PROTOCOLS:
        import difflib

        close = difflib.get_close_matches(protocol, PROTOCOLS, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise PhysioSyncError(f"Unknown protocol {protocol!r}; choose one of "
                              f"{', '.join(PROTOCOLS)}.{hint}")
    units = _units(units)
    labels = None if labels is None else np.asarray(labels)
    subjects, trials = units[:, 0], units[:, 1]
    folds = []
    if protocol == "legacy-segment":
        if n_windows is None or np.any(np.asarray(n_windows) < 0):
            raise PhysioSyncError("legacy-segment splits windows: pass n_windows per unit.")
        counts = np.broadcast_to(np.asarray(n_windows, dtype=np.int64), (len(units),))
        unit_of = np.repeat(np.arange(len(units)), counts)
        n = len(unit_of)
        if n_splits > n:
            raise PhysioSyncError(f"n_splits={n_splits} exceeds the {n} windows.")
        if n_splits < 2:
            raise PhysioSyncError(f"n_splits must be >= 2, got {n_splits}.")
        for k, (_, test) in enumerate(KFold(n_splits, shuffle=True, random_state=seed)
                                      .split(np.arange(n))):
            folds.append(Fold(k, units, units[:0], np.unique(units[unit_of[test]], axis=0),
                              units, leaky=True, test_windows=np.sort(test)))
        return folds
    if protocol == "subject-stimulus-kfold":
        return _subject_stimulus_folds(units, n_splits, labels, val_size, seed)
    within = protocol in WITHIN
    groups = trials if within else subjects
    n_groups = len(np.unique(groups))
    what = "stimuli (trials)" if within else "subjects"
    if protocol in ("within-loto", "loso"):
        splitter, split_args = LeaveOneGroupOut(), ()
        if n_groups < 2:
            raise PhysioSyncError(f"{protocol} needs at least 2 {what}; the data has {n_groups}.")
    else:
        if n_splits > n_groups:
            raise PhysioSyncError(
                f"n_splits={n_splits} is larger than the {n_groups} {what} available for "
                f"{protocol}.")
        if n_splits < 2:
            raise PhysioSyncError(f"n_splits must be >= 2, got {n_splits}.")
        stratify = within and labels is not None
        splitter = (StratifiedGroupKFold(n_splits, shuffle=True, random_state=seed) if stratify
                    else GroupKFold(n_splits, shuffle=True, random_state=seed))
        split_args = ()
    y = labels if labels is not None else np.zeros(len(units), dtype=int)
    for k, (train_idx, test_idx) in enumerate(splitter.split(units, y, groups, *split_args)):
        train_units, test_units = units[train_idx], units[test_idx]
        train_groups = (trials if within else subjects)[train_idx]
        fit, val = _split_val(train_units, train_groups,
                              None if labels is None else labels[train_idx], val_size, seed + k)
        # Pre-training: within subjects, every subject's training stimuli (no held-out
        # stimulus of anyone); across subjects, the training subjects only.
        held_out = np.unique(test_units[:, 1] if within else test_units[:, 0])
        key = units[:, 1] if within else units[:, 0]
        pretrain = units[~np.isin(key, held_out)]
        fold = Fold(k, fit, val, test_units, pretrain,
                    held_out=("trial",) if within else ("subject",))
        check_disjoint(fold)
        folds.append(fold)
    return folds


def _subject_stimulus_folds(units, n_splits, labels, val_size, seed) -> list[Fold]:
    """``subject-stimulus-kfold``: subject group *k* on stimulus group *k* is fold *k*'s test."""
    from sklearn.model_selection import GroupKFold, StratifiedGroupKFold

    name = "subject-stimulus-kfold"
    subjects, trials = units[:, 0], units[:, 1]
    for what, groups in (("subjects", subjects), ("stimuli (trials)", trials)):
        n_groups = len(np.unique(groups))
        if n_splits > n_groups:
            raise PhysioSyncError(
                f"n_splits={n_splits} is larger than the {n_groups} {what} available for "
                f"{name}, which holds out n_splits groups of both subjects and stimuli; "
                "use fewer folds.")
    if n_splits < 2:
        raise PhysioSyncError(f"n_splits must be >= 2, got {n_splits}.")
    stim_splitter = (StratifiedGroupKFold(n_splits, shuffle=True, random_state=seed)
                     if labels is not None else GroupKFold(n_splits, shuffle=True,
                                                           random_state=seed))
    y = labels if labels is not None else np.zeros(len(units), dtype=int)
    stim_groups = [np.unique(trials[test]) for _, test in stim_splitter.split(units, y, trials)]
    subj_groups = [np.unique(subjects[test]) for _, test in
                   GroupKFold(n_splits, shuffle=True, random_state=seed).split(
                       units, groups=subjects)]
    folds = []
    for k, (held_subjects, held_trials) in enumerate(zip(subj_groups, stim_groups)):
        is_subject, is_trial = np.isin(subjects, held_subjects), np.isin(trials, held_trials)
        test = units[is_subject & is_trial]
        if len(test) == 0:
            raise PhysioSyncError(
                f"{name} fold {k}: the held-out subjects {held_subjects.tolist()} have no unit "
                f"of the held-out stimuli {held_trials.tolist()}; use fewer folds.")
        rest = ~is_subject & ~is_trial
        if not rest.any():
            raise PhysioSyncError(
                f"{name} fold {k}: no training subject has a unit of the training stimuli; "
                "use fewer folds.")
        # Validation: other subjects on the training stimuli, so epoch selection also
        # faces unseen subjects.
        fit, val = _split_val(units[rest], subjects[rest],
                              None if labels is None else labels[rest], val_size, seed + k)
        fold = Fold(k, fit, val, test, units[rest], held_out=("subject", "trial"))
        check_disjoint(fold)
        folds.append(fold)
    return folds


def units_frame(prepared: dict, target: str | None = None) -> pd.DataFrame:
    """``(subject, trial[, label])`` units of prepared subjects, as a DataFrame."""
    rows = []
    for s, p in prepared.items():
        lab = p.labels(target) if target is not None else None
        for i, t in enumerate(p.trials):
            row = {"subject": int(s), "trial": int(t)}
            if lab is not None:
                row["label"] = int(lab[i])
            rows.append(row)
    return pd.DataFrame(rows)

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
``cross-session``             one session, for every subject                   no
``session-split``             the last trials of each session (SEED split)     no
============================  ===============================================  =========

A unit's *stimulus* is its trial id unless the data give another (``stimuli`` of
:func:`make_folds`: SEED shows the same 15 clips in each of its three sessions, so trial
*t* of session 2 is clip *t - 15*). The protocols that hold out stimuli
(``within-trial-kfold``, ``within-loto``, ``subject-stimulus-kfold``,
``session-split``) group units by stimulus, so a clip is held out in every session that
shows it, and :func:`check_disjoint` checks stimuli, not trial ids. ``cross-session``
tests each subject on one session with a model trained on its other sessions (one fold
per session); ``session-split`` trains on the first ``train_trials`` trials of every
session, in presentation order, and tests on the rest (one fold).

Each protocol is a :class:`Protocol` object in the :data:`PROTOCOLS` registry: its
traits (:class:`~physiosync.params.ProtocolTraits`, declared once in
:data:`physiosync.params.PROTOCOL_TRAITS`: what it holds out, whether it leaks),
paired with the split function and the caveat reports print under its results, both
chosen from those traits; :func:`make_folds` dispatches through it.

Validation units (for epoch selection) come from the training units only: other
stimuli under the within-subject protocols, other subjects under the cross-subject
ones. Pre-training of a fold may use the ``pretrain`` units: under within-subject
protocols every subject's *training* stimuli (other subjects watching the same
stimuli is the point of inter-subject synchrony), never a held-out stimulus of any
subject; under cross-subject protocols the training subjects only.

``cross-session`` keeps the clips of the test session in training when the sessions
show the same clips (SEED), and its caveat says so. ``loso`` and ``subject-kfold`` keep
the test subjects' stimuli in training, rated by
the other subjects (see :data:`CAVEATS`). ``subject-stimulus-kfold`` removes that
shortcut: fold *k* holds out subject group *k* and stimulus group *k* together; it
trains, validates and pre-trains on the other subjects watching the other stimuli
and tests the held-out subjects on the held-out stimuli. The units of held-out
subjects on training stimuli, and of training subjects on held-out stimuli, are used
nowhere in that fold, so each fold tests about ``1 / n_splits**2`` of the units and
every subject and every stimulus is tested in exactly one fold.
"""

from __future__ import annotations

import types
from dataclasses import dataclass, field
from functools import partial
from typing import Callable

import numpy as np

from ..exceptions import LeakageError, PhysioSyncError
from ..params import PROTOCOL_TRAITS, ProtocolTraits
from .._utils.random import legacy_seed

__all__ = ["PROTOCOLS", "CAVEATS", "Protocol", "get_protocol", "Fold", "LeakageError",
           "make_folds", "check_disjoint", "split_validation", "unit_facts"]

_STIMULUS_SHORTCUT = (
    "{what} keeps the stimuli of the {whose} in training, labelled by the other "
    "subjects' ratings of the same videos. Labels largely follow the stimulus (subjects "
    "mostly agree on a video), so this score can partly measure recognising the "
    "stimulus rather than the test subject's emotion. Compare it with the "
    "stimulus-prior baseline, which predicts only from the other subjects' labels for "
    "the same stimulus, and with the subject-stimulus-kfold protocol, which holds out "
    "subjects and stimuli together.")

_SAME_CLIPS = (
    "Cross-session tests each session with a model trained on the same subject's other "
    "sessions. Where every session shows the same clips (SEED), the test clips are in "
    "training, labelled with the same classes, so this score can partly measure "
    "recognising the clip rather than the subject's emotion; compare it with the "
    "stimulus-prior baseline, which predicts from the training labels of the same clip.")


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
    held_out : tuple of {"subject", "trial", "session"}
        Unit columns held out as a whole: no test subject (``"subject"``), no test
        stimulus (``"trial"``) or no test session (``"session"``) may appear in
        ``train``, ``val`` or ``pretrain``. :func:`check_disjoint` enforces it. Set by
        :func:`make_folds`; empty for a fold made by hand, which is then checked for
        disjoint units only.
    stimulus_of, session_of : dict | None
        The stimulus id and session name of each ``(subject, trial)`` unit, which
        :func:`check_disjoint` reads for the held-out ``"trial"`` and ``"session"``
        columns; ``None``: the trial id is the stimulus, and every unit is of one
        session.
    """

    fold: int
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    pretrain: np.ndarray
    leaky: bool = False
    test_windows: np.ndarray | None = field(default=None, repr=False)
    held_out: tuple = ()
    stimulus_of: dict | None = field(default=None, repr=False)
    session_of: dict | None = field(default=None, repr=False)

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

    A unit may not be in two of ``train``, ``val`` and ``test``, nor in both ``test``
    and ``pretrain``; for every column in ``fold.held_out``, no subject, stimulus
    (``fold.stimulus_of``; the trial id without it) or session (``fold.session_of``) of
    ``test`` may appear in ``train``, ``val`` or ``pretrain``. ``legacy-segment`` folds
    are leaky by design and pass.
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
    # pretrain overlaps train and val by design, but never test (even in a hand-made
    # fold without held-out columns)
    for s, t in map(tuple, np.asarray(fold.pretrain).reshape(-1, 2).tolist()):
        if seen.get((s, t)) == "test":
            raise LeakageError(f"fold {fold.fold}: (subject {s}, trial {t}) is in both test "
                               "and pretrain.")
    for column in fold.held_out:
        held = set(_column(fold, fold.test, column))
        for name in ("train", "val", "pretrain"):
            used = held.intersection(_column(fold, getattr(fold, name), column))
            if used:
                what = "stimulus" if column == "trial" and fold.stimulus_of else column
                raise LeakageError(
                    f"fold {fold.fold}: held-out {what} {min(used)} of the test set is also "
                    f"in {name}.")


def _column(fold: Fold, units, column: str) -> list:
    """The subject, stimulus or session of each of *units*, as :func:`check_disjoint`
    compares them."""
    units = np.asarray(units).reshape(-1, 2)
    if column == "subject":
        return units[:, 0].tolist()
    lookup = fold.stimulus_of if column == "trial" else fold.session_of
    if lookup is None:
        if column == "trial":
            return units[:, 1].tolist()
        from ..dataset_specs import SINGLE_SESSION

        return [SINGLE_SESSION] * len(units)
    return [lookup[(int(s), int(t))] for s, t in units]


def unit_facts(units, sessions=None, stimuli=None) -> tuple:
    """Per-unit sessions and stimuli, checked, with their defaults.

    Parameters
    ----------
    units : array of int, shape (n_units, 2)
        ``(subject, trial)`` pairs.
    sessions : array-like of str, shape (n_units,) | None
        The session of each unit; None: every unit of one session, ``"0"``.
    stimuli : array-like of int, shape (n_units,) | None
        The stimulus of each unit; None: its trial id.

    Returns
    -------
    sessions : ndarray of str, shape (n_units,)
    stimuli : ndarray of int64, shape (n_units,)
    """
    from ..dataset_specs import SINGLE_SESSION

    units = _units(units)
    n = len(units)
    sessions = (np.full(n, SINGLE_SESSION, dtype=object) if sessions is None
                else np.asarray([str(v) for v in sessions], dtype=object))
    stimuli = units[:, 1].copy() if stimuli is None else np.asarray(stimuli)
    if sessions.shape != (n,) or stimuli.shape != (n,):
        raise PhysioSyncError(f"sessions and stimuli need one entry per unit ({n}), got "
                              f"{sessions.shape} and {stimuli.shape}.")
    if n and not np.issubdtype(stimuli.dtype, np.integer):
        if not (np.isfinite(stimuli.astype(float)).all()
                and (stimuli == np.round(stimuli.astype(float))).all()):
            raise PhysioSyncError("stimuli must be integer ids.")
    return sessions, stimuli.astype(np.int64)


def _unit_lookups(units, sessions, stimuli, *, by_session: bool = False) -> tuple:
    """:func:`unit_facts`, and the ``stimulus_of`` and ``session_of`` of the folds (None
    where not given or not held out, so that folds of data with one session and stimulus
    = trial stay as they were)."""
    unit_sessions, unit_stimuli = unit_facts(units, sessions, stimuli)
    keys = list(map(tuple, units.tolist()))
    return (unit_sessions, unit_stimuli,
            None if stimuli is None else dict(zip(keys, unit_stimuli.tolist())),
            dict(zip(keys, unit_sessions.tolist())) if by_session else None)


def split_validation(units, groups, labels, val_size: float, seed: int, *,
                     min_groups: int = 2, n_tries: int = 20, fallback: str = "first"):
    """Hold out whole groups of *units* for validation (epoch selection).

    Up to *n_tries* random group splits are drawn (scikit-learn's
    :class:`~sklearn.model_selection.GroupShuffleSplit`); the first that leaves every
    class of *labels* among the training units is taken.

    Parameters
    ----------
    units : ndarray, shape (n_units, ...)
        What is split: ``(subject, trial)`` units, window cells, ...
    groups : array-like, shape (n_units,) | None
        Group of each unit; a group goes entirely to training or to validation.
        ``None``: every unit is its own group (scikit-learn's
        :class:`~sklearn.model_selection.ShuffleSplit`).
    labels : array-like, shape (n_units,) | None
        Class of each unit, or ``None`` to take the first split.
    val_size : float
        Share of the groups held out (rounded up); 0 holds out none.
    seed : int
        Random state of the splitter.
    min_groups : int
        With fewer groups, nothing is held out.
    n_tries : int
        Splits drawn at most.
    fallback : {"first", "none"}
        When no split keeps every class in training: the first split drawn, or no
        validation set.

    Returns
    -------
    train, val : ndarray
        The units kept for training and those held out (possibly none), in the
        splitter's order.
    """
    from sklearn.model_selection import GroupShuffleSplit, ShuffleSplit

    if fallback not in ("first", "none"):
        raise ValueError(f"fallback must be 'first' or 'none', got {fallback!r}.")
    n_groups = len(units) if groups is None else len(np.unique(groups))
    if not val_size or n_groups < min_groups:
        return units, units[:0]
    splitter = (ShuffleSplit if groups is None else GroupShuffleSplit)(
        n_splits=n_tries, test_size=val_size, random_state=legacy_seed(seed))
    first = None
    for train, val in splitter.split(units, labels, groups):
        if labels is None or len(np.unique(labels[train])) == len(np.unique(labels)):
            return units[train], units[val]
        first = first or (train, val)
    if fallback == "none":
        return units, units[:0]
    train, val = first
    return units[train], units[val]


def make_folds(units, protocol: str = "within-trial-kfold", *, n_splits: int = 5,
               labels=None, val_size: float = 0.2, seed: int = 0,
               n_windows: int | None = None, sessions=None, stimuli=None,
               train_trials: int | None = None) -> list[Fold]:
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
    sessions : array-like of str, shape (n_units,) | None
        The recording session of each unit (``Recording.sessions``); None: one
        session. ``cross-session`` needs two or more; ``session-split`` splits each.
    stimuli : array-like of int, shape (n_units,) | None
        The stimulus (clip) of each unit; None: its trial id. The protocols that hold
        out stimuli hold out every unit of a held-out stimulus, in every session.
    train_trials : int | None
        ``session-split`` only (required there): trials of each session, in
        presentation order (trial id), that train.

    Returns
    -------
    folds : list of Fold
        Each checked with :func:`check_disjoint` (except ``legacy-segment``).

    Raises
    ------
    PhysioSyncError
        For an unknown protocol, *n_splits* larger than the number of stimuli or
        subjects available, a ``subject-stimulus-kfold`` fold left without test or
        training units (data where subjects watched different stimuli), data of one
        session under ``cross-session``, or a ``session-split`` whose *train_trials*
        leaves a session without test trials.
    """
    spec = get_protocol(protocol)
    units = _units(units)
    labels = None if labels is None else np.asarray(labels)
    facts = {}
    if sessions is not None or stimuli is not None or train_trials is not None:
        # only then: a protocol registered with the original signature keeps working
        facts = dict(sessions=sessions, stimuli=stimuli, train_trials=train_trials)
    return spec.split(units, n_splits=n_splits, labels=labels, val_size=val_size, seed=seed,
                      n_windows=n_windows, **facts)


def _window_folds(units, *, n_splits, labels, val_size, seed, n_windows,
                  traits: ProtocolTraits, sessions=None, stimuli=None,
                  train_trials=None) -> list[Fold]:
    """``legacy-segment``: k-fold over the pooled windows of every unit (leaky)."""
    from sklearn.model_selection import KFold

    if n_windows is None or np.any(np.asarray(n_windows) < 0):
        raise PhysioSyncError(f"{traits.name} splits windows: pass n_windows per unit.")
    counts = np.broadcast_to(np.asarray(n_windows, dtype=np.int64), (len(units),))
    unit_of = np.repeat(np.arange(len(units)), counts)
    n = len(unit_of)
    if n_splits > n:
        raise PhysioSyncError(f"n_splits={n_splits} exceeds the {n} windows.")
    if n_splits < 2:
        raise PhysioSyncError(f"n_splits must be >= 2, got {n_splits}.")
    folds = []
    kfold = KFold(n_splits, shuffle=True, random_state=legacy_seed(seed))
    for k, (_, test) in enumerate(kfold.split(np.arange(n))):
        folds.append(Fold(k, units, units[:0], np.unique(units[unit_of[test]], axis=0),
                          units, leaky=traits.leaky, test_windows=np.sort(test)))
    return folds


def _group_folds(units, *, n_splits, labels, val_size, seed, n_windows,
                 traits: ProtocolTraits, sessions=None, stimuli=None,
                 train_trials=None) -> list[Fold]:
    """Hold out groups of stimuli (within subjects) or of subjects, one or ``n_splits``."""
    from sklearn.model_selection import (GroupKFold, LeaveOneGroupOut,
                                         StratifiedGroupKFold)

    protocol, within, leave_one_out = traits.name, traits.within_subject, traits.leave_one_out
    _, trials, stimulus_of, _ = _unit_lookups(units, sessions, stimuli)
    subjects = units[:, 0]
    groups = trials if within else subjects
    n_groups = len(np.unique(groups))
    what = "stimuli (trials)" if within else "subjects"
    if leave_one_out:
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
        state = legacy_seed(seed)  # scikit-learn takes seeds below 2**32 only
        splitter = (StratifiedGroupKFold(n_splits, shuffle=True, random_state=state) if stratify
                    else GroupKFold(n_splits, shuffle=True, random_state=state))
        split_args = ()
    y = labels if labels is not None else np.zeros(len(units), dtype=int)
    folds = []
    for k, (train_idx, test_idx) in enumerate(splitter.split(units, y, groups, *split_args)):
        train_units, test_units = units[train_idx], units[test_idx]
        train_groups = (trials if within else subjects)[train_idx]
        fit, val = split_validation(train_units, train_groups,
                                    None if labels is None else labels[train_idx], val_size,
                                    seed + k)
        # Pre-training: within subjects, every subject's training stimuli (no held-out
        # stimulus of anyone); across subjects, the training subjects only.
        key = trials if within else subjects
        pretrain = units[~np.isin(key, np.unique(key[test_idx]))]
        fold = Fold(k, fit, val, test_units, pretrain, held_out=traits.held_out,
                    stimulus_of=stimulus_of)
        check_disjoint(fold)
        folds.append(fold)
    return folds


def _subject_stimulus_folds(units, *, n_splits, labels, val_size, seed, n_windows=None,
                            traits: ProtocolTraits, sessions=None, stimuli=None,
                            train_trials=None) -> list[Fold]:
    """``subject-stimulus-kfold``: subject group *k* on stimulus group *k* is fold *k*'s test."""
    from sklearn.model_selection import GroupKFold, StratifiedGroupKFold

    name = traits.name
    _, trials, stimulus_of, _ = _unit_lookups(units, sessions, stimuli)
    subjects = units[:, 0]
    for what, groups in (("subjects", subjects), ("stimuli (trials)", trials)):
        n_groups = len(np.unique(groups))
        if n_splits > n_groups:
            raise PhysioSyncError(
                f"n_splits={n_splits} is larger than the {n_groups} {what} available for "
                f"{name}, which holds out n_splits groups of both subjects and stimuli; "
                "use fewer folds.")
    if n_splits < 2:
        raise PhysioSyncError(f"n_splits must be >= 2, got {n_splits}.")
    state = legacy_seed(seed)  # scikit-learn takes seeds below 2**32 only
    stim_splitter = (StratifiedGroupKFold(n_splits, shuffle=True, random_state=state)
                     if labels is not None else GroupKFold(n_splits, shuffle=True,
                                                           random_state=state))
    y = labels if labels is not None else np.zeros(len(units), dtype=int)
    stim_groups = [np.unique(trials[test]) for _, test in stim_splitter.split(units, y, trials)]
    subj_groups = [np.unique(subjects[test]) for _, test in
                   GroupKFold(n_splits, shuffle=True, random_state=state).split(
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
        fit, val = split_validation(units[rest], subjects[rest],
                                    None if labels is None else labels[rest], val_size,
                                    seed + k)
        fold = Fold(k, fit, val, test, units[rest], held_out=traits.held_out,
                    stimulus_of=stimulus_of)
        check_disjoint(fold)
        folds.append(fold)
    return folds


def _session_folds(units, *, n_splits, labels, val_size, seed, n_windows=None,
                   traits: ProtocolTraits, sessions=None, stimuli=None,
                   train_trials=None) -> list[Fold]:
    """``cross-session``: fold *k* tests every subject's session *k* (sessions in sorted
    order); training, validation and pre-training use the other sessions."""
    from sklearn.model_selection import LeaveOneGroupOut

    unit_sessions, unit_stimuli, stimulus_of, session_of = _unit_lookups(
        units, sessions, stimuli, by_session=True)
    names = np.unique(unit_sessions.astype(str))
    if len(names) < 2:
        raise PhysioSyncError(
            f"{traits.name} needs data recorded in two or more sessions; these data have one "
            f"({names[0] if len(names) else 'none'}). Use within-trial-kfold or "
            "session-split.")
    folds = []
    y = labels if labels is not None else np.zeros(len(units), dtype=int)
    groups = unit_sessions.astype(str)
    for k, (train_idx, test_idx) in enumerate(LeaveOneGroupOut().split(units, y, groups)):
        # Validation: whole stimuli of the training sessions (the same ones for every
        # subject), as within-trial-kfold holds out stimuli.
        fit, val = split_validation(units[train_idx], unit_stimuli[train_idx],
                                    None if labels is None else labels[train_idx], val_size,
                                    seed + k)
        fold = Fold(k, fit, val, units[test_idx], units[train_idx], held_out=traits.held_out,
                    stimulus_of=stimulus_of, session_of=session_of)
        check_disjoint(fold)
        folds.append(fold)
    return folds


def _first_trials_folds(units, *, n_splits, labels, val_size, seed, n_windows=None,
                        traits: ProtocolTraits, sessions=None, stimuli=None,
                        train_trials=None) -> list[Fold]:
    """``session-split``: within each subject's session, the first *train_trials* trials
    (by trial id, the presentation order) train and the others test; one fold."""
    name = traits.name
    if train_trials is None:
        raise PhysioSyncError(f"{name} needs the number of training trials per session "
                              "(protocol.train_trials); this dataset declares no default.")
    unit_sessions, unit_stimuli, stimulus_of, _ = _unit_lookups(units, sessions, stimuli)
    is_train = np.zeros(len(units), dtype=bool)
    keys = np.array([f"{s}\x00{v}" for s, v in zip(units[:, 0], unit_sessions)])
    for key in np.unique(keys):
        rows = np.flatnonzero(keys == key)
        rows = rows[np.argsort(units[rows, 1], kind="stable")]
        if len(rows) <= train_trials:
            subject, session = key.split("\x00")
            raise PhysioSyncError(
                f"{name}: protocol.train_trials = {train_trials} leaves no test trial in "
                f"subject {subject}'s session {session!r}, which has {len(rows)} trials; "
                "set a smaller protocol.train_trials.")
        is_train[rows[:train_trials]] = True
    train_units, test_units = units[is_train], units[~is_train]
    fit, val = split_validation(train_units, unit_stimuli[is_train],
                                None if labels is None else labels[is_train], val_size, seed)
    held = np.unique(unit_stimuli[~is_train])
    fold = Fold(0, fit, val, test_units, units[~np.isin(unit_stimuli, held)],
                held_out=traits.held_out, stimulus_of=stimulus_of)
    try:
        check_disjoint(fold)
    except LeakageError as err:
        raise LeakageError(f"{name}: {err} The subjects' sessions do not show the clips in "
                           "one order, so the first trials of one subject's session are "
                           "test clips of another's.") from None
    return [fold]


def _trait(name: str) -> property:
    """A read-only attribute of :class:`Protocol` that reads its traits."""
    return property(lambda self: getattr(self.traits, name),
                    doc=f"The traits' ``{name}`` (:class:`~physiosync.params.ProtocolTraits`).")


@dataclass(frozen=True)
class Protocol:
    """An evaluation protocol: its traits, how the folds are made, and its caveat.

    Parameters
    ----------
    traits : ProtocolTraits
        What a fold holds out (:data:`physiosync.params.PROTOCOL_TRAITS`). The
        protocol's ``name``, ``within_subject``, ``held_out``, ``leave_one_out``,
        ``splits_windows``, ``leaky``, ``uses_n_splits``, ``per_subject_models`` and
        ``description`` are read from it.
    split : callable
        ``split(units, *, n_splits, labels, val_size, seed, n_windows, sessions, stimuli,
        train_trials) -> list of Fold``, called by :func:`make_folds` with validated
        ``(n, 2)`` units; the last three are passed only when one of them is given
        (see :func:`make_folds`), so a split function that ignores sessions and
        stimuli may omit them.
    caveat : str | None
        Printed under the title of the protocol's results.
    """

    traits: ProtocolTraits
    split: Callable = field(repr=False)
    caveat: str | None = None

    name = _trait("name")
    held_out = _trait("held_out")
    leave_one_out = _trait("leave_one_out")
    description = _trait("description")
    within_subject = _trait("within_subject")
    splits_windows = _trait("splits_windows")
    leaky = _trait("leaky")
    uses_n_splits = _trait("uses_n_splits")
    per_subject_models = _trait("per_subject_models")


def _split_function(traits: ProtocolTraits) -> Callable:
    """The split function of a protocol with these *traits*."""
    if traits.splits_windows:
        function = _window_folds
    elif traits.first_trials:
        function = _first_trials_folds
    elif traits.needs_sessions:
        function = _session_folds
    elif set(traits.held_out) == {"subject", "trial"}:
        function = _subject_stimulus_folds
    else:
        function = _group_folds
    return partial(function, traits=traits)


def _caveat(traits: ProtocolTraits) -> str | None:
    """The stimulus shortcut of protocols that hold out subjects but not their stimuli
    (or sessions, whose clips other sessions may show)."""
    if traits.needs_sessions:
        return _SAME_CLIPS
    if traits.held_out != ("subject",):
        return None
    if traits.leave_one_out:
        return _STIMULUS_SHORTCUT.format(what="Leave-one-subject-out", whose="test subject")
    return _STIMULUS_SHORTCUT.format(what="Subject k-fold", whose="test subjects")


#: Every protocol by name, in documentation order.
PROTOCOLS: dict[str, Protocol] = {
    name: Protocol(traits, _split_function(traits), _caveat(traits))
    for name, traits in PROTOCOL_TRAITS.items()}

#: Caveats that reports print under the title of a protocol's results (protocol -> text),
#: a read-only view of the registry's ``caveat`` attributes.
CAVEATS = types.MappingProxyType({p.name: p.caveat for p in PROTOCOLS.values() if p.caveat})
#: Names of the cross-subject protocols (held-out subjects; one pooled model).
CROSS = tuple(p.name for p in PROTOCOLS.values() if not p.within_subject and not p.leaky)


def get_protocol(name: str) -> Protocol:
    """The :class:`Protocol` called *name*.

    Raises
    ------
    PhysioSyncError
        If *name* is not in :data:`PROTOCOLS`, with the closest name if any.
    """
    if name not in PROTOCOLS:
        import difflib

        close = difflib.get_close_matches(str(name), PROTOCOLS, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise PhysioSyncError(f"Unknown protocol {name!r}; choose one of "
                              f"{', '.join(PROTOCOLS)}.{hint}")
    return PROTOCOLS[name]

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

import types
from dataclasses import dataclass, field
from functools import partial
from typing import Callable

import numpy as np

from ..exceptions import LeakageError, PhysioSyncError
from ..params import PROTOCOL_TRAITS, ProtocolTraits
from .._utils.random import legacy_seed

__all__ = ["PROTOCOLS", "CAVEATS", "Protocol", "get_protocol", "Fold", "LeakageError",
           "make_folds", "check_disjoint", "split_validation"]

_STIMULUS_SHORTCUT = (
    "{what} keeps the stimuli of the {whose} in training, labelled by the other "
    "subjects' ratings of the same videos. Labels largely follow the stimulus (subjects "
    "mostly agree on a video), so this score can partly measure recognising the "
    "stimulus rather than the test subject's emotion. Compare it with the "
    "stimulus-prior baseline, which predicts only from the other subjects' labels for "
    "the same stimulus, and with the subject-stimulus-kfold protocol, which holds out "
    "subjects and stimuli together.")



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

    A unit may not be in two of ``train``, ``val`` and ``test``, nor in both ``test``
    and ``pretrain``; for every column in ``fold.held_out``, no subject or stimulus of
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
        col = {"subject": 0, "trial": 1}[column]
        held = set(np.asarray(fold.test).reshape(-1, 2)[:, col].tolist())
        for name in ("train", "val", "pretrain"):
            used = held.intersection(np.asarray(getattr(fold, name)).reshape(-1, 2)[:, col]
                                     .tolist())
            if used:
                raise LeakageError(
                    f"fold {fold.fold}: held-out {column} {min(used)} of the test set is also "
                    f"in {name}.")


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
    spec = get_protocol(protocol)
    units = _units(units)
    labels = None if labels is None else np.asarray(labels)
    return spec.split(units, n_splits=n_splits, labels=labels, val_size=val_size, seed=seed,
                      n_windows=n_windows)


def _window_folds(units, *, n_splits, labels, val_size, seed, n_windows,
                  traits: ProtocolTraits) -> list[Fold]:
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
                 traits: ProtocolTraits) -> list[Fold]:
    """Hold out groups of stimuli (within subjects) or of subjects, one or ``n_splits``."""
    from sklearn.model_selection import (GroupKFold, LeaveOneGroupOut,
                                         StratifiedGroupKFold)

    protocol, within, leave_one_out = traits.name, traits.within_subject, traits.leave_one_out
    subjects, trials = units[:, 0], units[:, 1]
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
        held_out = np.unique(test_units[:, 1] if within else test_units[:, 0])
        key = units[:, 1] if within else units[:, 0]
        pretrain = units[~np.isin(key, held_out)]
        fold = Fold(k, fit, val, test_units, pretrain, held_out=traits.held_out)
        check_disjoint(fold)
        folds.append(fold)
    return folds


def _subject_stimulus_folds(units, *, n_splits, labels, val_size, seed, n_windows=None,
                            traits: ProtocolTraits) -> list[Fold]:
    """``subject-stimulus-kfold``: subject group *k* on stimulus group *k* is fold *k*'s test."""
    from sklearn.model_selection import GroupKFold, StratifiedGroupKFold

    name = traits.name
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
        fold = Fold(k, fit, val, test, units[rest], held_out=traits.held_out)
        check_disjoint(fold)
        folds.append(fold)
    return folds


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
        ``split(units, *, n_splits, labels, val_size, seed, n_windows) -> list of Fold``,
        called by :func:`make_folds` with validated ``(n, 2)`` units.
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
    elif set(traits.held_out) == {"subject", "trial"}:
        function = _subject_stimulus_folds
    else:
        function = _group_folds
    return partial(function, traits=traits)


def _caveat(traits: ProtocolTraits) -> str | None:
    """The stimulus shortcut of protocols that hold out subjects but not their stimuli."""
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

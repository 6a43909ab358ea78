"""Label budgets: a fold's models fine-tuned on a few labelled trials per subject.

A label-efficiency study (``protocol.labelled_trials``, docs/evaluation.md) asks how a
pipeline's score grows with the number of labelled training trials. For a budget of
*n*, every training subject of a fold keeps *n* of its labelled units (its ``train``
and ``val`` units together form the pool), drawn reproducibly and stratified by class;
the rest of its training units lose their labels. Pre-training is untouched: it still
sees every unlabelled training window (``Fold.pretrain``), which is what a
self-supervised method is meant to exploit.

The draws are **nested**: for a fold and a subject, the units of budget 2 are among
those of budget 4, which are among those of budget 8, and so on, so that the curve
measures what more labels add and not a different draw at each budget. No labelled
unit is set aside for model selection under a budget (a budget of *n* means *n*
labels in all): models keep their last fine-tuning epoch and estimators their default
hyper-parameters, at every budget, ``"all"`` included.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from .._utils import derive_seed
from ..exceptions import PhysioSyncError
from ..params import LABEL_BUDGET_ALL
from .protocols import Fold

__all__ = ["LABEL_BUDGET_ALL", "budget_label", "budget_folder", "sort_budgets",
           "stratified_order", "labelled_fold"]


def sort_budgets(budgets) -> list:
    """The budgets of a study in increasing order, ``"all"`` last, without repeats."""
    budgets = list(dict.fromkeys(budgets))
    numbers = sorted(int(b) for b in budgets if b != LABEL_BUDGET_ALL)
    return numbers + ([LABEL_BUDGET_ALL] if LABEL_BUDGET_ALL in budgets else [])


def budget_label(budget) -> str:
    """How a budget is named in reports: ``"2"``, ``"16"``, ``"all"``."""
    return LABEL_BUDGET_ALL if budget == LABEL_BUDGET_ALL else str(int(budget))


def budget_folder(budget) -> str:
    """The run-folder name of a budget's fold files: ``"labelled_002"``, ``"labelled_all"``."""
    return ("labelled_all" if budget == LABEL_BUDGET_ALL
            else f"labelled_{int(budget):03d}")


def stratified_order(labels, rng: np.random.Generator) -> np.ndarray:
    """An order of units whose every prefix is as class-balanced as the classes allow.

    The first unit of each class comes first (in random class order), so that a
    prefix of length ``k`` holds ``min(k, n_classes)`` classes; the rest follow in
    proportion to the class sizes: the ``i``-th unit of a class of ``m`` units is
    placed at ``i / m`` (ties broken at random), so that the share of each class
    in a prefix approaches its share of the pool. Within a class the units are
    shuffled.

    Parameters
    ----------
    labels : array of int, shape (n,)
        Class of each unit.
    rng : numpy.random.Generator
        Source of the shuffles.

    Returns
    -------
    order : ndarray of int, shape (n,)
        Indices into *labels*.
    """
    labels = np.asarray(labels)
    keys = np.empty(len(labels))
    jitter = rng.random(len(labels))
    for c in np.unique(labels):
        idx = rng.permutation(np.nonzero(labels == c)[0])
        pos = np.arange(len(idx)) / len(idx)
        pos[0] = -1.0  # each class's first unit before any second unit
        keys[idx] = pos
    return np.lexsort((jitter, keys))


def labelled_fold(data, fold: Fold, budget, *, seed: int = 0) -> Fold:
    """The fold with *budget* labelled units per training subject and no validation units.

    Parameters
    ----------
    data : SlotData
        Labelled long windows (their labels drive the stratification).
    fold : Fold
        A unit fold (not ``legacy-segment``).
    budget : int | "all"
        Labelled units kept per subject; ``"all"`` keeps every unit of the pool. A
        subject with fewer units in its pool keeps them all.
    seed : int
        The study's seed; each (fold, subject) draws from a seed derived from it, so
        the draw does not depend on the budget (nested draws) nor on other subjects.

    Returns
    -------
    fold : Fold
        ``train`` holds the kept units (in the original unit order), ``val`` is
        empty, and ``test``, ``pretrain`` and ``held_out`` are those of *fold*.

    Raises
    ------
    PhysioSyncError
        For a ``legacy-segment`` fold or a budget that is not a positive int or
        ``"all"``.
    """
    if fold.leaky:
        raise PhysioSyncError(f"fold {fold.fold} is a legacy-segment fold: its windows, not "
                              "trials, are split, so a budget of labelled trials has no "
                              "meaning there.")
    if budget != LABEL_BUDGET_ALL and (isinstance(budget, bool) or not
                                       isinstance(budget, (int, np.integer)) or budget < 1):
        raise PhysioSyncError(f"a label budget must be a positive number of trials or "
                              f"{LABEL_BUDGET_ALL!r}, got {budget!r}.")
    pool = np.concatenate([np.asarray(fold.train).reshape(-1, 2),
                           np.asarray(fold.val).reshape(-1, 2)]).astype(np.int64)
    keep = np.zeros(len(pool), dtype=bool)
    if len(pool):
        rows = data.locate(pool)
        labels = data.labels[rows[:, 0], rows[:, 1]]
        for subject in np.unique(pool[:, 0]):
            idx = np.nonzero(pool[:, 0] == subject)[0]
            if budget == LABEL_BUDGET_ALL or budget >= len(idx):
                keep[idx] = True
                continue
            rng = np.random.default_rng(derive_seed(seed, "labelled", fold.fold,
                                                    int(subject)))
            keep[idx[stratified_order(labels[idx], rng)[:int(budget)]]] = True
    # the pool's original order: train units first, then the validation units kept
    train = pool[keep]
    return dataclasses.replace(fold, train=train, val=pool[:0])

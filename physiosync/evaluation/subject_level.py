"""The subject-level headline metric, its per-subject scores and its permutation tests.

A report leads with the mean over subjects of a per-subject metric
(:func:`headline_metric`, :func:`subject_scores`, :func:`subject_level_score`): each
subject counts once, whatever its number of windows. Its p-value comes from a
permutation null that keeps the subjects (:func:`subject_permutation_test`, the nulls of
:data:`NULLS`): labels shuffled within each subject, or label tables that keep every
subject's and every stimulus's class counts (:func:`margin_preserving_tables`, curveball
chains). Both score thousands of labellings at once on unit-level confusion counts.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .._utils.docs import fill_doc

__all__ = ["headline_metric", "subject_scores", "subject_level_score",
           "subject_permutation_test", "margin_preserving_tables", "default_chain_steps",
           "NULLS"]

_SUBJECT_METRICS = ("balanced_accuracy", "macro_f1", "accuracy")
#: The permutation nulls of :func:`subject_permutation_test`: name -> one-sentence definition.
NULLS = {
    "within-subject": (
        "labels shuffled within each subject, between that subject's units (all windows of a "
        "unit keep one label), predictions fixed"),
    "subject-stimulus-margins": (
        "labels redrawn among the subject x stimulus label tables that keep every subject's "
        "and every stimulus's count of each class (curveball swaps of 2x2 patterns a b / b a "
        "between two subjects, Besag-Clifford parallel chains), predictions fixed: a model "
        "that knows only the stimulus and each subject's rating habit is not significant"),
}


@fill_doc
def headline_metric(n_classes: int) -> str:
    """Name of the headline per-subject metric for a target with *n_classes* classes.

    Parameters
    ----------
    %(n_classes)s

    Returns
    -------
    metric : str
        ``"balanced_accuracy"`` for binary targets, ``"macro_f1"`` otherwise.
    """
    return "balanced_accuracy" if int(n_classes) == 2 else "macro_f1"


def _check_metric(metric, n_classes: int) -> str:
    metric = headline_metric(n_classes) if metric is None else metric
    if metric not in _SUBJECT_METRICS:
        raise ValueError(f"metric={metric!r} is not a per-subject metric; use one of "
                         f"{', '.join(_SUBJECT_METRICS)} (or None for the headline metric).")
    return metric


def _check_classes(name: str, y: np.ndarray, n_classes: int) -> np.ndarray:
    y = np.asarray(y)
    if y.size and (y.min() < 0 or y.max() >= n_classes):
        raise ValueError(f"{name} holds classes {np.unique(y).tolist()}; expected integers in "
                         f"0..{n_classes - 1} for n_classes={n_classes}.")
    return y.astype(np.int64, copy=False)


def _unit_table(y_true, y_pred, subjects, units, n_classes: int):
    """Collapse windows to units nested in subjects.

    Returns ``unit_subject`` (subject code of each unit, non-decreasing), ``unit_label``,
    ``counts`` (windows of each unit predicted as each class, shape (U, n_classes)),
    ``subject_ids`` and ``unit_of_window``.
    """
    y_true = _check_classes("y_true", y_true, n_classes)
    y_pred = _check_classes("y_pred", y_pred, n_classes)
    n = len(y_true)
    subjects = np.asarray(subjects)
    if len(y_pred) != n or len(subjects) != n:
        raise ValueError(f"y_true, y_pred and subjects must have one entry per window; got "
                         f"{n}, {len(y_pred)} and {len(subjects)}.")
    subject_ids, s_code = np.unique(subjects, return_inverse=True)
    units = np.arange(n) if units is None else np.asarray(units)
    units = units[:, None] if units.ndim == 1 else units
    if len(units) != n:
        raise ValueError(f"units must have one row per window ({n}), got {len(units)}.")
    # Prefix the subject code: units are nested in subjects, and np.unique sorts rows, so
    # the units of one subject are contiguous.
    codes = [pd.factorize(units[:, j])[0] for j in range(units.shape[1])]
    keys = np.column_stack([s_code, *codes]) if n else np.zeros((0, 1), dtype=np.int64)
    rows, unit_of_window = np.unique(keys, axis=0, return_inverse=True)
    unit_of_window = unit_of_window.reshape(-1)
    n_units = len(rows)
    unit_label = np.zeros(n_units, dtype=np.int64)
    unit_label[unit_of_window] = y_true
    mixed = np.nonzero(unit_label[unit_of_window] != y_true)[0]
    if mixed.size:
        w = int(mixed[0])
        raise ValueError(f"the windows of one unit have different labels (window {w}, unit "
                         f"{units[w].tolist()} of subject {subjects[w]!r}); a unit must be "
                         "a trial (one label) or a finer grouping, e.g. (subject, trial).")
    counts = np.zeros((n_units, n_classes))
    np.add.at(counts, (unit_of_window, y_pred), 1.0)
    return rows[:, 0], unit_label, counts, subject_ids, unit_of_window


def _scores_from_labels(labels, unit_subject, counts, n_subjects: int, n_classes: int,
                        metric: str) -> np.ndarray:
    """Per-subject metric for each row of unit *labels* (P, U) -> array (P, n_subjects).

    The confusion matrix of every (labelling, subject) is built with one weighted
    ``bincount`` per predicted class; subjects whose metric is undefined are NaN.
    """
    labels = np.atleast_2d(labels)
    n_perm, n_units = labels.shape
    K = n_classes
    idx = ((np.arange(n_perm)[:, None] * n_subjects + unit_subject[None, :]) * K
           + labels).ravel()
    size = n_perm * n_subjects * K
    conf = np.stack([np.bincount(idx, weights=np.tile(counts[:, c], n_perm), minlength=size)
                     for c in range(K)], axis=-1).reshape(n_perm, n_subjects, K, K)
    support = conf.sum(-1)  # true windows per class
    predicted = conf.sum(-2)  # predicted windows per class (fixed by the predictions)
    diag = np.diagonal(conf, axis1=-2, axis2=-1)
    present = support > 0
    n_present = present.sum(-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        if metric == "accuracy":
            total = support.sum(-1)
            score = np.where(total > 0, diag.sum(-1) / total, np.nan)
        elif metric == "balanced_accuracy":
            recall = np.where(present, diag / np.where(present, support, 1), 0.0)
            score = recall.sum(-1) / n_present
        else:  # macro_f1 over the classes a subject has or is predicted
            active = present | (predicted > 0)
            denom = support + predicted
            f1 = np.where(denom > 0, 2 * diag / np.where(denom > 0, denom, 1), 0.0)
            score = f1.sum(-1) / active.sum(-1)
    if metric != "accuracy":
        score = np.where(n_present >= 2, score, np.nan)
    return score


def _mean_over_subjects(scores: np.ndarray) -> np.ndarray:
    defined = np.isfinite(scores)
    n = defined.sum(-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, np.where(defined, scores, 0.0).sum(-1) / np.maximum(n, 1),
                        np.nan)


@fill_doc
def subject_scores(y_true, y_pred, subjects, *, n_classes: int = 2,
                   metric: str | None = None) -> dict:
    """Per-subject metric of pooled predictions.

    Parameters
    ----------
    y_true, y_pred : array of int, shape (n,)
        True and predicted classes ``0..n_classes-1`` of each window (e.g. a subject's
        test windows pooled over all folds).
    %(window_subjects)s
    %(n_classes)s
    %(subject_metric)s

    Returns
    -------
    scores : dict
        Subject id -> metric (float). Balanced accuracy and macro F1 are NaN for a
        subject whose windows hold a single true class (there is nothing to
        discriminate). Macro F1 averages over the classes the subject has or is
        predicted, as :func:`sklearn.metrics.f1_score` does by default.
    """
    ids, s = _subject_score_array(y_true, y_pred, subjects, n_classes, metric)
    return {(k.item() if hasattr(k, "item") else k): float(v) for k, v in zip(ids, s[0])}


def _subject_score_array(y_true, y_pred, subjects, n_classes, metric):
    """Subject ids and their scores, shape ``(1, n_subjects)``."""
    metric = _check_metric(metric, n_classes)
    unit_subject, unit_label, counts, ids, _ = _unit_table(y_true, y_pred, subjects, None,
                                                           n_classes)
    return ids, _scores_from_labels(unit_label, unit_subject, counts, len(ids), n_classes,
                                    metric)


def subject_level_score(y_true, y_pred, subjects, *, n_classes: int = 2,
                        metric: str | None = None) -> float:
    """Mean over subjects of the per-subject metric (the headline of a report).

    Each subject counts once, whatever its number of windows; subjects whose metric is
    undefined (see :func:`subject_scores`) are skipped.

    Parameters are those of :func:`subject_scores`.

    Returns
    -------
    score : float
        NaN when no subject has a defined metric.
    """
    return float(_mean_over_subjects(
        _subject_score_array(y_true, y_pred, subjects, n_classes, metric)[1])[0])


def _curveball_steps(tables: np.ndarray, n_steps: int, n_classes: int,
                     rng: np.random.Generator) -> None:
    """*n_steps* curveball trades in each of the tables ``(P, S, T)``, in place.

    A trade picks two rows (subjects) of each table. Between them, a column whose two
    cells hold different classes ``a != b`` (both present, >= 0) is one side of a 2x2
    pattern ``a b / b a``; the trade deals the orientations of the columns with the
    same class pair ``{a, b}`` out again at random. Every row keeps its count of each
    class and every column its classes, and a trade is as likely as its reverse, so the
    uniform distribution over the tables a chain can reach is stationary.
    """
    n_perm, n_rows, n_cols = tables.shape
    if n_rows < 2:
        return
    ar = np.arange(n_perm)[:, None]
    cols = np.arange(n_cols)[None, :]
    for _ in range(n_steps):
        r1 = rng.integers(0, n_rows, n_perm)
        r2 = (r1 + rng.integers(1, n_rows, n_perm)) % n_rows  # a different row
        x1, x2 = tables[ar[:, 0], r1], tables[ar[:, 0], r2]
        lo, hi = np.minimum(x1, x2), np.maximum(x1, x2)
        tradable = (lo >= 0) & (lo != hi)
        # One group per class pair; every other column is a group of its own.
        key = np.where(tradable, lo * n_classes + hi, n_classes * n_classes + cols)
        first = np.argsort(key, axis=1, kind="stable")
        shuffled = np.argsort(key + rng.random(key.shape), axis=1)
        low_first = np.empty_like(tradable)
        low_first[ar, shuffled] = (x1 < x2)[ar, first]
        tables[ar[:, 0], r1] = np.where(tradable, np.where(low_first, lo, hi), x1)
        tables[ar[:, 0], r2] = np.where(tradable, np.where(low_first, hi, lo), x2)


def margin_preserving_tables(table, n_tables: int, *, n_steps: int | None = None,
                             n_classes: int | None = None, seed: int = 0) -> np.ndarray:
    """Label tables exchangeable with *table* that keep its subject and stimulus margins.

    The null of :func:`subject_permutation_test` with ``null="subject-stimulus-margins"``.
    Under ``P(label = c) ~ exp(subject_c + stimulus_c)`` (each subject's rating habit
    plus each stimulus's consensus, independent cells: a Rasch / multinomial-logit
    model), the row and column class counts are sufficient, so given them every table
    with those counts is equally likely. The tables are drawn with the curveball
    Markov chain (trades of 2x2 patterns ``a b / b a`` between two rows, which keep
    every margin) by the parallel scheme of Besag and Clifford (1989): *n_steps*
    steps from *table* to a hub, then *n_steps* independent steps from the hub for
    each table. *table* and the returned tables are then exchangeable whatever the
    number of steps, so the p-value is valid without a burn-in; more steps only bring
    the tables closer to independent draws (power). Missing cells never move, and a
    chain moves within the tables its trades connect (with missing cells or more than
    two classes, possibly not all tables with the same margins): the test is then
    conditional on that set, and still valid.

    Parameters
    ----------
    table : array of int, shape (n_subjects, n_stimuli)
        Class of each cell ``0..n_classes-1``; -1 for a missing cell.
    n_tables : int
        Number of tables to draw.
    n_steps : int | None
        Trades from *table* to the hub and from the hub to each table. None:
        ``max(50, ceil(10 * S * ln S))`` for S subjects (measured to mix in
        ``benchmarks/inference_calibration.py``).
    n_classes : int | None
        None: ``table.max() + 1``.
    seed : int
        Seed of the chains.

    Returns
    -------
    tables : array of int8, shape (n_tables, n_subjects, n_stimuli)

    References
    ----------
    .. [1] Besag, J. and Clifford, P. (1989). Generalized Monte Carlo significance
       tests. Biometrika, 76(4), 633-642.
    .. [2] Strona, G., Nappo, D., Boccacci, F., Fattorini, S. and San-Miguel-Ayanz, J.
       (2014). A fast and unbiased procedure to randomize ecological binary matrices
       with fixed row and column totals. Nature Communications, 5, 4114.
    """
    table = np.asarray(table)
    if table.ndim != 2:
        raise ValueError(f"table must be 2-D (subjects x stimuli), got shape {table.shape}.")
    if int(n_tables) < 1:
        raise ValueError(f"n_tables must be >= 1, got {n_tables}.")
    n_classes = int(table.max()) + 1 if n_classes is None else int(n_classes)
    n_rows = table.shape[0]
    if n_steps is None:
        n_steps = default_chain_steps(n_rows)
    rng = np.random.default_rng(seed)
    hub = table.astype(np.int8)[None].copy()
    _curveball_steps(hub, int(n_steps), max(n_classes, 1), rng)
    tables = np.repeat(hub, int(n_tables), axis=0)
    _curveball_steps(tables, int(n_steps), max(n_classes, 1), rng)
    return tables


def default_chain_steps(n_subjects: int) -> int:
    """Curveball trades per chain for *n_subjects* rows: ``max(50, ceil(5 S ln S))``.

    The distance of the drawn tables to the observed one and to each other stops
    changing after about ``2 S ln S`` trades for 12 x 16 and 32 x 40 binary tables and
    23 x 18 four-class tables (``benchmarks/inference_calibration.py``, ``mixing``);
    ``5 S ln S`` leaves a margin of more than two.
    """
    s = max(int(n_subjects), 2)
    return max(50, int(np.ceil(5 * s * np.log(s))))


def _unit_stimuli(stimuli, unit_of_window, n_units: int):
    stimuli = np.asarray(stimuli)
    if len(stimuli) != len(unit_of_window):
        raise ValueError(f"stimuli must have one entry per window ({len(unit_of_window)}), "
                         f"got {len(stimuli)}.")
    stim_ids, code = np.unique(stimuli, return_inverse=True)
    unit_stim = np.zeros(n_units, dtype=np.int64)
    unit_stim[unit_of_window] = code.reshape(-1)
    if np.any(unit_stim[unit_of_window] != code.reshape(-1)):
        raise ValueError("the windows of one unit show different stimuli; a unit must be one "
                         "(subject, trial) with trial = stimulus.")
    return unit_stim, len(stim_ids)


def _within_subject_draws(unit_label, unit_subject, seed: int):
    """``draw(size) -> (size, U)`` unit labels shuffled within each subject's units."""
    rng = np.random.default_rng(seed)
    # unit_subject is sorted, so sorting (subject code + uniform noise) shuffles units
    # within each subject's contiguous block only.
    block = unit_subject.astype(float)[None, :]
    n_units = len(unit_label)

    def draw(size):
        order = np.argsort(block + rng.random((size, n_units)), axis=1, kind="stable")
        return unit_label[order]
    return draw


def _margin_draws(unit_label, unit_subject, n_subjects: int, stimuli, unit_of_window,
                  n_tables: int, *, n_steps: int, n_classes: int, seed: int):
    """``draw(size) -> (size, U)`` unit labels of the next *size* margin-preserving tables.

    The unit labels form a subject x stimulus table (one unit per cell); its
    :func:`margin_preserving_tables` are drawn at once and handed out in order.
    """
    n_units = len(unit_label)
    unit_stim, n_stimuli = _unit_stimuli(stimuli, unit_of_window, n_units)
    table = np.full((n_subjects, n_stimuli), -1, dtype=np.int64)
    cell = unit_subject * n_stimuli + unit_stim
    if len(np.unique(cell)) < n_units:
        raise ValueError("a subject has two units of one stimulus; the margins null needs "
                         "one unit per (subject, stimulus), e.g. units = (subject, trial).")
    table.reshape(-1)[cell] = unit_label
    tables = margin_preserving_tables(table, n_tables, n_steps=n_steps,
                                      n_classes=n_classes, seed=seed)
    flat = tables.reshape(n_tables, -1)
    done = [0]

    def draw(size):
        out = flat[done[0]:done[0] + size][:, cell].astype(np.int64)
        done[0] += size
        return out
    return draw


@fill_doc
def subject_permutation_test(y_true, y_pred, subjects, units, *, n_classes: int = 2,
                             metric: str | None = None, n_permutations: int = 1000,
                             seed: int = 0, null: str = "within-subject", stimuli=None,
                             n_steps: int | None = None) -> dict:
    """Permutation p-value of :func:`subject_level_score` under a null that keeps subjects.

    ``null="within-subject"``: within each subject, the predictions carry no
    information about which unit (e.g. trial) has which label. Each permutation
    shuffles every subject's unit labels between that subject's units -- all windows of
    a unit keep one label, and each subject keeps its own label counts -- and scores
    the fixed predictions against them. A classifier that has only learnt each
    subject's label prior (predicting the subject's majority class) therefore gets a
    uniformly distributed p-value, whereas a test that permutes across subjects calls
    it significant.

    ``null="subject-stimulus-margins"``: the labels follow each subject's rating habit
    and each stimulus's consensus only. The unit labels form a subject x stimulus
    table, and each permutation is a table with the same class counts per subject
    *and* per stimulus (:func:`margin_preserving_tables`). A model that only recognises
    the stimulus (what cross-subject protocols that keep the test stimuli in training
    allow) or only knows the subjects' habits is not significant under it; under the
    within-subject null it is, because a stimulus's label is shared across subjects.

    Parameters
    ----------
    y_true, y_pred : array of int, shape (n,)
        True and predicted classes ``0..n_classes-1`` of each window.
    %(window_subjects)s
    units : array, shape (n,) or (n, k)
        Unit of each window, e.g. ``(subject, trial)`` columns; units are nested in
        subjects. The windows of a unit must share one label.
    %(n_classes)s
    %(subject_metric)s
    n_permutations : int
        Number of permutations (at least 1).
    seed : int
        Seed of the permutations.
    null : {"within-subject", "subject-stimulus-margins"}
        The null (:data:`NULLS`).
    stimuli : array, shape (n,) | None
        Stimulus of each window (DEAP and DREAMER: the trial, the same video for every
        subject); needed by ``"subject-stimulus-margins"``, where a subject must have
        one unit per stimulus.
    n_steps : int | None
        Curveball trades per chain of ``"subject-stimulus-margins"`` (see
        :func:`margin_preserving_tables`).

    Returns
    -------
    result : dict
        ``metric`` (``"subject.<metric>"``), ``value`` (observed score), ``p_value``
        (``(1 + #{null >= observed}) / (1 + n_permutations)``), ``permutations``,
        ``null_mean``, ``null_q95`` (95th percentile of the null scores),
        ``null_name`` and ``null`` (one sentence defining the null); with the margins
        null also ``steps`` (trades per chain).
    """
    metric = _check_metric(metric, n_classes)
    if null not in NULLS:
        raise ValueError(f"null={null!r} is not a permutation null; use one of "
                         f"{', '.join(NULLS)}.")
    if int(n_permutations) < 1:
        raise ValueError(f"n_permutations must be >= 1, got {n_permutations}.")
    n_permutations = int(n_permutations)
    unit_subject, unit_label, counts, ids, unit_of_window = _unit_table(
        y_true, y_pred, subjects, units, n_classes)
    n_subjects, n_units = len(ids), len(unit_label)
    observed = float(_mean_over_subjects(_scores_from_labels(
        unit_label, unit_subject, counts, n_subjects, n_classes, metric))[0])
    extra = {}
    if null == "within-subject":
        draw = _within_subject_draws(unit_label, unit_subject, seed)
    else:
        if stimuli is None:
            raise ValueError("null='subject-stimulus-margins' needs the stimulus of each "
                             "window (stimuli=...).")
        n_steps = default_chain_steps(n_subjects) if n_steps is None else int(n_steps)
        extra["steps"] = n_steps
        draw = _margin_draws(unit_label, unit_subject, n_subjects, stimuli, unit_of_window,
                             n_permutations, n_steps=n_steps, n_classes=n_classes, seed=seed)
    chunk = max(1, 2_000_000 // max(n_units, 1))
    null_scores = []
    for start in range(0, n_permutations, chunk):
        size = min(chunk, n_permutations - start)
        scores = _scores_from_labels(draw(size), unit_subject, counts, n_subjects,
                                     n_classes, metric)
        null_scores.append(_mean_over_subjects(scores))
    null_scores = np.concatenate(null_scores)
    if np.isfinite(observed):
        # A small tolerance so that labellings equal to the observed one count as hits.
        hits = int(np.sum(null_scores >= observed - 1e-12))
        p_value = (hits + 1) / (n_permutations + 1)
        null_mean = float(np.mean(null_scores))
        null_q95 = float(np.quantile(null_scores, 0.95))
    else:
        p_value = null_mean = null_q95 = float("nan")
    return {"metric": f"subject.{metric}", "value": observed, "p_value": float(p_value),
            "permutations": n_permutations, "null_mean": null_mean, "null_q95": null_q95,
            "null_name": null, "null": NULLS[null], **extra}

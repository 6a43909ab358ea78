"""Calibration of the report's inference: permutation nulls, paired tests, intervals.

    python benchmarks/inference_calibration.py [--runs 1000] [--out results/inference.json]

Every number in the "Inference" part of ``docs/evaluation.md`` comes from this script
(seeded; about three minutes on one core). It simulates, without any signal or
training, the situations the report's statistics must handle and prints one table per
question:

* ``nulls``: subject x stimulus label tables drawn from a multinomial-logit model with
  a subject effect (rating habit) and a stimulus effect (consensus), no emotion effect,
  and a model that knows only the stimulus (the stimulus prior of the other subjects,
  as under ``loso`` and ``subject-kfold``). Share of p <= 0.05 under the within-subject
  null and under the subject-stimulus margins null
  (:func:`physiosync.evaluation.metrics.subject_permutation_test`), and the power of
  both when the labels also follow a per-cell emotion that the model reads;
* ``paired``: false positives of paired tests when the subjects of a fold share a
  pre-training (a fold effect of SD ``tau``), paired by subject (sign-flip) or by fold
  (corrected resampled t), and over folds whose training sets overlap (correlation
  ``n_test / n_train``): sign-flip against the corrected t;
* ``coverage``: coverage of 95 % intervals of a mean difference at 4-32 subjects for
  normal, skewed and accuracy-like differences (percentile bootstrap, BCa, Student t,
  studentised bootstrap), and of the fold interval of the corrected t;
* ``mixing``: distance of the curveball tables to the observed one and to each other
  as the number of trades grows.

The simulators are also used by ``tests/evaluation/test_null.py`` (loaded from this file).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from scipy import stats

from physiosync.evaluation.metrics import margin_preserving_tables, subject_permutation_test
from physiosync.evaluation.statistics import (bootstrap_ci, corrected_resampled_ttest,
                                              sign_flip_test, studentized_bootstrap_ci)


def rejection_bound(n_runs: int, alpha: float = 0.05, *, level: float = 0.001) -> float:
    """Largest share of p <= *alpha* over *n_runs* null runs that a valid test reaches
    with probability at least ``1 - level`` (upper binomial quantile / n_runs)."""
    return float(stats.binom.ppf(1.0 - level, n_runs, alpha) / n_runs)


def coverage_bounds(n_runs: int, nominal: float = 0.95, *, level: float = 0.001) -> tuple:
    """Two-sided binomial Monte-Carlo bounds of the coverage of *n_runs* intervals."""
    lo = stats.binom.ppf(level / 2, n_runs, nominal) / n_runs
    hi = stats.binom.ppf(1 - level / 2, n_runs, nominal) / n_runs
    return float(lo), float(hi)


# ---------------------------------------------------------------------------- nulls
def label_tables(rng, n_runs: int, n_subjects: int, n_stimuli: int, *, n_classes: int = 2,
                 subject_sd: float = 1.0, stimulus_sd: float = 1.5, effect: float = 0.0):
    """Label tables ``(n_runs, S, T)`` from ``P(c) ~ exp(a_sc + b_tc + effect * z_stc)``.

    Returns the labels and the per-cell emotion ``z`` (``(n_runs, S, T, C)``), which a
    model with a real effect reads. Class 0 is the reference (``a, b, z = 0`` there).
    """
    shape = (n_runs, n_subjects, n_stimuli, n_classes)
    a = rng.normal(0, subject_sd, (n_runs, n_subjects, 1, n_classes))
    b = rng.normal(0, stimulus_sd, (n_runs, 1, n_stimuli, n_classes))
    z = rng.normal(0, 1, shape)
    logit = a + b + effect * z
    logit[..., 0] = 0.0
    z[..., 0] = 0.0
    p = np.exp(logit - logit.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    labels = (p.cumsum(-1) > rng.random(shape[:-1])[..., None]).argmax(-1)
    return labels, z


def stimulus_prior_predictions(labels, rng, *, n_splits: int | None = None):
    """The stimulus prior of cross-subject protocols, for every table at once.

    Each cell is predicted as the most frequent class among the training subjects'
    labels of the same stimulus (ties at random): the other subjects (``loso``,
    *n_splits* None) or the subjects of the other folds (``subject-kfold``).
    """
    n_runs, n_subjects, _ = labels.shape
    n_classes = int(labels.max()) + 1
    onehot = np.eye(n_classes)[labels]  # (R, S, T, C)
    if n_splits is None:
        train = onehot.sum(1, keepdims=True) - onehot
    else:
        fold = rng.permuted(np.tile(np.arange(n_subjects) % n_splits, (n_runs, 1)), axis=1)
        per_fold = np.stack([(onehot * (fold == k)[:, :, None, None]).sum(1)
                             for k in range(n_splits)], axis=1)  # (R, K, T, C)
        train = onehot.sum(1)[:, None] - np.take_along_axis(
            per_fold, fold[:, :, None, None], axis=1)
    return (train + 1e-3 * rng.random(train.shape)).argmax(-1)


def table_p_value(labels, pred, *, null: str, n_permutations: int = 99, seed: int = 0,
                  n_classes: int | None = None) -> float:
    """p-value of the headline for one subject x stimulus table (one window per cell)."""
    n_subjects, n_stimuli = labels.shape
    subj = np.repeat(np.arange(n_subjects), n_stimuli)
    stim = np.tile(np.arange(n_stimuli), n_subjects)
    n_classes = n_classes or int(max(labels.max(), pred.max())) + 1
    return subject_permutation_test(
        labels.ravel(), pred.ravel(), subj, np.column_stack([subj, stim]),
        n_classes=n_classes, n_permutations=n_permutations, seed=seed, null=null,
        stimuli=stim)["p_value"]


def null_rejections(n_runs: int, *, n_subjects=12, n_stimuli=16, n_classes=2, effect=0.0,
                    n_splits=None, predictor="stimulus-prior", nulls=("within-subject",
                    "subject-stimulus-margins"), n_permutations=99, seed=0) -> dict:
    """Share of p <= 0.05 under each null over *n_runs* simulated tables."""
    rng = np.random.default_rng(seed)
    labels, z = label_tables(rng, n_runs, n_subjects, n_stimuli, n_classes=n_classes,
                             effect=effect)
    if predictor == "stimulus-prior":
        pred = stimulus_prior_predictions(labels, rng, n_splits=n_splits)
    else:  # "emotion": the model reads the per-cell emotion (and nothing else)
        pred = (z + rng.normal(0, 0.5, z.shape)).argmax(-1)
    out = {}
    for null in nulls:
        p = np.array([table_p_value(labels[r], pred[r], null=null, seed=r,
                                    n_permutations=n_permutations, n_classes=n_classes)
                      for r in range(n_runs)])
        out[null] = float(np.mean(p <= 0.05))
    return out


# ---------------------------------------------------------------------------- paired
def shared_fold_effect(rng, n_runs: int, *, n_subjects: int = 12, n_folds: int = 5,
                       tau: float = 0.02, sigma: float = 0.05):
    """Differences of two pipelines with no true difference whose subjects share a
    fold's pre-training: ``d_sf = u_f + e_sf``, ``u_f ~ N(0, tau)``, ``e ~ N(0, sigma)``.

    Returns the per-subject differences (mean over folds, ``(R, S)``) and the per-fold
    ones (mean over subjects, ``(R, K)``), as the report pairs them.
    """
    u = rng.normal(0, tau, (n_runs, 1, n_folds))
    d = u + rng.normal(0, sigma, (n_runs, n_subjects, n_folds))
    return d.mean(2), d.mean(1)


def correlated_folds(rng, n_runs: int, n_folds: int, *, sigma: float = 0.05,
                     mean: float = 0.0):
    """Fold differences with the correlation ``rho = 1 / (k - 1)`` (= n_test / n_train
    of k-fold cross-validation) that shared training data brings."""
    rho = 1.0 / (n_folds - 1)
    common = rng.normal(0, sigma * np.sqrt(rho), (n_runs, 1))
    return mean + common + rng.normal(0, sigma * np.sqrt(1 - rho), (n_runs, n_folds))


def fold_t_p(d) -> float:
    """Corrected resampled t p-value of k-fold differences (n_test / n_train = 1/(k-1))."""
    k = len(d)
    return corrected_resampled_ttest(d, k - 1, 1)["p_value"]


def paired_rates(n_runs: int, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    out = {"shared": {}, "folds": {}}
    for tau in (0.0, 0.01, 0.02):
        subj, fold = shared_fold_effect(rng, n_runs, tau=tau)
        out["shared"][tau] = {
            "subject sign-flip": float(np.mean([sign_flip_test(d)["p_value"] <= 0.05
                                                for d in subj])),
            "fold corrected t": float(np.mean([fold_t_p(d) <= 0.05 for d in fold]))}
    for k in (5, 10, 32):
        d = correlated_folds(rng, n_runs, k)
        out["folds"][k] = {
            "sign-flip": float(np.mean([sign_flip_test(x, n_resamples=2000, seed=i)[
                "p_value"] <= 0.05 for i, x in enumerate(d)])),
            "corrected t": float(np.mean([fold_t_p(x) <= 0.05 for x in d]))}
    return out


# ---------------------------------------------------------------------------- coverage
def differences(rng, kind: str, n: int):
    """One sample of *n* paired differences and its true mean."""
    if kind == "normal":
        return rng.normal(0.03, 0.05, n), 0.03
    if kind == "skewed":  # Beta(0.5, 3): skewness 1.7, bounded
        return rng.beta(0.5, 3.0, n) - 0.5 / 3.5, 0.0
    if kind == "accuracy":  # accuracies over 40 trials, subjects of varying skill
        p = rng.beta(6, 4, n)
        return rng.binomial(40, p) / 40 - rng.binomial(40, 0.5, n) / 40, 0.1
    raise ValueError(f"unknown kind {kind!r}")


def t_interval(d):
    m, se = d.mean(), d.std(ddof=1) / np.sqrt(d.size)
    q = stats.t.ppf(0.975, d.size - 1)
    return m - q * se, m + q * se


INTERVALS = {
    "percentile": lambda d, s: bootstrap_ci(d, n_resamples=1999, seed=s),
    "BCa": lambda d, s: bootstrap_ci(d, n_resamples=1999, seed=s, method="BCa"),
    "t": lambda d, s: t_interval(d),
    "bootstrap-t": lambda d, s: studentized_bootstrap_ci(d, n_resamples=1999, seed=s),
}


def coverage(kind: str, n: int, n_runs: int, method: str, seed: int = 0) -> float:
    rng = np.random.default_rng(seed)
    hits = 0
    for r in range(n_runs):
        d, mu = differences(rng, kind, n)
        lo, hi = INTERVALS[method](d, r)
        lo = -np.inf if lo is None else lo
        hi = np.inf if hi is None else hi
        hits += lo <= mu <= hi
    return hits / n_runs


def fold_coverage(k: int, n_runs: int, seed: int = 0) -> dict:
    """Coverage of the corrected-t interval and of the percentile bootstrap over folds."""
    rng = np.random.default_rng(seed)
    d = correlated_folds(rng, n_runs, k, mean=0.03)
    nb = [corrected_resampled_ttest(x, k - 1, 1)["ci"] for x in d]
    pct = [bootstrap_ci(x, n_resamples=1999, seed=i) for i, x in enumerate(d)]
    return {"corrected t": float(np.mean([lo <= 0.03 <= hi for lo, hi in nb])),
            "percentile": float(np.mean([lo <= 0.03 <= hi for lo, hi in pct]))}


# ---------------------------------------------------------------------------- mixing
def mixing(seed: int = 0) -> list:
    rng = np.random.default_rng(seed)
    rows = []
    for n_classes, s, t in ((2, 12, 16), (2, 32, 40), (4, 23, 18)):
        table = label_tables(rng, 1, s, t, n_classes=n_classes)[0][0]
        scale = s * np.log(s)
        for m in (0.5, 1, 2, 5, 10, 20):
            x = margin_preserving_tables(table, 200, n_steps=int(m * scale),
                                         n_classes=n_classes, seed=1)
            rows.append({"table": f"{s}x{t}, {n_classes} classes", "steps / (S ln S)": m,
                         "to observed": float((x != table).mean()),
                         "between draws": float((x[:100] != x[100:]).mean())})
    return rows


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000, help="simulated data sets per cell")
    parser.add_argument("--out", type=Path, default=None, help="write the numbers as JSON")
    args = parser.parse_args(argv)
    n = args.runs
    t0 = time.perf_counter()
    res = {"runs": n, "rejection_bound": rejection_bound(n),
           "coverage_bounds": coverage_bounds(n)}
    res["nulls"] = {
        "loso, 2 classes": null_rejections(n // 2),
        "subject-kfold (4 folds), 2 classes": null_rejections(n // 2, n_splits=4, seed=1),
        "loso, 4 classes": null_rejections(n // 2, n_classes=4, seed=2),
        "loso, 2 classes, 32 x 40": null_rejections(n // 5, n_subjects=32, n_stimuli=40,
                                                    seed=3),
        "power, emotion effect 1": null_rejections(n // 5, effect=1.0, predictor="emotion",
                                                   seed=4),
        "power, emotion effect 0.5": null_rejections(n // 5, effect=0.5,
                                                     predictor="emotion", seed=5)}
    print("p <= 0.05 share (bound for a valid test at n/2 runs: "
          f"{rejection_bound(n // 2):.3f})", file=sys.stderr)
    for key, v in res["nulls"].items():
        print(f"  {key:<40} " + "  ".join(f"{k}: {x:.3f}" for k, x in v.items()),
              file=sys.stderr)
    res["paired"] = paired_rates(n)
    print("paired false positives:", json.dumps(res["paired"]), file=sys.stderr)
    cov = {}
    for kind in ("normal", "skewed", "accuracy"):
        for m in (4, 8, 16, 32):
            cov[f"{kind}, n={m}"] = {meth: coverage(kind, m, n // 2, meth, seed=m)
                                     for meth in INTERVALS}
            print(f"  coverage {kind:<9} n={m:<3}", cov[f"{kind}, n={m}"], file=sys.stderr)
    res["coverage"] = cov
    res["fold_coverage"] = {k: fold_coverage(k, n) for k in (5, 10, 32)}
    print("fold coverage:", res["fold_coverage"], file=sys.stderr)
    res["mixing"] = mixing()
    for row in res["mixing"]:
        print("  mixing", row, file=sys.stderr)
    res["seconds"] = time.perf_counter() - t0
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(res, indent=2))
    print(json.dumps({"seconds": round(res["seconds"], 1)}))
    return res


if __name__ == "__main__":
    main()

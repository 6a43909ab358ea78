"""Paired comparisons of two pipelines evaluated on the same folds.

A comparison works on paired differences ``d_i = score_i(pipeline) - score_i(baseline)``,
one per *independent unit*: a subject when every subject has its own model, a fold
when one pooled model serves several subjects. The functions here take those
differences and return plain floats and dictionaries (JSON-ready):

- :func:`sign_flip_test`: two-sided sign-flip permutation test of the mean difference,
  exact (all ``2**n`` sign patterns) for small ``n``, Monte Carlo above. Under the null
  hypothesis of no difference, each ``d_i`` is symmetric about zero, so flipping its sign
  is as likely as keeping it. With ``n`` units the smallest p-value the design can reach
  is ``2 / 2**n`` (0.125 with four folds, 0.0078 with eight subjects):
  :func:`min_sign_flip_p`.
- :func:`corrected_resampled_ttest`: the corrected resampled t-test of Nadeau and
  Bengio (2003) for differences over cross-validation folds, whose training sets
  overlap, so that the fold scores are not independent.
- :func:`bootstrap_ci`: percentile bootstrap confidence interval of the mean difference
  over units.
- :func:`cohens_dz`: standardised mean difference of paired data.

References
----------
.. [1] Nadeau, C. and Bengio, Y. (2003). Inference for the generalization error.
   Machine Learning, 52(3), 239-281.
.. [2] Good, P. (2005). Permutation, Parametric and Bootstrap Tests of Hypotheses,
   3rd ed. Springer (one-sample sign-flip permutation test).
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["sign_flip_test", "min_sign_flip_p", "corrected_resampled_ttest", "bootstrap_ci",
           "cohens_dz", "EXACT_MAX_N"]

#: Largest number of units for which :func:`sign_flip_test` enumerates every sign
#: pattern (2**16 = 65,536 patterns); above it draws Monte Carlo sign patterns.
EXACT_MAX_N = 16


def _finite(d) -> np.ndarray:
    d = np.asarray(d, dtype=float).ravel()
    return d[np.isfinite(d)]


def min_sign_flip_p(n: int, *, n_resamples: int | None = None) -> float:
    """The smallest two-sided p-value a sign-flip test on *n* units can give.

    Parameters
    ----------
    n : int
        Number of paired differences.
    n_resamples : int | None
        Monte Carlo sign patterns when the test is not exact (then the p-value cannot
        be below ``1 / (n_resamples + 1)`` either).

    Returns
    -------
    p : float
        ``2 / 2**n`` (the observed pattern and its mirror image are always as extreme
        as the data), ``1.0`` for ``n < 1``.
    """
    if n < 1:
        return 1.0
    p = 2.0 / 2.0 ** n
    if n_resamples is not None:
        p = max(p, 1.0 / (n_resamples + 1))
    return float(min(p, 1.0))


def sign_flip_test(d, *, n_resamples: int = 10_000, seed: int = 0,
                   exact_max_n: int = EXACT_MAX_N) -> dict:
    """Two-sided sign-flip permutation test of the mean of paired differences.

    The statistic is ``|mean(s * d)|`` over sign patterns ``s`` in ``{-1, +1}**n``; the
    p-value is the share of patterns at least as extreme as the observed one.

    Parameters
    ----------
    d : array-like of float, shape (n,)
        Paired differences, one per independent unit (non-finite values are dropped).
    n_resamples : int
        Random sign patterns when ``n > exact_max_n``.
    seed : int
        Seed of the random sign patterns.
    exact_max_n : int
        Enumerate all ``2**n`` patterns up to this ``n``.

    Returns
    -------
    result : dict
        ``p_value`` (None when ``n < 1``), ``min_p`` (:func:`min_sign_flip_p`), ``n``,
        ``exact`` (bool) and ``n_patterns`` (patterns evaluated). Exact:
        ``p = #{|mean(s d)| >= |mean(d)|} / 2**n``, the identity pattern included. Monte
        Carlo: ``p = (1 + #{...}) / (1 + n_resamples)``.
    """
    d = _finite(d)
    n = d.size
    if n < 1:
        return {"p_value": None, "min_p": 1.0, "n": 0, "exact": True, "n_patterns": 0}
    observed = abs(d.mean())
    tol = 1e-12 * max(1.0, float(np.abs(d).max()))  # ties up to rounding count as extreme
    if n <= exact_max_n:
        bits = (np.arange(2 ** n)[:, None] >> np.arange(n)) & 1
        signs = 1.0 - 2.0 * bits
        null = np.abs(signs @ d) / n
        p = float(np.mean(null >= observed - tol))
        return {"p_value": p, "min_p": min_sign_flip_p(n), "n": int(n), "exact": True,
                "n_patterns": int(len(signs))}
    rng = np.random.default_rng(seed)
    hits, done, chunk = 0, 0, 4096
    while done < n_resamples:
        m = min(chunk, n_resamples - done)
        signs = rng.choice((-1.0, 1.0), size=(m, n))
        hits += int(np.sum(np.abs(signs @ d) / n >= observed - tol))
        done += m
    p = (1 + hits) / (1 + n_resamples)
    return {"p_value": float(p), "min_p": min_sign_flip_p(n, n_resamples=n_resamples),
            "n": int(n), "exact": False, "n_patterns": int(n_resamples)}


def corrected_resampled_ttest(d, n_train, n_test) -> dict:
    """Nadeau and Bengio's corrected resampled t-test of fold-wise differences.

    Cross-validation folds share training data, so the variance of the mean
    difference is larger than ``var(d) / k``. The corrected statistic is::

        t = mean(d) / sqrt((1 / k + n_test / n_train) * var(d, ddof=1)),  df = k - 1

    Parameters
    ----------
    d : array-like of float, shape (k,)
        One difference per fold.
    n_train, n_test : float | array-like of float
        Training and test set sizes (one value, or one per fold; with several the mean
        ratio ``n_test / n_train`` is used).

    Returns
    -------
    result : dict
        ``t``, ``df``, ``p_value`` (two-sided, Student's t with ``df`` degrees of
        freedom), ``k`` and ``test_train_ratio``. ``t`` and ``p_value`` are None with
        fewer than two folds or when the differences do not vary.
    """
    from scipy.stats import t as student_t

    d = np.asarray(d, dtype=float).ravel()
    n_train = np.broadcast_to(np.asarray(n_train, dtype=float), d.shape)
    n_test = np.broadcast_to(np.asarray(n_test, dtype=float), d.shape)
    keep = np.isfinite(d) & (n_train > 0)
    d, ratio = d[keep], float(np.mean(n_test[keep] / n_train[keep])) if keep.any() else None
    k = int(d.size)
    out = {"t": None, "df": max(k - 1, 0), "p_value": None, "k": k, "test_train_ratio": ratio}
    if k < 2:
        return out
    var = float(np.var(d, ddof=1))
    if not var > 0:
        return out
    t = float(d.mean() / math.sqrt((1.0 / k + ratio) * var))
    out.update(t=t, p_value=float(2 * student_t.sf(abs(t), k - 1)))
    return out


def bootstrap_ci(d, *, n_resamples: int = 10_000, confidence: float = 0.95,
                 seed: int = 0) -> tuple:
    """Percentile bootstrap confidence interval of the mean of *d*.

    Parameters
    ----------
    d : array-like of float, shape (n,)
        Values of independent units (non-finite values are dropped).
    n_resamples : int
        Bootstrap resamples (units drawn with replacement).
    confidence : float
        Coverage of the interval, in (0, 1).
    seed : int
        Seed of the resampling: the same inputs give the same interval.

    Returns
    -------
    low, high : float | None
        The ``(1 - confidence) / 2`` and ``(1 + confidence) / 2`` quantiles of the
        resampled means; None with fewer than two units.
    """
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}.")
    d = _finite(d)
    if d.size < 2:
        return None, None
    rng = np.random.default_rng(seed)
    means = np.empty(n_resamples)
    chunk = max(1, 2_000_000 // d.size)
    for start in range(0, n_resamples, chunk):
        m = min(chunk, n_resamples - start)
        means[start:start + m] = d[rng.integers(0, d.size, size=(m, d.size))].mean(axis=1)
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(means, [alpha, 1.0 - alpha])
    return float(low), float(high)


def cohens_dz(d) -> float | None:
    """Cohen's d_z of paired differences: ``mean(d) / std(d, ddof=1)``.

    Returns None with fewer than two differences or when they do not vary.
    """
    d = _finite(d)
    if d.size < 2:
        return None
    sd = float(d.std(ddof=1))
    return float(d.mean() / sd) if sd > 0 else None

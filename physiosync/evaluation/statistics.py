"""Paired comparisons of two pipelines evaluated on the same folds.

A comparison works on paired differences ``d_i = score_i(pipeline) - score_i(baseline)``,
one per *independent unit*: a subject when every subject has its own model, a fold
when one pooled model serves several subjects. The functions here take those
differences and return plain floats and dictionaries (JSON-ready):

- :func:`sign_flip_test`: two-sided sign-flip permutation test of the mean difference,
  exact (all ``2**n`` sign patterns) for small ``n``, Monte Carlo above. Under the null
  hypothesis of no difference, each ``d_i`` is symmetric about zero, so flipping its sign
  is as likely as keeping it. With ``n`` units the smallest p-value the design can reach
  is ``2 / 2**m`` with ``m`` the number of non-zero differences (0.125 with four folds,
  0.0078 with eight subjects; a zero difference flips to itself): :func:`min_sign_flip_p`.
- :func:`corrected_resampled_ttest`: the corrected resampled t-test of Nadeau and
  Bengio (2003) for differences over cross-validation folds, whose training sets
  overlap, so that the fold scores are not independent, with the confidence interval of
  the same variance.
- :func:`studentized_bootstrap_ci`: bootstrap-t interval of the mean difference over
  independent units (the report's interval for subject pairs: it keeps its coverage at
  4-32 units and for skewed differences, where percentile and BCa intervals do not;
  ``docs/evaluation.md``).
- :func:`bootstrap_ci`: percentile, basic or BCa bootstrap interval of the mean
  (:func:`scipy.stats.bootstrap`).
- :func:`cohens_dz`: standardised mean difference of paired data.
- :func:`holm_adjust`: Holm's step-down adjustment of a family of p-values (the
  comparisons of several pipelines with one primary pipeline on one metric), and
  :func:`holm_families`, which applies it to a report's comparisons.

References
----------
.. [1] Nadeau, C. and Bengio, Y. (2003). Inference for the generalization error.
   Machine Learning, 52(3), 239-281.
.. [2] Good, P. (2005). Permutation, Parametric and Bootstrap Tests of Hypotheses,
   3rd ed. Springer (one-sample sign-flip permutation test).
.. [3] Efron, B. and Tibshirani, R. J. (1993). An Introduction to the Bootstrap.
   Chapman & Hall, chapter 12 (the bootstrap-t interval).
.. [4] Holm, S. (1979). A simple sequentially rejective multiple test procedure.
   Scandinavian Journal of Statistics, 6(2), 65-70.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["sign_flip_test", "min_sign_flip_p", "corrected_resampled_ttest", "bootstrap_ci",
           "studentized_bootstrap_ci", "cohens_dz", "holm_adjust", "holm_families",
           "real_or_none", "EXACT_MAX_N"]

#: Largest number of units for which :func:`sign_flip_test` enumerates every sign
#: pattern (2**16 = 65,536 patterns); above it draws Monte Carlo sign patterns.
EXACT_MAX_N = 16


def _finite(d) -> np.ndarray:
    d = np.asarray(d, dtype=float).ravel()
    return d[np.isfinite(d)]


def min_sign_flip_p(n: int, *, n_zeros: int = 0, n_resamples: int | None = None) -> float:
    """The smallest two-sided p-value a sign-flip test on *n* units can give.

    Parameters
    ----------
    n : int
        Number of paired differences.
    n_zeros : int
        How many of them are zero: flipping the sign of a zero changes nothing, so only
        the ``n - n_zeros`` others count (n = 5 with two zeros: 2 / 2**3 = 0.25).
    n_resamples : int | None
        Monte Carlo sign patterns when the test is not exact (then the p-value cannot
        be below ``1 / (n_resamples + 1)`` either).

    Returns
    -------
    p : float
        ``2 / 2**(n - n_zeros)`` (the observed pattern and its mirror image are always as
        extreme as the data), ``1.0`` when no difference is non-zero.
    """
    m = int(n) - int(n_zeros)
    if m < 1:
        return 1.0
    p = 2.0 / 2.0 ** m
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
        ``p_value`` (None when ``n < 1``), ``min_p`` (:func:`min_sign_flip_p` of the
        ``n`` differences, ``n_zeros`` of them zero up to rounding), ``n``, ``n_zeros``,
        ``exact`` (bool) and ``n_patterns`` (patterns evaluated). Exact:
        ``p = #{|mean(s d)| >= |mean(d)|} / 2**n``, the identity pattern included. Monte
        Carlo: ``p = (1 + #{...}) / (1 + n_resamples)``.
    """
    d = _finite(d)
    n = d.size
    if n < 1:
        return {"p_value": None, "min_p": 1.0, "n": 0, "n_zeros": 0, "exact": True,
                "n_patterns": 0}
    observed = abs(d.mean())
    tol = 1e-12 * max(1.0, float(np.abs(d).max()))  # ties up to rounding count as extreme
    zeros = int(np.sum(np.abs(d) <= tol))
    if n <= exact_max_n:
        bits = (np.arange(2 ** n)[:, None] >> np.arange(n)) & 1
        signs = 1.0 - 2.0 * bits
        null = np.abs(signs @ d) / n
        p = float(np.mean(null >= observed - tol))
        return {"p_value": p, "min_p": min_sign_flip_p(n, n_zeros=zeros), "n": int(n),
                "n_zeros": zeros, "exact": True, "n_patterns": int(len(signs))}
    rng = np.random.default_rng(seed)
    hits, done, chunk = 0, 0, 4096
    while done < n_resamples:
        m = min(chunk, n_resamples - done)
        signs = rng.choice((-1.0, 1.0), size=(m, n))
        hits += int(np.sum(np.abs(signs @ d) / n >= observed - tol))
        done += m
    p = (1 + hits) / (1 + n_resamples)
    return {"p_value": float(p),
            "min_p": min_sign_flip_p(n, n_zeros=zeros, n_resamples=n_resamples),
            "n": int(n), "n_zeros": zeros, "exact": False, "n_patterns": int(n_resamples)}


def corrected_resampled_ttest(d, n_train, n_test, *, confidence: float = 0.95) -> dict:
    """Nadeau and Bengio's corrected resampled t-test of fold-wise differences.

    Cross-validation folds share training data, so the variance of the mean
    difference is larger than ``var(d) / k``. The corrected statistic is::

        t = mean(d) / sqrt((1 / k + n_test / n_train) * var(d, ddof=1)),  df = k - 1

    and the interval of the mean difference uses the same standard error,
    ``mean(d) +/- t_{k-1, (1 + confidence) / 2} * se``: it excludes 0 exactly when the
    test rejects at ``1 - confidence``.

    Parameters
    ----------
    d : array-like of float, shape (k,)
        One difference per fold.
    n_train, n_test : float | array-like of float
        Training and test set sizes (one value, or one per fold; with several the mean
        ratio ``n_test / n_train`` is used).
    confidence : float
        Coverage of the interval ``ci``, in (0, 1).

    Returns
    -------
    result : dict
        ``t``, ``df``, ``p_value`` (two-sided, Student's t with ``df`` degrees of
        freedom), ``se`` (the corrected standard error), ``ci`` (``[low, high]``),
        ``k`` and ``test_train_ratio``. ``t``, ``p_value``, ``se`` and ``ci`` are None
        with fewer than two folds; ``t`` and ``p_value`` also when the differences do
        not vary (the interval is then the mean itself).
    """
    from scipy.stats import t as student_t

    _check_confidence(confidence)
    d = np.asarray(d, dtype=float).ravel()
    n_train = np.broadcast_to(np.asarray(n_train, dtype=float), d.shape)
    n_test = np.broadcast_to(np.asarray(n_test, dtype=float), d.shape)
    keep = np.isfinite(d) & (n_train > 0)
    d, ratio = d[keep], float(np.mean(n_test[keep] / n_train[keep])) if keep.any() else None
    k = int(d.size)
    out = {"t": None, "df": max(k - 1, 0), "p_value": None, "se": None, "ci": None, "k": k,
           "test_train_ratio": ratio}
    if k < 2:
        return out
    var = float(np.var(d, ddof=1))
    se = math.sqrt((1.0 / k + ratio) * var)
    half = float(student_t.ppf((1.0 + confidence) / 2.0, k - 1)) * se
    out.update(se=se, ci=[float(d.mean() - half), float(d.mean() + half)])
    if not var > 0:
        return out
    t = float(d.mean() / se)
    out.update(t=t, p_value=float(2 * student_t.sf(abs(t), k - 1)))
    return out


def _check_confidence(confidence) -> None:
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}.")


def bootstrap_ci(d, *, n_resamples: int = 10_000, confidence: float = 0.95, seed: int = 0,
                 method: str = "percentile") -> tuple:
    """Bootstrap confidence interval of the mean of *d* (:func:`scipy.stats.bootstrap`).

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
    method : {"percentile", "basic", "BCa"}
        The interval of :func:`scipy.stats.bootstrap`. At 4-16 units all three
        under-cover (``docs/evaluation.md``); the report uses
        :func:`studentized_bootstrap_ci`.

    Returns
    -------
    low, high : float | None
        None with fewer than two units; the mean itself when the values do not vary.
    """
    from scipy.stats import bootstrap

    _check_confidence(confidence)
    d = _finite(d)
    if d.size < 2:
        return None, None
    if np.ptp(d) == 0:
        return float(d[0]), float(d[0])
    res = bootstrap((d,), np.mean, n_resamples=n_resamples, confidence_level=confidence,
                    method=method, vectorized=True, random_state=np.random.default_rng(seed))
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def studentized_bootstrap_ci(d, *, n_resamples: int = 10_000, confidence: float = 0.95,
                             seed: int = 0) -> tuple:
    """Studentised (bootstrap-t) confidence interval of the mean of *d*.

    Each resample ``b`` of the units gives ``t_b = (mean_b - mean) / se_b`` with
    ``se = std(ddof=1) / sqrt(n)``; the interval is
    ``[mean - q_hi * se, mean - q_lo * se]`` with ``q_lo``, ``q_hi`` the
    ``(1 -/+ confidence) / 2`` quantiles of ``t_b``. A resample whose values are all
    equal has ``se_b = 0`` and counts as ``t_b = +/-inf`` (0 when its mean is the
    observed one). :func:`scipy.stats.bootstrap` offers no bootstrap-t interval.

    Parameters
    ----------
    d, n_resamples, confidence, seed
        As in :func:`bootstrap_ci`.

    Returns
    -------
    low, high : float | None
        None with fewer than two units; the mean itself when the values do not vary.
        With very few units a bound can be infinite (every interval of that
        confidence would be unbounded).
    """
    _check_confidence(confidence)
    d = _finite(d)
    n = d.size
    if n < 2:
        return None, None
    mean, se = float(d.mean()), float(d.std(ddof=1) / math.sqrt(n))
    if not se > 0:
        return mean, mean
    rng = np.random.default_rng(seed)
    t = np.empty(n_resamples)
    chunk = max(1, 2_000_000 // n)
    for start in range(0, n_resamples, chunk):
        m = min(chunk, n_resamples - start)
        x = d[rng.integers(0, n, size=(m, n))]
        diff = x.mean(axis=1) - mean
        se_b = x.std(axis=1, ddof=1) / math.sqrt(n)
        tol = 1e-12 * max(1.0, abs(mean))
        with np.errstate(divide="ignore", invalid="ignore"):
            t[start:start + m] = np.where(se_b > 0, diff / se_b,
                                          np.where(np.abs(diff) <= tol, 0.0,
                                                   np.sign(diff) * np.inf))
    alpha = (1.0 - confidence) / 2.0
    q_lo, q_hi = np.quantile(t, [alpha, 1.0 - alpha], method="inverted_cdf")
    return float(mean - q_hi * se), float(mean - q_lo * se)


def cohens_dz(d) -> float | None:
    """Cohen's d_z of paired differences: ``mean(d) / std(d, ddof=1)``.

    Returns None with fewer than two differences or when they do not vary.
    """
    d = _finite(d)
    if d.size < 2:
        return None
    sd = float(d.std(ddof=1))
    return float(d.mean() / sd) if sd > 0 else None


def holm_adjust(p_values) -> list:
    """Holm-adjusted p-values of one family of tests (step-down, strong FWER control).

    With the *m* available p-values sorted ascending, ``p_(1) <= ... <= p_(m)``, the
    adjusted value of the *i*-th is ``max_{j <= i} min(1, (m - j + 1) p_(j))``
    (Holm 1979 [4]_): rejecting where the adjusted value is at most alpha controls the
    family-wise error rate at alpha under any dependence between the tests. It is
    what ``statsmodels.stats.multitest.multipletests(p, method="holm")`` returns.

    Parameters
    ----------
    p_values : sequence of float | None
        The raw p-values of the family, in any order. None and NaN are tests without a
        p-value: they are left out of the family (*m* counts the others) and returned
        as None.

    Returns
    -------
    adjusted : list of float | None
        In the order of *p_values*.
    """
    raw = [None if p is None or not np.isfinite(float(p)) else float(p) for p in p_values]
    present = sorted((p, i) for i, p in enumerate(raw) if p is not None)
    m = len(present)
    out = [None] * len(raw)
    running = 0.0
    for rank, (p, i) in enumerate(present):
        running = max(running, min(1.0, (m - rank) * p))  # monotone in the sorted order
        out[i] = running
    return out


def holm_families(comparisons: list) -> list:
    """*comparisons* (dicts of paired comparisons) with ``p_value_holm`` and ``holm_family``:
    :func:`holm_adjust` over the comparisons that share the primary pipeline and the
    metric (one family each)."""
    families = {}
    for i, c in enumerate(comparisons):
        families.setdefault((c.get("pipeline"), c.get("metric")), []).append(i)
    out = [dict(c) for c in comparisons]
    for (pipeline, metric), members in families.items():
        adjusted = holm_adjust([real_or_none(out[i].get("p_value")) for i in members])
        tested = sum(p is not None for p in adjusted)
        for i, p in zip(members, adjusted):
            out[i]["p_value_holm"] = p
            out[i]["holm_family"] = (
                f"the comparisons of {pipeline} with the other pipelines on {metric} "
                f"({tested} with a p-value; Holm's step-down method, family-wise error rate)")
    return out


def real_or_none(x):
    """*x* as a float when it is a finite real number, else None (reports are read, not
    trusted: a hand-edited or truncated ``report.json`` must still render)."""
    if x is None or isinstance(x, (bool, str)):
        return None
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if np.isfinite(v) else None

"""The rating model of the synthetic data: per-video consensus, subject noise, response style.

:func:`simulate_ratings` draws the reported and the felt ratings of a synthetic
dataset from their own random streams (:func:`rating_parts`), so that the signals'
streams do not depend on them; :func:`latent` maps a rating to the [-1, 1] scale
that drives the signals.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .._utils.docs import fill_doc


class RatingDraw(NamedTuple):
    """Ratings of a synthetic dataset, ``(n_subjects, n_trials, n_scales)`` each.

    Attributes
    ----------
    reported : ndarray
        The ratings written to the files (the labels).
    felt : ndarray
        What drives the signals: the reported ratings without the subject's rating
        offset. Identical to *reported* when ``rating_bias=0``.
    """

    reported: np.ndarray
    felt: np.ndarray


@fill_doc
def simulate_ratings(seed, n_subjects: int, n_trials: int, *, low: float, high: float,
                     integer: bool, n_scales: int, exact_mid_fraction: float = 0.05,
                     rating_bias: float = 0.0) -> RatingDraw:
    """Ratings with a per-video consensus, and optional per-subject rating priors.

    Every video (trial) gets a consensus rating on each scale; each subject rates it
    with individual noise, so subjects
    mostly agree, as in the real datasets. A fraction of the continuous ratings is
    set to exactly the scale midpoint, which is where threshold bugs (``<= 5`` versus
    ``< 5``) show.

    Parameters
    ----------
    %(synthetic_seed)s
    n_subjects, n_trials, n_scales : int
        Shape of the result.
    low, high : float
        Rating scale.
    integer : bool
        Round to whole numbers (DREAMER) instead of two decimals (DEAP).
    exact_mid_fraction : float
        Share of continuous ratings set to the midpoint.
    rating_bias : float
        SD of a per-subject, per-scale offset of the reported ratings, as a fraction
        of ``high - low`` (0.25 on DEAP's 1-9 scale: SD 2 points), so that some
        subjects rate most videos high and others most low. It is a response style:
        it shifts the reported ratings only, not the signals. ``0`` (no offsets)
        gives exactly the ratings of earlier versions.

    Returns
    -------
    RatingDraw
        ``reported`` and ``felt`` ratings.
    """
    parts = rating_parts(seed, n_subjects, n_trials, low=low, high=high, integer=integer,
                         n_scales=n_scales, exact_mid_fraction=exact_mid_fraction,
                         rating_bias=rating_bias)
    felt = parts.consensus[None] + parts.noise
    reported = parts.finish(felt + parts.offset)
    return RatingDraw(reported, parts.finish(felt, mid=False) if rating_bias
                      else reported.copy())


class RatingParts(NamedTuple):
    """The random parts of a rating draw (see :func:`rating_parts`).

    Attributes
    ----------
    consensus : ndarray, shape (n_trials, n_scales)
        Each video's consensus rating.
    noise : ndarray, shape (n_subjects, n_trials, n_scales)
        Each subject's individual deviation from it.
    offset : ndarray | float
        The subject's response style, ``(n_subjects, 1, n_scales)``, or 0.
    mid : ndarray of bool | None
        Which continuous ratings are set to the scale midpoint (None for integers).
    low, high : float
        The scale.
    integer : bool
        Whether ratings are whole numbers.
    """

    consensus: np.ndarray
    noise: np.ndarray
    offset: np.ndarray | float
    mid: np.ndarray | None
    low: float
    high: float
    integer: bool

    def finish(self, r: np.ndarray, *, mid: bool = True) -> np.ndarray:
        """Ratings *r* clipped to the scale, rounded, and (with *mid*) the midpoint quirk."""
        r = np.clip(r, self.low, self.high)
        r = np.rint(r) if self.integer else np.round(r, 2)
        if mid and self.mid is not None:
            r[self.mid] = (self.low + self.high) / 2.0
        return r


def rating_parts(seed, n_subjects: int, n_trials: int, *, low: float, high: float,
                 integer: bool, n_scales: int, exact_mid_fraction: float = 0.05,
                 rating_bias: float = 0.0) -> RatingParts:
    """The random draws behind :func:`simulate_ratings`, from their own streams.

    Parameters are those of :func:`simulate_ratings`.

    Returns
    -------
    RatingParts
    """
    rng = np.random.default_rng([int(seed), 7919])
    consensus = rng.uniform(low, high, (n_trials, n_scales))
    noise = rng.normal(0.0, (high - low) / 6.0, (n_subjects, n_trials, n_scales))
    offset = 0.0
    if rating_bias:  # its own stream: the ratings without offsets stay as they were
        offset = np.random.default_rng([int(seed), 7919, 1]).normal(
            0.0, rating_bias * (high - low), (n_subjects, 1, n_scales))
    mid = None if integer else rng.random((n_subjects, n_trials, n_scales)) < exact_mid_fraction
    return RatingParts(consensus, noise, offset, mid, low, high, integer)


def draw_ratings(seed, n_subjects: int, n_trials: int, *, low: float, high: float,
                 integer: bool, n_scales: int, exact_mid_fraction: float = 0.05,
                 rating_bias: float = 0.0):
    """Reported ratings ``(n_subjects, n_trials, n_scales)``; see :func:`simulate_ratings`."""
    return simulate_ratings(seed, n_subjects, n_trials, low=low, high=high, integer=integer,
                            n_scales=n_scales, exact_mid_fraction=exact_mid_fraction,
                            rating_bias=rating_bias).reported


def latent(rating, low: float, high: float) -> float:
    """Map a rating on ``[low, high]`` to ``[-1, 1]``."""
    return float(2.0 * (rating - low) / (high - low) - 1.0)

"""Numerical helpers of the tests: two training runs that differ only in rounding, and
margins around chance derived from the binomial error of the test units."""

from __future__ import annotations

#: Parameters whose gradient is zero in exact arithmetic: the bias of the Linear layer
#: that feeds the CM-CA head's batch norm (the norm subtracts any constant shift). Their
#: gradient is rounding noise, which Adam scales to steps of +-lr whatever its size, so
#: two runs that round differently move them differently; the norm's running mean
#: follows them. Nothing downstream depends on them (the feature checks show it).
GRADIENT_FREE = ("cmca_head.linear.bias", "cmca_head.norm.running_mean")


def assert_trained_alike(a: dict, b: dict, initial: dict, *, share: float = 1e-2) -> None:
    """State dicts *a* and *b*, trained from *initial*, differ by at most *share* of how
    far training moved each tensor (gradient-free tensors aside).

    Adam turns rounding-level gradient differences on near-zero gradients (units a ReLU
    shuts) into whole steps, so an element-wise tolerance would fail on a handful of
    elements; against the distance travelled the runs agree closely.
    """
    assert list(a) == list(b)
    for name in a:
        if name in GRADIENT_FREE or not a[name].is_floating_point():
            continue
        moved = (b[name] - initial[name]).norm()
        assert (a[name] - b[name]).norm() <= share * moved + 1e-6, name


# ------------------------------------------------------------- chance-level margins
#: One-sided level of "above chance": a model that learned nothing passes with
#: probability at most this.
ABOVE_ALPHA = 0.05
#: Two-sided level of "at chance": a model at chance fails with probability at most this.
BAND_ALPHA = 0.001


def chance_sd(n_units: int, chance: float = 0.5) -> float:
    """Standard error of an accuracy at *chance* over *n_units* independent units.

    An accuracy over n independent units is a binomial proportion: sd = sqrt(p(1-p)/n)
    at p = chance. A balanced accuracy of two balanced classes has the same sd (each
    recall has variance 1/4 / (n/2), their mean a quarter of the sum), and so has a mean
    of per-subject scores over n units in all. *n_units* counts independent units
    (trials, whose windows share a label and a recording), not windows, which makes the
    margins conservative.
    """
    if n_units < 1:
        raise ValueError(f"n_units must be at least 1, got {n_units}")
    return (chance * (1 - chance) / n_units) ** 0.5


def above_chance(n_units: int, chance: float = 0.5, alpha: float = ABOVE_ALPHA) -> float:
    """The score a model at chance exceeds with probability *alpha* (normal approximation
    to the binomial: chance + z_{1-alpha} sd; chance + 1.64 sd at the default)."""
    from scipy.stats import norm

    return chance + float(norm.ppf(1 - alpha)) * chance_sd(n_units, chance)


def chance_band(n_units: int, chance: float = 0.5, alpha: float = BAND_ALPHA):
    """(low, high): a model at chance scores outside with probability *alpha*
    (chance -+ z_{1-alpha/2} sd; -+3.29 sd at the default)."""
    from scipy.stats import norm

    half = float(norm.ppf(1 - alpha / 2)) * chance_sd(n_units, chance)
    return chance - half, chance + half

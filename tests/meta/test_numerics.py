"""The chance-level margins of tests/_numerics.py against a seeded null."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import balanced_accuracy_score

from _numerics import above_chance, chance_band, chance_sd


def test_margins_follow_the_balanced_accuracy_of_random_predictions():
    # 4000 predictors that ignore the input, on 48 balanced units
    rng = np.random.default_rng(0)
    y = np.arange(48) % 2
    pred = rng.integers(0, 2, (4000, 48))
    null = ((pred[:, y == 1] == 1).mean(1) + (pred[:, y == 0] == 0).mean(1)) / 2
    assert null[0] == balanced_accuracy_score(y, pred[0])
    assert null.std() == pytest.approx(chance_sd(48), rel=0.05)
    # P(null > bound) <= alpha, up to the Monte-Carlo error of 4000 draws
    assert np.mean(null > above_chance(48)) <= 0.05 + 3 * (0.05 * 0.95 / 4000) ** 0.5
    low, high = chance_band(48)
    assert np.mean((null <= low) | (null >= high)) <= 0.001 + 3 * (0.001 / 4000) ** 0.5
    assert low < 0.5 < above_chance(48) < high
    assert chance_sd(12 * 24) < chance_sd(48)
    with pytest.raises(ValueError, match="n_units must be at least 1"):
        chance_sd(0)

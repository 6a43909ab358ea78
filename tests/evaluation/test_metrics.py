"""Fold-level metrics, trial votes, chance levels and permutation p-values."""

import numpy as np
import pytest
from sklearn.metrics import f1_score

from physiosync.evaluation.metrics import (chance_level, classification_metrics, headline_metric,
                                permutation_pvalue, subject_level_score,
                                subject_permutation_test, subject_scores, trial_vote)


def test_binary_metrics_against_hand_computation():
    y = np.array([1, 1, 1, 0, 0, 0, 0, 0])
    p = np.array([1, 0, 1, 0, 0, 1, 0, 0])
    proba = np.column_stack([1 - p * 0.8, p * 0.8])
    m = classification_metrics(y, p, proba)
    assert m["accuracy"] == pytest.approx(6 / 8)
    assert m["balanced_accuracy"] == pytest.approx((2 / 3 + 4 / 5) / 2)
    assert m["f1"] == pytest.approx(2 * (2 / 3) * (2 / 3) / (4 / 3))  # precision = recall = 2/3
    assert m["macro_f1"] == pytest.approx(f1_score(y, p, average="macro"))
    assert 0.5 < m["roc_auc"] <= 1


def test_one_class_test_fold_has_nan_auc_and_no_warning_noise():
    m = classification_metrics([1, 1, 1], [1, 0, 1], np.full((3, 2), 0.5))
    assert np.isnan(m["roc_auc"]) and m["accuracy"] == pytest.approx(2 / 3)


def test_four_class_metrics():
    y = np.array([0, 1, 2, 3, 3, 2])
    p = np.array([0, 1, 2, 3, 2, 2])
    m = classification_metrics(y, p, n_classes=4)
    assert set(m) == {"accuracy", "balanced_accuracy", "macro_f1", "weighted_f1"}
    assert m["accuracy"] == pytest.approx(5 / 6)


def test_trial_vote_averages_probabilities_per_trial():
    groups = np.array([[1, 0], [1, 0], [1, 0], [2, 0], [2, 0], [1, 5]])
    proba = np.array([[0.9, 0.1], [0.4, 0.6], [0.4, 0.6], [0.2, 0.8], [0.3, 0.7], [0.1, 0.9]])
    y = np.array([0, 0, 0, 1, 1, 1])
    yt, pt, mean = trial_vote(y, proba, groups)
    assert list(yt) == [0, 1, 1] and list(pt) == [0, 1, 1]
    np.testing.assert_allclose(mean[0], [0.5666667, 0.4333333], rtol=1e-6)


def test_chance_level():
    assert chance_level([0, 0, 1]) == pytest.approx(2 / 3)
    assert np.isnan(chance_level([]))


def test_permutation_pvalue_separates_signal_from_noise():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    assert permutation_pvalue(y, y, n_permutations=200) < 0.01
    assert permutation_pvalue(y, rng.integers(0, 2, 200), n_permutations=200) > 0.05
    # With trial groups, whole trials are permuted: labels stay constant within trials.
    groups = np.repeat(np.arange(20), 10)
    y_trial = np.repeat(rng.integers(0, 2, 20), 10)
    p = permutation_pvalue(y_trial, y_trial, groups=groups, n_permutations=200)
    assert p < 0.05


def test_headline_metric():
    assert headline_metric(2) == "balanced_accuracy"
    assert headline_metric(4) == "macro_f1"


def test_subject_level_score_is_the_mean_of_per_subject_sklearn_scores():
    from sklearn.metrics import balanced_accuracy_score

    rng = np.random.default_rng(1)
    subjects = np.repeat([3, 7, 9], [30, 50, 20])  # unequal sizes: each subject counts once
    y, p = rng.integers(0, 2, 100), rng.integers(0, 2, 100)
    expected = [balanced_accuracy_score(y[subjects == s], p[subjects == s]) for s in (3, 7, 9)]
    assert subject_level_score(y, p, subjects) == pytest.approx(np.mean(expected))
    assert subject_scores(y, p, subjects) == pytest.approx(dict(zip((3, 7, 9), expected)))
    y4, p4 = rng.integers(0, 4, 100), rng.integers(0, 4, 100)
    f1 = [f1_score(y4[subjects == s], p4[subjects == s], average="macro") for s in (3, 7, 9)]
    assert subject_level_score(y4, p4, subjects, n_classes=4) == pytest.approx(np.mean(f1))
    assert subject_level_score(y4, p4, subjects, n_classes=4, metric="accuracy") == \
        pytest.approx(np.mean([np.mean(y4[subjects == s] == p4[subjects == s])
                               for s in (3, 7, 9)]))


def test_subject_with_one_class_is_skipped():
    y = np.array([0, 1, 0, 1, 1, 1])
    p = np.array([0, 1, 1, 1, 1, 1])
    subjects = np.array([1, 1, 1, 1, 2, 2])  # subject 2 has only class 1: undefined
    assert np.isnan(subject_scores(y, p, subjects)[2])
    assert subject_level_score(y, p, subjects) == pytest.approx((1 / 2 + 1) / 2)
    assert np.isnan(subject_level_score([1, 1], [1, 1], [0, 0]))


def test_subject_metrics_reject_bad_input():
    with pytest.raises(ValueError, match="metric='roc_auc'"):
        subject_level_score([0, 1], [0, 1], [0, 0], metric="roc_auc")
    with pytest.raises(ValueError, match="0..1"):
        subject_level_score([0, 2], [0, 1], [0, 0])
    with pytest.raises(ValueError, match="different labels"):
        subject_permutation_test([0, 1], [0, 1], [0, 0], [5, 5], n_permutations=5)


def test_subject_permutation_test_matches_exact_enumeration():
    # One subject, four single-window units, two of each class: 4! labellings, 6 distinct.
    y, p = np.array([0, 0, 1, 1]), np.array([0, 0, 1, 1])
    res = subject_permutation_test(y, p, np.zeros(4), np.arange(4), n_permutations=3000)
    assert res["metric"] == "subject.balanced_accuracy" and res["value"] == 1.0
    assert res["permutations"] == 3000 and "within each subject" in res["null"]
    # P(null >= 1) = 1/6 for a perfect score.
    assert res["p_value"] == pytest.approx(1 / 6, abs=0.03)
    assert res["null_mean"] == pytest.approx(0.5, abs=0.03) and res["null_q95"] == 1.0

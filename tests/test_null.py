"""Permutation nulls that respect subjects: calibration, power, units, and the refit null."""

import json

import numpy as np
import pytest
from scipy.stats import kstest

import physiosync.evaluation.runner as cv
import physiosync.evaluation.metrics as metrics
from physiosync.config import ConfigError, load_config
from physiosync.synthetic import make_deap
from physiosync.experiment import run_experiment
from physiosync.evaluation.metrics import permutation_pvalue, subject_permutation_test
from physiosync.evaluation.protocols import make_folds

N_SEEDS = 300


def _subjects_with_priors(seed, predictor="majority", n_splits=5):
    """Windows of 8-16 subjects whose labels follow each subject's prior only.

    Every subject has 12-40 units (trials) of 3-6 windows; its units are labelled 1
    with probability 0.2 or 0.8 (drawn per subject). ``predictor="majority"``: a
    classifier with no signal that predicts, for each test unit of a k-fold over the
    subject's units, the majority class of the subject's training units (what a model
    learns from the prior alone). ``predictor="prior"``: every window is predicted 1
    with the subject's prior probability, independently of the labels.
    """
    rng = np.random.default_rng(seed)
    y, pred, subjects, units = [], [], [], []
    for s in range(rng.integers(8, 17)):
        n_units = rng.integers(12, 41)
        rate = rng.choice([0.2, 0.8])
        labels = (rng.random(n_units) < rate).astype(int)
        n_windows = rng.integers(3, 7, n_units)
        if predictor == "majority":
            fold = rng.permutation(n_units) % n_splits
            unit_pred = np.empty(n_units, dtype=int)
            for k in range(n_splits):
                share = labels[fold != k].mean()
                unit_pred[fold == k] = rng.integers(0, 2) if share == 0.5 else int(share > 0.5)
            window_pred = np.repeat(unit_pred, n_windows)
        else:
            window_pred = (rng.random(n_windows.sum()) < rate).astype(int)
        y.append(np.repeat(labels, n_windows))
        pred.append(window_pred)
        subjects.append(np.full(n_windows.sum(), s))
        units.append(np.repeat(np.arange(n_units), n_windows))
    return tuple(np.concatenate(a) for a in (y, pred, subjects, units))


def _p(y, pred, subjects, units, seed, n_permutations=199):
    return subject_permutation_test(y, pred, subjects, np.column_stack([subjects, units]),
                                    n_permutations=n_permutations, seed=seed)["p_value"]


def test_prior_only_classifier_is_not_significant_but_was_under_the_pooled_null():
    p_new = np.array([_p(*_subjects_with_priors(i), seed=i) for i in range(N_SEEDS)])
    # A valid test: P(p <= a) <= a (up to Monte-Carlo error) at every level. The
    # majority-of-training-folds predictor is anti-correlated with held-out labels, so
    # its p-values sit above uniform (conservative), never below.
    assert np.mean(p_new < 0.05) <= 0.10
    for a in (0.1, 0.25, 0.5):
        assert np.mean(p_new <= a) <= a + 0.05, (a, np.mean(p_new <= a))
    # The old test permuted labels between the units of all subjects and scored the
    # pooled window balanced accuracy: it calls the same predictor significant.
    p_old = np.array([
        permutation_pvalue(y, pred, groups=np.column_stack([s, u]), n_permutations=99, seed=i)
        for i, (y, pred, s, u) in ((i, _subjects_with_priors(i)) for i in range(30))])
    assert np.mean(p_old < 0.05) >= 0.5, p_old


def test_p_values_are_uniform_for_a_classifier_independent_of_the_labels():
    p = np.array([_p(*_subjects_with_priors(i, "prior"), seed=i) for i in range(N_SEEDS)])
    assert np.mean(p < 0.05) <= 0.10
    assert kstest(p, "uniform").pvalue > 0.01
    assert 0.35 <= np.median(p) <= 0.65


def test_a_real_within_subject_effect_gives_a_small_p():
    y, _, subjects, units = _subjects_with_priors(0)
    rng = np.random.default_rng(1)
    # Each unit's windows are predicted correctly with probability 0.7.
    pred = np.where(rng.random(len(y)) < 0.7, y, 1 - y)
    res = subject_permutation_test(y, pred, subjects, units, n_permutations=999, seed=0)
    assert res["p_value"] < 0.01 and res["value"] > res["null_q95"]
    assert res["null_mean"] == pytest.approx(0.5, abs=0.02)


def test_units_not_windows_are_permuted_and_only_within_subjects(monkeypatch):
    # One subject, two trials of 50 windows, predicted perfectly. Permuting the two
    # trials swaps their labels half of the time (p about 0.5); permuting windows would
    # almost never reproduce a perfect score (p about 1/(n+1)).
    y = np.repeat([0, 1], 50)
    res = subject_permutation_test(y, y, np.zeros(100), np.repeat([0, 1], 50),
                                   n_permutations=400, seed=0)
    assert 0.4 < res["p_value"] < 0.6
    # Each permutation keeps every subject's label counts (a metric spy).
    seen = []
    original = metrics._scores_from_labels

    def spy(labels, unit_subject, *args):
        seen.append((np.atleast_2d(labels).copy(), unit_subject.copy()))
        return original(labels, unit_subject, *args)

    monkeypatch.setattr(metrics, "_scores_from_labels", spy)
    y, pred, subjects, units = _subjects_with_priors(3)
    subject_permutation_test(y, pred, subjects, units, n_permutations=50, seed=0)
    (true_labels, unit_subject), perms = seen[0], seen[1:]
    assert sum(len(p) for p, _ in perms) == 50
    for s in np.unique(unit_subject):
        ones = true_labels[0, unit_subject == s].sum()
        for labels, _ in perms:
            assert np.all(labels[:, unit_subject == s].sum(1) == ones)
    assert any(not np.array_equal(labels[0], true_labels[0]) for labels, _ in perms)


def test_vectorised_null_is_fast_enough_to_run_in_every_report():
    y, pred, subjects, units = _subjects_with_priors(5)
    assert len(y) > 1000
    res = subject_permutation_test(y, pred, subjects, units, n_permutations=1000, seed=0)
    assert res["permutations"] == 1000 and 1 / 1001 <= res["p_value"] <= 1


def test_permute_training_labels_keeps_test_labels_and_shares_windows(strong_deap_slots):
    data = strong_deap_slots
    table = data.description
    units = table[["subject", "trial"]].to_numpy()
    fold = make_folds(units, "within-trial-kfold", n_splits=2, labels=table["label"].to_numpy(),
                      seed=0)[0]
    perm = cv.permute_training_labels(data, fold, seed=3)
    assert perm.x is data.x and perm.valid is data.valid  # windows are not copied
    assert perm.labels is not data.labels

    def labels_of(d, part):
        rows = d.locate(part)
        return rows, d.labels[rows[:, 0], rows[:, 1]]

    rows, true_test = labels_of(data, fold.test)
    assert np.array_equal(perm.labels[rows[:, 0], rows[:, 1]], true_test)
    changed = False
    for part in (fold.train, fold.val):
        rows, before = labels_of(data, part)
        after = perm.labels[rows[:, 0], rows[:, 1]]
        for s in np.unique(rows[:, 0]):
            assert sorted(after[rows[:, 0] == s]) == sorted(before[rows[:, 0] == s])
        changed |= not np.array_equal(after, before)
    assert changed
    legacy = make_folds(units, "legacy-segment", n_splits=2, seed=0, n_windows=2)[0]
    with pytest.raises(cv.PhysioSyncError, match="legacy-segment"):
        cv.permute_training_labels(data, legacy, seed=0)


def test_permutation_refit_is_validated():
    assert load_config({}).protocol.permutation_refit == 0
    assert load_config({"protocol": {"permutation_refit": 3}}).protocol.permutation_refit == 3
    with pytest.raises(ConfigError, match=r"'protocol.permutation_refit' must be >= 0"):
        load_config({"protocol": {"permutation_refit": -1}})
    with pytest.raises(ConfigError, match="legacy-segment"):
        load_config({"protocol": {"name": "legacy-segment", "permutation_refit": 2}})


def _refit_config(root, tmp_path, pipeline, n_refit, *extra):
    return load_config("tiny", ["protocol.n_splits=2", "protocol.one_class=constant",
                                f"pipelines=[{pipeline}]",
                                f"protocol.permutation_refit={n_refit}", *extra],
                       data={"root": str(root), "cache_dir": str(tmp_path / "cache")})


@pytest.mark.integration
def test_refit_null_of_the_band_power_baseline_end_to_end_and_resumed(tmp_path, monkeypatch):
    root = make_deap(tmp_path / "deap", n_subjects=4, n_trials=16, seconds=10, effect=3.0,
                     seed=11)
    cfg = _refit_config(root, tmp_path, "bandpower", 5, "protocol.pooled=true")
    out = tmp_path / "run"
    report = run_experiment(cfg, out, verbose=False, html=False)["report"]
    null = report["pipelines"]["bandpower"]["refit_null"]
    assert null["metric"] == "subject.balanced_accuracy" and null["n"] == 5
    assert len(null["null"]) == 5 and 1 / 6 <= null["p_value"] <= 1
    assert "shuffled within that subject" in null["definition"]
    # Strong effect: the true labels beat every refit on permuted labels.
    assert null["observed"] > max(null["null"]) and null["p_value"] == pytest.approx(1 / 6)
    assert np.mean(null["null"]) < 0.75
    # Same folds, true test labels.
    main = {p.name: json.loads(p.read_text()) for p in (out / "folds" / "bandpower").glob(
        "fold_*.json")}
    refits = sorted((out / "folds" / "bandpower" / "refit_null").glob("r*/fold_*.json"))
    assert len(refits) == 5 * len(main) == 10
    for path in refits:
        rec, ref = json.loads(path.read_text()), main[path.name]
        for key in ("train", "val", "test", "pretrain"):
            assert rec[key] == ref[key]
        assert [p["y"] for p in rec["predictions"]] == [p["y"] for p in ref["predictions"]]
    saved = json.loads((out / "report.json").read_text())
    assert saved["pipelines"]["bandpower"]["refit_null"]["null"] == pytest.approx(null["null"])

    # Resume: nothing is refitted; a lost refit is recomputed alone, identically.
    calls = []
    original = cv.run_fold_bandpower
    monkeypatch.setattr(cv, "run_fold_bandpower",
                        lambda *a, **k: calls.append(1) or original(*a, **k))
    again = run_experiment(cfg, out, verbose=False, html=False)["report"]
    assert calls == [] and again["pipelines"]["bandpower"]["refit_null"] == null
    (out / "folds" / "bandpower" / "refit_null" / "r003" / "fold_01.json").unlink()
    again = run_experiment(cfg, out, verbose=False, html=False)["report"]
    assert len(calls) == 1 and again["pipelines"]["bandpower"]["refit_null"] == null


def test_refit_null_of_physiosync_pretrains_once_per_fold(tmp_path, monkeypatch):
    root = make_deap(tmp_path / "deap", n_subjects=3, n_trials=6, seconds=10, effect=3.0,
                     seed=11)
    import physiosync.training.pretrain as pretrain_module

    calls = []
    original = pretrain_module.pretrain
    monkeypatch.setattr(pretrain_module, "pretrain",
                        lambda *a, **k: calls.append(1) or original(*a, **k))
    cfg = _refit_config(root, tmp_path, "physiosync", 2)
    report = run_experiment(cfg, tmp_path / "run", verbose=False, html=False)["report"]
    null = report["pipelines"]["physiosync"]["refit_null"]
    assert null["n"] == 2 and len(null["null"]) == 2 and 1 / 3 <= null["p_value"] <= 1
    assert all(0 <= v <= 1 for v in null["null"])
    # 2 folds x (long, short) encoders for the main run, and once more per fold for
    # both refits together (not once per refit).
    assert len(calls) == 2 * 2 + 2 * 2

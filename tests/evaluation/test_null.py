"""Permutation nulls and paired tests that match the design: calibration, power, units.

Rejection rates are checked against the Monte-Carlo error of the number of simulated
runs (:func:`rejection_bound`, :func:`coverage_bounds`, from
``benchmarks/inference_calibration.py``, whose simulators these tests share), for every
protocol family: within-subject, ``loso``, ``subject-kfold``,
``subject-stimulus-kfold`` and ``legacy-segment``, and for the paired tests.
"""

import json

import numpy as np
import pandas as pd
import pytest
from scipy.stats import kstest
from _benchmarks import load_benchmark
from _numerics import above_chance

import physiosync.evaluation.runner as cv
import physiosync.evaluation.subject_level as subject_level
from physiosync.config import ConfigError, load_config
from physiosync.exceptions import PhysioSyncError
from physiosync.synthetic import make_deap
from physiosync.experiment import run_experiment
from physiosync.evaluation.metrics import (margin_preserving_tables, permutation_pvalue,
                                           subject_permutation_test)
from physiosync.evaluation.protocols import make_folds
from physiosync.evaluation.statistics import sign_flip_test
from physiosync.evaluation.summary import build_report, permutation_nulls
from physiosync.reporting.report import report_markdown, report_text

calib = load_benchmark("inference_calibration")
rejection_bound, coverage_bounds = calib.rejection_bound, calib.coverage_bounds

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


def test_within_subject_protocols_use_the_within_subject_null():
    assert permutation_nulls("within-trial-kfold") == ("within-subject",)
    assert permutation_nulls("within-loto") == ("within-subject",)


def test_prior_only_classifier_is_not_significant_but_was_under_the_pooled_null():
    p_new = np.array([_p(*_subjects_with_priors(i), seed=i) for i in range(N_SEEDS)])
    # A valid test: P(p <= a) <= a (up to Monte-Carlo error) at every level. The
    # majority-of-training-folds predictor is anti-correlated with held-out labels, so
    # its p-values sit above uniform (conservative), never below.
    for a in (0.05, 0.1, 0.25, 0.5):
        assert np.mean(p_new <= a) <= rejection_bound(N_SEEDS, a), (a, np.mean(p_new <= a))
    # The old test permuted labels between the units of all subjects and scored the
    # pooled window balanced accuracy: it calls the same predictor significant.
    p_old = np.array([
        permutation_pvalue(y, pred, groups=np.column_stack([s, u]), n_permutations=99, seed=i)
        for i, (y, pred, s, u) in ((i, _subjects_with_priors(i)) for i in range(30))])
    assert np.mean(p_old < 0.05) >= 0.5, p_old


def test_p_values_are_uniform_for_a_classifier_independent_of_the_labels():
    p = np.array([_p(*_subjects_with_priors(i, "prior"), seed=i) for i in range(N_SEEDS)])
    assert np.mean(p <= 0.05) <= rejection_bound(N_SEEDS)
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
    original = subject_level._scores_from_labels

    def spy(labels, unit_subject, *args):
        seen.append((np.atleast_2d(labels).copy(), unit_subject.copy()))
        return original(labels, unit_subject, *args)

    monkeypatch.setattr(subject_level, "_scores_from_labels", spy)
    y, pred, subjects, units = _subjects_with_priors(3)
    subject_permutation_test(y, pred, subjects, units, n_permutations=50, seed=0)
    (true_labels, unit_subject), perms = seen[0], seen[1:]
    assert sum(len(p) for p, _ in perms) == 50
    for s in np.unique(unit_subject):
        ones = true_labels[0, unit_subject == s].sum()
        for labels, _ in perms:
            assert np.all(labels[:, unit_subject == s].sum(1) == ones)
    assert any(not np.array_equal(labels[0], true_labels[0]) for labels, _ in perms)


def test_the_null_makes_no_python_call_per_permutation():
    """Why every report can afford 1000 permutations, as a count rather than a timing:
    the permutations are drawn and scored in array passes (up to 2e6 labels each), so
    the Python calls (functions and builtins, counted by a profiler hook) do not grow
    with their number; time then grows only with the array work."""
    import sys
    from collections import Counter

    y, pred, subjects, units = _subjects_with_priors(5)
    assert len(y) > 1000

    def calls(n_permutations):
        seen = Counter()
        sys.setprofile(lambda frame, event, arg: seen.update(
            [event] if event in ("call", "c_call") else []))
        try:
            res = subject_permutation_test(y, pred, subjects, units,
                                           n_permutations=n_permutations, seed=0)
        finally:
            sys.setprofile(None)
        assert res["permutations"] == n_permutations
        assert 1 / (n_permutations + 1) <= res["p_value"] <= 1
        return seen

    few, many = calls(10), calls(1000)
    assert few["call"] > 0 and many == few


def test_rejection_bounds_follow_the_monte_carlo_error():
    # 300 runs at 0.05: 15 expected; a valid test exceeds 28 with probability <= 0.001
    assert rejection_bound(300) == pytest.approx(28 / 300)
    assert rejection_bound(2000) < 0.07 < rejection_bound(100)
    lo, hi = coverage_bounds(200)
    assert lo < 0.95 < hi and hi - lo < 0.11


# --------------------------------------------------------------------------- cross-subject
def test_cross_subject_protocols_lead_with_the_margins_null():
    for protocol in ("loso", "subject-kfold"):
        assert permutation_nulls(protocol) == ("subject-stimulus-margins", "within-subject")
    assert permutation_nulls("subject-stimulus-kfold") == ("within-subject",)
    assert permutation_nulls("legacy-segment") == ()


@pytest.mark.parametrize("n_splits,n_classes", [(None, 2), (4, 2), (None, 4)],
                         ids=["loso", "subject-kfold", "loso-four-classes"])
def test_a_model_that_knows_only_the_stimulus_is_not_significant(n_splits, n_classes):
    # Labels follow each subject's habit and each video's consensus, no emotion; the
    # model predicts the other (training) subjects' majority label of the video.
    n = 100 if n_classes == 2 else 60
    rng = np.random.default_rng(n_classes + (n_splits or 0))
    labels, _ = calib.label_tables(rng, n, 10, 12, n_classes=n_classes)
    pred = calib.stimulus_prior_predictions(labels, rng, n_splits=n_splits)
    p = {null: np.array([calib.table_p_value(labels[r], pred[r], null=null, seed=r,
                                             n_classes=n_classes) for r in range(n)])
         for null in ("subject-stimulus-margins", "within-subject")}
    assert np.mean(p["subject-stimulus-margins"] <= 0.05) <= rejection_bound(n)
    # the within-subject null calls the stimulus significant (the shortcut it misses)
    assert np.mean(p["within-subject"] <= 0.05) > 0.8


def test_margins_null_is_exact_for_a_predictor_of_subject_and_stimulus_effects():
    # P(high) = logistic(a_s + b_t): given the margins, every table is equally likely,
    # so a prediction from the true a_s + b_t has uniform (or larger) p-values.
    n = 200
    rng = np.random.default_rng(7)
    a, b = rng.normal(0, 1, (n, 10, 1)), rng.normal(0, 1.5, (n, 1, 12))
    labels = (rng.random((n, 10, 12)) < 1 / (1 + np.exp(-(a + b)))).astype(int)
    pred = (a + b > 0).astype(int)
    p = np.array([calib.table_p_value(labels[r], pred[r], null="subject-stimulus-margins",
                                      seed=r) for r in range(n)])
    for alpha in (0.05, 0.2, 0.5):
        assert np.mean(p <= alpha) <= rejection_bound(n, alpha)


def test_margins_null_keeps_its_power_on_a_real_effect():
    # the labels also follow a per-cell emotion, which the model reads through noise
    res = calib.null_rejections(60, effect=1.0, predictor="emotion", seed=4)
    assert res["subject-stimulus-margins"] >= 0.6 and res["within-subject"] >= 0.6


def test_subject_stimulus_kfold_keeps_the_within_subject_null_calibrated():
    # Held-out subjects on held-out stimuli: the model can know a test subject's habit
    # (from the signal), never the stimulus's training labels. It predicts each cell at
    # random with the subject's habit, independently of the labels given the subject.
    n = N_SEEDS
    rng = np.random.default_rng(3)
    labels, _ = calib.label_tables(rng, n, 8, 8)
    habit = labels.mean(2, keepdims=True)
    pred = (rng.random(labels.shape) < habit).astype(int)
    p = np.array([calib.table_p_value(labels[r], pred[r], null="within-subject", seed=r)
                  for r in range(n)])
    assert np.mean(p <= 0.05) <= rejection_bound(n)


def test_margin_preserving_tables_keep_margins_and_missing_cells():
    rng = np.random.default_rng(0)
    for k in (2, 4):
        table = rng.integers(0, k, (7, 9))
        table[0, 3] = table[5, 7] = -1
        draws = margin_preserving_tables(table, 300, n_classes=k, seed=1)
        for c in range(-1, k):
            assert np.array_equal((draws == c).sum(2), np.broadcast_to((table == c).sum(1),
                                                                       (300, 7)))
            assert np.array_equal((draws == c).sum(1), np.broadcast_to((table == c).sum(0),
                                                                       (300, 9)))
        assert len({d.tobytes() for d in draws}) > 250  # the chains move
    # seeded; a subject with two units of one stimulus is refused
    assert np.array_equal(margin_preserving_tables(table, 5, seed=2),
                          margin_preserving_tables(table, 5, seed=2))
    with pytest.raises(ValueError, match="one unit per"):
        subject_permutation_test([0, 1, 1], [0, 1, 1], [0, 0, 0], [0, 1, 2],
                                 null="subject-stimulus-margins", stimuli=[0, 0, 1])
    with pytest.raises(ValueError, match="needs the stimulus"):
        subject_permutation_test([0, 1], [0, 1], [0, 0], [0, 1],
                                 null="subject-stimulus-margins")


@pytest.mark.integration
def test_loso_report_does_not_call_the_stimulus_prior_significant(tmp_path):
    # No emotion signal, stimulus-locked synchrony on: labels follow each video's
    # consensus, which the stimulus prior reads from the other subjects under loso.
    root = make_deap(tmp_path / "deap", n_subjects=8, n_trials=12, seconds=6, effect=0.0,
                     synchrony=1.0, seed=3)
    cfg = load_config("tiny", ["protocol.name=loso", "pipelines=[stimulus-prior]",
                               "protocol.permutations=199", "protocol.one_class=constant"],
                      data={"root": str(root), "cache_dir": str(tmp_path / "cache")})
    out = tmp_path / "run"
    report = run_experiment(cfg, out, verbose=False, html=False)["report"]
    part = report["pipelines"]["stimulus-prior"]
    # The stimulus alone scores above chance (measured 0.75): one-sided 5 % bound from
    # the binomial error of the 8 subjects x 12 test trials (tests/_numerics.py), 0.58.
    assert part["headline"]["mean"] > above_chance(8 * 12)
    assert part["p_value"]["null_name"] == "subject-stimulus-margins"
    assert part["p_value"]["p_value"] > 0.05 and report["headline"]["p_value"] > 0.05
    assert set(part["p_values"]) == {"subject-stimulus-margins", "within-subject"}
    assert part["model"]["shared_across_subjects"]  # the other subjects' labels
    md = (out / "report.md").read_text()
    assert "subject-stimulus-margins permutation p" in md
    assert "every stimulus's count of each class" in md


# --------------------------------------------------------------------------- legacy
def _legacy_records():
    """Two legacy-segment folds: the windows of every unit split between them."""
    rng = np.random.default_rng(0)
    train_labels = {"per_subject_models": False, "pooled": [36, 36]}
    records = []
    for fold in range(2):
        rows = [{"subject": s, "trial": t, "window": w, "y": t % 2,
                 "p0": float(p == 0), "p1": float(p == 1), "one_class": False}
                for s in (1, 2, 3) for t in range(6) for w in (2 * fold, 2 * fold + 1)
                for p in [t % 2 if rng.random() < 0.9 else 1 - t % 2]]
        pred = pd.DataFrame(rows)
        records.append({"fold": fold, "train": [], "val": [], "test": [],
                        "n_windows": {"train": 36, "test": 36},
                        "metrics": cv.fold_metrics(pred, 2, train_labels),
                        "train_labels": train_labels,
                        "predictions": pred.to_dict(orient="records")})
    return records


def test_legacy_segment_reports_no_permutation_p_value_anywhere(tmp_path):
    from physiosync.reporting.html import render_html
    from physiosync.reporting.report import write_report

    report = build_report({"physiosync": _legacy_records()}, protocol="legacy-segment",
                          target="valence", permutations=99)
    part = report["pipelines"]["physiosync"]
    assert "p_value" not in part and report["headline"]["p_value"] is None
    assert "no permutation p-value" in part["p_value_note"]
    # an older legacy report that holds one does not show it either
    old = json.loads(json.dumps(report))
    old["pipelines"]["physiosync"].pop("p_value_note")
    old["pipelines"]["physiosync"]["p_value"] = {
        "metric": "subject.balanced_accuracy", "value": 0.9, "p_value": 0.001,
        "permutations": 999, "null_mean": 0.5, "null_q95": 0.55, "null": "old"}
    old["headline"]["p_value"] = old["pipelines"]["physiosync"]["headline"]["p_value"] = 0.001
    for rep in (report, old):
        for text in (report_markdown(rep), report_text(rep), render_html(rep)):
            assert "permutation p =" not in text and "0.001" not in text
            assert "no permutation p-value" in text
    write_report(old, tmp_path, html=False)
    saved = json.loads((tmp_path / "report.json").read_text())
    assert saved["headline"]["p_value"] is None
    assert "p_value" not in saved["pipelines"]["physiosync"]


# --------------------------------------------------------------------------- paired tests
def test_fold_pairing_keeps_false_positives_at_nominal_with_a_shared_seed_effect():
    # 12 subjects share each of 5 folds' pre-training: a fold effect of SD 0.02
    n = 400
    subj, fold = calib.shared_fold_effect(np.random.default_rng(0), n, tau=0.02)
    by_subject = np.mean([sign_flip_test(d)["p_value"] <= 0.05 for d in subj])
    by_fold = np.mean([calib.fold_t_p(d) <= 0.05 for d in fold])
    assert by_subject > rejection_bound(n)  # pairing by subject is anti-conservative
    assert by_fold <= rejection_bound(n)


@pytest.mark.parametrize("k", [5, 10, 32])
def test_corrected_t_is_calibrated_over_correlated_folds(k):
    n = 400
    d = calib.correlated_folds(np.random.default_rng(k), n, k)
    rate = np.mean([calib.fold_t_p(x) <= 0.05 for x in d])
    assert rate <= rejection_bound(n)
    if k >= 10:  # the sign-flip test ignores the correlation
        flips = np.mean([sign_flip_test(x, n_resamples=500, seed=i)["p_value"] <= 0.05
                         for i, x in enumerate(d)])
        assert flips > rejection_bound(n)


# --------------------------------------------------------------------------- intervals
@pytest.mark.parametrize("kind", ["normal", "skewed", "accuracy"])
def test_studentized_bootstrap_interval_covers_at_4_to_32_subjects(kind):
    n_runs = 200
    lo, hi = coverage_bounds(n_runs)
    for n in (4, 8, 16, 32):
        cov = calib.coverage(kind, n, n_runs, "bootstrap-t", seed=n)
        assert lo <= cov <= hi, (kind, n, cov)
    if kind == "normal":  # the percentile interval did not
        assert calib.coverage(kind, 4, n_runs, "percentile", seed=4) < lo


def test_corrected_t_interval_covers_over_correlated_folds():
    lo, hi = coverage_bounds(400)
    for k in (5, 10, 32):
        cov = calib.fold_coverage(k, 400, seed=k)
        assert lo <= cov["corrected t"] <= hi and cov["percentile"] < lo, (k, cov)


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
    with pytest.raises(PhysioSyncError, match="legacy-segment"):
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
                                f"pipelines=[{pipeline}]", "pretrain.held_out=unused",
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
    # The refits sit at chance. Their unit is the refit, not the trial: one permutation
    # moves every training label of a refit together (measured: 0.33-0.71 for 5 refits,
    # sd 0.17, far above the 0.06 of 64 independent trials; mean 0.55, observed 0.91).
    # A score in [0, 1] with mean 1/2 has sd at most 1/2, so the mean of 5 independent
    # refits exceeds 0.5 + 1.64 * 0.5 / sqrt(5) = 0.87 with probability at most 5 %
    # (normal approximation; chance_sd(5) is that 0.5 / sqrt(5)).
    assert np.mean(null["null"]) < above_chance(5), null["null"]
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
    original = cv.run_fold_with
    monkeypatch.setattr(cv, "run_fold_with",
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


def test_legacy_segment_comparisons_keep_their_differences_but_show_no_test(tmp_path):
    from physiosync.reporting.html import render_html
    from physiosync.reporting.report import write_report

    records = _legacy_records()
    other = json.loads(json.dumps(records))
    for r in other:  # a second pipeline: the same predictions, one unit flipped
        r["predictions"][0]["p0"], r["predictions"][0]["p1"] = (
            r["predictions"][0]["p1"], r["predictions"][0]["p0"])
    report = build_report({"physiosync": records, "bandpower": other},
                          protocol="legacy-segment", target="valence")
    assert report["comparisons"][0]["differences"]
    write_report(report, tmp_path, html=False)
    (saved,) = json.loads((tmp_path / "report.json").read_text())["comparisons"]
    assert saved["p_value"] is None and saved["corrected_t"] is None
    assert saved["differences"] and "no paired p-value" in saved["p_value_note"]
    for text in (report_markdown(report), report_text(report), render_html(report)):
        assert "no paired p-value under legacy-segment" in text

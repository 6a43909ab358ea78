"""Chance levels per metric, the headline, one-class fallbacks and paired comparisons."""

import itertools
import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats as scipy_stats

from physiosync.evaluation.runner import fold_metrics
from physiosync.evaluation.metrics import (chance_levels, chance_levels_from_counts, model_chance_levels,
                                subject_level_score)
from physiosync.evaluation.summary import (build_report, merge_reports, paired_comparison,
                                          summarize_pipeline)
from physiosync.reporting.report import report_markdown, report_rows, report_text, write_report
from physiosync.evaluation.statistics import (bootstrap_ci, cohens_dz, corrected_resampled_ttest,
                              min_sign_flip_p, sign_flip_test)


# --------------------------------------------------------------------------- chance levels
def test_chance_levels_binary_by_hand():
    # test: 2 low, 3 high; training: 3 low, 1 high -> the training majority is low
    c = chance_levels([0, 0, 1, 1, 1], [0, 0, 0, 1])
    assert c["accuracy"] == pytest.approx(2 / 5)  # not the test majority (3/5)
    assert c["balanced_accuracy"] == 0.5 and c["roc_auc"] == 0.5
    # F1 of high: stratified 2pq/(p+q) = 2*.6*.25/.85 = 0.353 < always high 2p/(1+p) = 0.75
    assert c["f1"] == pytest.approx(0.75)
    # macro F1: stratified (2*.6*.25/.85 + 2*.4*.75/1.15) / 2 = 0.4373 beats the best
    # constant (always high: 0.75 / 2 = 0.375)
    assert c["macro_f1"] == pytest.approx((2 * .6 * .25 / .85 + 2 * .4 * .75 / 1.15) / 2)
    # balanced classes: the stratified predictor (0.5) beats any constant (1/3)
    assert chance_levels([0, 1] * 5, [0, 1])["macro_f1"] == pytest.approx(0.5)
    # ties between training classes: the mean over the tied classes
    assert chance_levels([0, 0, 1], [0, 1])["accuracy"] == pytest.approx(0.5)
    # without training labels the test labels stand in (the old test-majority chance)
    assert chance_levels([0, 0, 1], None)["accuracy"] == pytest.approx(2 / 3)


def test_chance_levels_four_classes_and_errors():
    c = chance_levels([0, 1, 2, 3, 3], [0, 0, 1, 2, 3], n_classes=4)
    assert set(c) == {"accuracy", "balanced_accuracy", "macro_f1", "weighted_f1"}
    assert c["balanced_accuracy"] == 0.25 and c["accuracy"] == pytest.approx(1 / 5)
    with pytest.raises(ValueError, match="labels must be in 0..1"):
        chance_levels([0, 2], [0, 1])
    assert np.isnan(chance_levels([], [0, 1])["accuracy"])


def test_stratified_f1_chance_matches_a_simulated_stratified_predictor():
    from sklearn.metrics import f1_score

    rng = np.random.default_rng(0)
    y_test = (rng.random(4000) < 0.3).astype(int)
    y_train = (rng.random(500) < 0.6).astype(int)
    q = y_train.mean()
    draws = [f1_score(y_test, (rng.random(y_test.size) < q).astype(int), average="macro")
             for _ in range(50)]
    strat = chance_levels_from_counts(np.bincount(y_test)[None], np.bincount(y_train)[None])
    assert strat["macro_f1"] == pytest.approx(np.mean(draws), abs=0.01)


def test_accuracy_chance_is_the_training_majority_of_each_subjects_model():
    y = [0, 0, 1, 0, 1, 1, 1]
    subjects = [1, 1, 1, 2, 2, 2, 2]
    per_subject = {"per_subject_models": True, "pooled": [5, 4],
                   "subjects": {"1": [4, 1], "2": [1, 3]}}
    # subject 1's model predicts low (2 of 3 right), subject 2's high (3 of 4 right)
    assert model_chance_levels(y, subjects, per_subject)["accuracy"] == pytest.approx(5 / 7)
    pooled = {**per_subject, "per_subject_models": False}  # one model: low for everyone
    assert model_chance_levels(y, subjects, pooled)["accuracy"] == pytest.approx(3 / 7)
    # several folds, each with its own training labels
    folds = [0, 0, 0, 1, 1, 1, 1]
    by_fold = {0: per_subject, 1: {**per_subject, "subjects": {"2": [3, 1]}}}
    assert model_chance_levels(y, subjects, by_fold, folds=folds)["accuracy"] == \
        pytest.approx((2 + 1) / 7)
    # per-subject metrics average over the classes a subject has
    one = model_chance_levels([1, 1], [1, 1], per_subject, average="active")
    assert np.isnan(one["balanced_accuracy"]) and one["accuracy"] == 0


# --------------------------------------------------------------------------- statistics
def test_sign_flip_exact_p_values():
    r = sign_flip_test([0.1, 0.2, 0.3, 0.4])
    assert r["p_value"] == pytest.approx(0.125) and r["min_p"] == pytest.approx(0.125)
    assert r["exact"] and r["n_patterns"] == 16
    # equal magnitudes: |sum of 4 random signs| >= 2 in 10 of 16 patterns
    assert sign_flip_test([1, 1, 1, -1])["p_value"] == pytest.approx(10 / 16)
    assert sign_flip_test([0, 0, 0])["p_value"] == 1.0
    assert min_sign_flip_p(8) == pytest.approx(0.0078125)
    # zero differences flip to themselves: n = 5 with two zeros can reach 2 / 2**3 only
    assert min_sign_flip_p(5, n_zeros=2) == pytest.approx(0.25)
    r = sign_flip_test([0.1, 0.2, 0.3, 0.0, 0.0])
    assert r["n_zeros"] == 2 and r["min_p"] == pytest.approx(0.25)
    assert r["p_value"] == pytest.approx(0.25)  # the smallest it can be, not 0.0625
    # against brute force
    d = np.array([0.3, -0.1, 0.25, 0.05, -0.2, 0.4])
    hits = [abs(np.dot(s, d)) >= abs(d.sum()) - 1e-12
            for s in itertools.product((1, -1), repeat=d.size)]
    assert sign_flip_test(d)["p_value"] == pytest.approx(np.mean(hits))


def test_sign_flip_monte_carlo_above_the_exact_limit():
    d = np.linspace(0.01, 0.2, 20)
    r = sign_flip_test(d, n_resamples=2000, seed=3)
    assert not r["exact"] and r["p_value"] == pytest.approx(1 / 2001)
    assert r["min_p"] == pytest.approx(1 / 2001)
    noise = np.random.default_rng(0).normal(0, 1, 20)
    a, b = (sign_flip_test(noise, n_resamples=2000, seed=3) for _ in range(2))
    assert a == b and 0.05 < a["p_value"] < 1


def test_corrected_resampled_ttest_by_hand():
    d = [0.1, 0.2, 0.05, 0.15]
    r = corrected_resampled_ttest(d, n_train=30, n_test=10)
    var = np.var(d, ddof=1)  # 0.0125 / 3
    t = 0.125 / np.sqrt((1 / 4 + 10 / 30) * var)
    assert r["t"] == pytest.approx(t) and r["t"] == pytest.approx(2.5355, abs=1e-4)
    assert r["df"] == 3 and r["p_value"] == pytest.approx(2 * scipy_stats.t.sf(t, 3))
    # the correction makes it more conservative than the paired t-test
    assert r["p_value"] > scipy_stats.ttest_1samp(d, 0).pvalue
    # per-fold sizes: the mean ratio
    assert corrected_resampled_ttest(d, [30, 30, 20, 20], [10, 10, 10, 10])[
        "test_train_ratio"] == pytest.approx((1 / 3 + 1 / 2) / 2)
    assert corrected_resampled_ttest([0.1], 30, 10)["p_value"] is None
    assert corrected_resampled_ttest([0.1, 0.1], 30, 10)["t"] is None


def test_bootstrap_ci_and_cohens_dz():
    d = np.array([0.05, -0.02, 0.04, 0.10, 0.01, 0.03])
    low, high = bootstrap_ci(d, seed=1)
    assert low < d.mean() < high and high - low < 0.12
    assert bootstrap_ci(d, seed=1) == (low, high)  # seeded
    assert bootstrap_ci(d, seed=2) != (low, high)
    assert bootstrap_ci([0.1]) == (None, None)
    with pytest.raises(ValueError, match="confidence"):
        bootstrap_ci(d, confidence=95)
    assert cohens_dz(d) == pytest.approx(d.mean() / d.std(ddof=1))
    assert cohens_dz([0.1, 0.1]) is None


# --------------------------------------------------------------------------- reports
def _record(fold, rows, train_labels, n_classes=2):
    pred = pd.DataFrame(rows)
    units = pred[["subject", "trial"]].drop_duplicates().to_numpy().tolist()
    return {"fold": fold, "train": [[9, 9]] * 3, "val": [], "test": units,
            "metrics": fold_metrics(pred, n_classes, train_labels),
            "train_labels": train_labels, "predictions": pred.to_dict(orient="records")}


def _rows(subject, trials, labels, preds, *, windows=2, n_classes=2, one_class=False):
    out = []
    for t, y, p in zip(trials, labels, preds):
        proba = np.full(n_classes, 0.0)
        proba[p] = 1.0
        out += [{"subject": subject, "trial": t, "window": w, "y": y,
                 **{f"p{c}": proba[c] for c in range(n_classes)}, "one_class": one_class}
                for w in range(windows)]
    return out


def _study(*, one_class_subject=None, accuracy_shift=0, n_subjects=4):
    """Two folds of 4 trials per subject; within-subject models."""
    rng = np.random.default_rng(accuracy_shift)
    records = []
    for fold in range(2):
        rows, tl = [], {"per_subject_models": True, "pooled": [8, 8], "subjects": {}}
        for s in range(1, n_subjects + 1):
            labels = [0, 1, 0, 1]
            preds = [y if rng.random() < 0.8 else 1 - y for y in labels]
            flagged = s == one_class_subject and fold == 0
            if flagged:
                preds = [0, 0, 0, 0]
            rows += _rows(s, [4 * fold + t for t in range(4)], labels, preds,
                          one_class=flagged)
            tl["subjects"][str(s)] = [4, 0] if flagged else [2, 2]
        records.append(_record(fold, rows, tl))
    return records


def test_one_class_fallbacks_are_counted_and_summarised_without():
    part = summarize_pipeline(_study(one_class_subject=2), protocol="within-trial-kfold",
                              target="valence")
    oc = part["one_class"]
    assert oc["windows"] == 8 and oc["of_windows"] == 64 and oc["units"] == 4
    assert oc["subjects"] == [2] and oc["folds"] == [0]
    assert part["folds"][0]["one_class_windows"] == 8 and part["folds"][1][
        "one_class_windows"] == 0
    rest = pd.concat([pd.DataFrame(r["predictions"]) for r in _study(one_class_subject=2)])
    rest = rest[~rest["one_class"]]
    pred = rest[["p0", "p1"]].to_numpy().argmax(1)
    expected = subject_level_score(rest["y"], pred, rest["subject"])
    without = oc["summary_without"]["subject.balanced_accuracy"]
    assert without["mean"] == pytest.approx(expected) and without["n"] == 4
    text = report_markdown(build_report(_study(one_class_subject=2),
                                        protocol="within-trial-kfold", target="valence"))
    assert "8 of 64 test windows (4 units; 1 subject; fold 0)" in text
    # every test window a fallback (DREAMER with the tiny preset once flagged 42 of 42)
    everything = build_report(_study(one_class_subject=1, n_subjects=1)[:1],
                              protocol="within-trial-kfold", target="valence")
    oc = everything["pipelines"]["physiosync"]["one_class"]
    assert oc["windows"] == oc["of_windows"] == 8
    assert oc["summary_without"]["subject.balanced_accuracy"]["n"] == 0
    assert "8 of 8 test windows" in report_text(everything)
    assert "no other test window remains" in report_text(everything)
    clean = summarize_pipeline(_study(), protocol="within-trial-kfold", target="valence")
    assert clean["one_class"]["windows"] == 0 and clean["one_class"]["summary_without"] is None


def test_headline_summary_and_results_csv(tmp_path):
    report = build_report(_study(), protocol="loso", target="valence", per_subject_models=False,
                          permutations=99)
    head = report["headline"]
    assert head["metric"] == "subject.balanced_accuracy" and head["n"] == 4
    assert head["chance"] == 0.5 and 0 < head["p_value"] <= 1
    assert list(report["summary"])[0] == "subject.balanced_accuracy"  # the report leads with it
    part = report["pipelines"]["physiosync"]
    assert part["p_value"]["metric"] == "subject.balanced_accuracy"
    assert part["p_value"]["value"] == pytest.approx(head["mean"])
    assert part["folds"][0]["metrics"]["subject"]["balanced_accuracy"] is not None
    rows = report_rows(report)
    assert list(rows.columns) == ["pipeline", "fold", "target", "level", "metric", "value",
                                  "chance", "row", "subject"]
    rows = rows[rows.row == "fold"]
    assert "chance" not in set(rows["metric"]) and set(rows["level"]) == {
        "subject", "window", "trial"}
    bal = rows[(rows.level == "window") & (rows.metric == "balanced_accuracy")]
    assert (bal["chance"] == 0.5).all()
    # strict JSON, NaN as null
    paths = write_report(report, tmp_path, html=False)
    doc = json.loads(paths["json"].read_text(), parse_constant=pytest.fail)
    assert doc["per_subject_models"] is False and doc["caveat"] == report["caveat"]
    assert paths["csv"].read_text().splitlines()[0].endswith(",value,chance,row,subject")


def test_fold_files_without_training_labels_fall_back_on_the_test_majority():
    records = _study()
    for r in records:
        del r["train_labels"]
        r["metrics"] = {"window": r["metrics"]["window"], "trial": r["metrics"]["trial"],
                        "chance_window": 0.5, "chance_trial": 0.5}  # the old layout
    part = summarize_pipeline(records, protocol="within-trial-kfold", target="valence")
    assert {f["chance_source"] for f in part["folds"]} == {"test labels"}
    assert part["summary"]["window.accuracy"]["chance"] == pytest.approx(0.5)


def test_four_class_balanced_accuracy_sits_beside_one_quarter_not_the_majority():
    # DREAMER-like: 5 of 8 test trials are class 0, the training majority too
    rows = []
    for s in (1, 2, 3):
        rows += _rows(s, range(8), [0, 0, 0, 0, 0, 1, 2, 3], [0, 0, 0, 1, 2, 1, 2, 0],
                      n_classes=4)
    tl = {"per_subject_models": False, "pooled": [10, 3, 3, 2], "subjects": {}}
    report = build_report([_record(0, rows, tl, n_classes=4), _record(1, rows, tl, 4)],
                          protocol="subject-kfold", target="four", n_classes=4)
    assert report["headline"]["metric"] == "subject.macro_f1"
    s = report["summary"]
    assert s["window.balanced_accuracy"]["chance"] == pytest.approx(0.25)
    assert s["window.accuracy"]["chance"] == pytest.approx(0.625)  # the training majority
    md = report_markdown(report)
    bal = (3 / 5 + 1 + 1 + 0) / 4
    assert (f"| pooled window balanced accuracy (`window.balanced_accuracy`) | {bal:.3f} ± "
            "0.000 | 0.250 |") in md
    fold = report["folds"][0]
    assert fold["chance"]["window"]["balanced_accuracy"] == 0.25
    # with two of four classes in the test labels, always predicting one scores 1/2
    assert chance_levels([0, 0, 0, 1], [0, 1], n_classes=4)["balanced_accuracy"] == 0.5
    text = report_text(report)
    assert "headline: per-subject macro F1" in text
    row = next(line for line in text.splitlines() if line.startswith("physiosync"))
    assert row.split()[1:5] == [f"{report['headline']['mean']:.3f}", "±", "0.000",
                                f"{report['headline']['chance']:.3f}"]


def _part(values_by_subject, folds=None):
    per_subject = {s: {"balanced_accuracy": v} for s, v in values_by_subject.items()}
    folds = folds or []
    return {"per_subject": per_subject, "folds": folds}


def _fold(i, value, n_train=30, n_test=10):
    return {"fold": i, "train": [[0, 0]] * n_train, "val": [], "test": [[0, 0]] * n_test,
            "metrics": {"subject": {"balanced_accuracy": value},
                        "window": {"balanced_accuracy": value}}}


def test_paired_comparison_by_subject_reports_min_p_effect_size_and_warning():
    a = _part({1: 0.7, 2: 0.65, 3: 0.8, 4: 0.6})
    b = _part({1: 0.6, 2: 0.6, 3: 0.7, 4: 0.55})
    c = paired_comparison({"a": a, "b": b}, "a", "b", per_subject=True)
    assert c["level"] == "subject" and c["n"] == 4 and c["metric"] == "subject.balanced_accuracy"
    assert c["p_value"] == pytest.approx(0.125) and c["min_p"] == pytest.approx(0.125)
    assert "0.125 > 0.05" in c["warning"] and "sign-flip" in c["test"]
    assert c["ci95"][0] <= c["mean"] <= c["ci95"][1] and c["corrected_t"] is None
    assert c["cohens_dz"] == pytest.approx(np.mean([.1, .05, .1, .05]) /
                                           np.std([.1, .05, .1, .05], ddof=1))
    many = {s: 0.6 + 0.01 * s for s in range(1, 9)}
    c8 = paired_comparison({"a": _part(many), "b": _part({s: 0.5 for s in many})}, "a", "b")
    assert c8["min_p"] == pytest.approx(2 / 256) and c8["warning"] is None


def test_paired_comparison_by_fold_adds_the_corrected_t_test():
    a = {"per_subject": {}, "folds": [_fold(i, v) for i, v in enumerate([.7, .72, .65, .7])]}
    b = {"per_subject": {}, "folds": [_fold(i, v) for i, v in enumerate([.6, .6, .6, .62])]}
    c = paired_comparison({"a": a, "b": b}, "a", "b", per_subject=False)
    assert c["level"] == "fold" and c["n"] == 4 and "mean over the fold's" in c["value"]
    d = [0.1, 0.12, 0.05, 0.08]
    expected = corrected_resampled_ttest(d, 30, 10)
    assert c["corrected_t"]["p_value"] == pytest.approx(expected["p_value"])
    assert c["corrected_t"]["sizes"] == "units"
    # By fold the corrected t-test is the primary test and its interval has the same
    # variance; the sign-flip test (min p 0.125 with 4 folds) is kept for reference.
    assert c["primary_test"] == "corrected-t" and "Nadeau and Bengio" in c["test"]
    assert c["p_value"] == pytest.approx(expected["p_value"]) and c["min_p"] is None
    assert c["ci95"] == pytest.approx(expected["ci"]) and c["warning"] is None
    assert c["sign_flip"]["p_value"] == pytest.approx(0.125)
    assert c["sign_flip"]["min_p"] == pytest.approx(0.125)
    assert "by fold" in c["pairing"]


def test_build_and_merge_pair_by_the_level_of_independence():
    runs = {"physiosync": _study(), "bandpower": _study(accuracy_shift=1)}
    by_subject = build_report(runs, protocol="within-trial-kfold", target="valence",
                              per_subject_models=True)
    assert by_subject["comparisons"][0]["level"] == "subject"
    pooled = build_report(runs, protocol="within-trial-kfold", target="valence",
                          per_subject_models=False)
    comp = pooled["comparisons"][0]
    assert comp["level"] == "fold" and comp["n"] == 2 and comp["corrected_t"] is not None
    flip = comp["sign_flip"]
    assert flip["min_p"] == pytest.approx(min_sign_flip_p(2, n_zeros=flip["n_zeros"]))
    assert flip["min_p"] >= 0.5
    assert "corrected-t p = " in report_text(pooled)
    assert "one model per fold serves" in report_text(pooled)
    # Per-subject models that share a fold's pre-training: subjects are not independent,
    # so the pairs are folds (the kind says so, or an older report's pre-training curves).
    shared = {"shared_across_subjects": "pre-trains one encoder per fold on all subjects' "
                                        "training trials"}
    rep = build_report(runs, protocol="within-trial-kfold", target="valence",
                       per_subject_models=True, models={"physiosync": shared,
                                                        "bandpower": {}})
    comp = rep["comparisons"][0]
    assert comp["level"] == "fold" and comp["primary_test"] == "corrected-t"
    assert "physiosync pre-trains one encoder per fold" in comp["pairing"]
    assert rep["pipelines"]["physiosync"]["model"] == shared
    for part in by_subject["pipelines"].values():
        part["curves"] = {"pretrain": {"long": [{"fold": 0, "step": [1], "loss": [1.0]}]}}
    again = paired_comparison(by_subject["pipelines"], "physiosync", "bandpower")
    assert again["level"] == "fold" and "pre-trains" in again["pairing"]
    # merging two saved runs keeps the pairing of the first
    one = json.loads(json.dumps(build_report({"physiosync": _study()}, protocol="loso",
                                             target="valence", per_subject_models=False)))
    two = json.loads(json.dumps(build_report({"bandpower": _study(accuracy_shift=1)},
                                             protocol="loso", target="valence",
                                             per_subject_models=False)))
    merged = merge_reports([one, two], names=["a", "b"])
    assert merged["comparisons"][0]["level"] == "fold"
    # reports written before the flag: inferred from the protocol
    for rep in (one, two):
        del rep["per_subject_models"]
    assert merge_reports([one, two])["comparisons"][0]["level"] == "fold"
    one["protocol"] = two["protocol"] = "within-trial-kfold"
    assert merge_reports([one, two])["comparisons"][0]["level"] == "subject"


def test_caveat_under_the_title_in_markdown_and_text(monkeypatch):
    import dataclasses

    from physiosync.evaluation import protocols

    monkeypatch.setitem(protocols.PROTOCOLS, "loso", dataclasses.replace(
        protocols.PROTOCOLS["loso"], caveat="CAVEAT: stimuli of the test subject."))
    report = build_report(_study(), protocol="loso", target="valence")
    assert report["caveat"] == "CAVEAT: stimuli of the test subject."
    md = report_markdown(report).splitlines()
    assert md[2] == "> **Caveat (loso):** CAVEAT: stimuli of the test subject."
    assert md[4].startswith("**Headline (physiosync):** per-subject balanced accuracy")
    assert report_text(report).splitlines()[0] == "CAVEAT: stimuli of the test subject."

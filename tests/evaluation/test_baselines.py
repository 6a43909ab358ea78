"""The band-power baseline learns the synthetic emotion effect on held-out stimuli."""

import numpy as np
import pytest
from sklearn.metrics import balanced_accuracy_score
from _numerics import above_chance, chance_band

from physiosync import PhysioSyncError
from physiosync.evaluation.baselines import BandPowerClassifier, band_powers
from physiosync.datasets import DEAP
from physiosync.synthetic import make_deap
from physiosync.preprocessing.cache import prepare
from physiosync.evaluation.protocols import make_folds
from physiosync.preprocessing.windows import make_windows


def test_band_powers_find_a_sinusoid():
    t = np.arange(640) / 128.0
    x = np.stack([np.sin(2 * np.pi * 10 * t), np.sin(2 * np.pi * 20 * t)])[None]
    f = band_powers(x, 128.0).reshape(2, 4)
    assert f[0].argmax() == 1 and f[1].argmax() == 2  # alpha, beta
    with pytest.raises(PhysioSyncError, match="no frequency bin"):
        band_powers(x, 128.0, bands=((70.0, 80.0),))


@pytest.mark.parametrize("effect,learned", [(3.0, True), (0.0, False)])
def test_strong_effect_is_learned_on_held_out_stimuli_and_null_is_not(tmp_path, effect, learned):
    root = make_deap(tmp_path / "d", n_subjects=4, n_trials=12, seconds=20, effect=effect, seed=5)
    prepared = prepare(DEAP(root), cache_dir=False)
    windows = make_windows(prepared, lengths=(5.0,))
    meta = windows.metadata(5.0)
    y = windows.labels(5.0, "valence")
    units = meta[["subject", "trial"]].drop_duplicates().to_numpy()
    scores = []
    for fold in make_folds(units, "within-trial-kfold", n_splits=3, seed=0):
        def rows(part):
            keys = set(map(tuple, part))
            return np.flatnonzero([k in keys for k in map(tuple, meta[["subject", "trial"]]
                                                          .to_numpy())])

        train, test = rows(np.concatenate([fold.train, fold.val])), rows(fold.test)
        x_train = {"eeg": windows.get("eeg", 5.0, train)}
        x_test = {"eeg": windows.get("eeg", 5.0, test)}
        if len(np.unique(y[train])) < 2 or len(np.unique(y[test])) < 2:
            continue
        clf = BandPowerClassifier(sfreq={"eeg": 128.0}).fit(x_train, y[train])
        scores.append(balanced_accuracy_score(y[test], clf.predict(x_test)))
    assert scores
    # margins from the binomial error of the 48 test units (tests/_numerics.py)
    if learned:
        assert np.mean(scores) > above_chance(len(units))
    else:
        low, high = chance_band(len(units))
        assert low < np.mean(scores) < high


# ---- differential-entropy baselines ----------------------------------------------------
from physiosync.evaluation.baselines import DEClassifier  # noqa: E402


def _power_windows(n=40, seed=0):
    """Two classes of noise windows; class 1 has more alpha power on channel 0."""
    rng = np.random.default_rng(seed)
    t = np.arange(640) / 128.0
    x = rng.normal(size=(n, 3, 640))
    y = np.arange(n) % 2
    x[y == 1, 0] += 2.0 * np.sin(2 * np.pi * 11 * t + rng.uniform(0, 6, ((y == 1).sum(), 1)))
    return {"eeg": x}, y


@pytest.mark.parametrize("estimator", ["lr", "svm"])
def test_de_classifier_learns_band_power_and_says_which_channel(estimator):
    X, y = _power_windows(seed=0)
    X_test, y_test = _power_windows(seed=1)
    clf = DEClassifier(sfreq={"eeg": 128.0}, estimator=estimator).fit(X, y)
    # 40 independent test windows: above chance by their binomial error (tests/_numerics.py)
    assert balanced_accuracy_score(y_test, clf.predict(X_test)) > above_chance(len(y_test))
    proba = clf.predict_proba(X_test)
    assert proba.shape == (len(y_test), 2) and np.allclose(proba.sum(1), 1)
    assert clf.selection_ == "fixed" and clf.layout_ == [("eeg", 3)]
    w = clf.channel_importance("eeg")
    if estimator == "lr":
        assert w.shape == (3,) and w.argmax() == 0 and np.isclose(w.sum(), 1)
    else:
        assert w is None
        # its probabilities' most probable class is the SVM's own prediction
        features = clf._features(X_test, None)[0]
        np.testing.assert_array_equal(clf.predict(X_test), clf.pipeline_.predict(features))


def test_de_svm_searches_its_grid_on_the_validation_windows_only():
    X, y = _power_windows(seed=0)
    X_val, y_val = _power_windows(n=20, seed=2)
    grid = {"C": [0.1, 1.0, 10.0], "gamma": [0.1, 1.0]}
    clf = DEClassifier(sfreq=128.0, estimator="svm", param_grid=grid)
    clf.fit(X["eeg"], y, X_val=X_val["eeg"], y_val=y_val)
    assert clf.selection_ == "validation" and len(clf.search_scores_) == 6
    assert clf.best_params_["C"] in grid["C"] and clf.best_params_["gamma"] in grid["gamma"]
    best = max(clf.search_scores_, key=lambda r: r["balanced_accuracy"])
    assert best["balanced_accuracy"] == max(r["balanced_accuracy"] for r in clf.search_scores_)
    # no validation windows: the defaults, and the estimator says so
    clf = DEClassifier(sfreq=128.0, estimator="svm", param_grid=grid, C=2.0).fit(X["eeg"], y)
    assert clf.selection_ == "default (no validation windows)"
    assert clf.best_params_ == {"C": 2.0, "gamma": 1.0}
    clf.fit(X["eeg"], y, X_val=X_val["eeg"][y_val == 0], y_val=y_val[y_val == 0])
    assert clf.selection_ == "default (validation windows of one class)"
    with pytest.raises(PhysioSyncError, match=r"param_grid keys \['gamma'\].*estimator='lr'"):
        DEClassifier(sfreq=128.0, param_grid={"gamma": [1.0]}).fit(
            X["eeg"], y, X_val=X_val["eeg"], y_val=y_val)


def test_de_classifier_smooths_within_trials_only_with_window_ids():
    X, y = _power_windows(seed=0)
    ids = np.column_stack([np.zeros(40, int), np.arange(40) // 4, np.arange(40) % 4])
    y = ids[:, 1] % 2  # one label per trial of 4 windows
    clf = DEClassifier(sfreq={"eeg": 128.0}, smoothing=3)
    with pytest.raises(PhysioSyncError, match="smoothing=3 needs window_ids"):
        clf.fit(X, y)
    with pytest.raises(PhysioSyncError, match="smoothing must be an integer >= 1.*got 0"):
        DEClassifier(smoothing=0).fit(X, y, window_ids=ids)
    clf.fit(X, y, window_ids=ids)
    # a test window's probability depends on its own trial's earlier windows only
    p = clf.predict_proba(X, window_ids=ids)
    X2 = {"eeg": X["eeg"].copy()}
    X2["eeg"][ids[:, 1] == 3] *= 5          # change trial 3
    X2["eeg"][(ids[:, 1] == 0) & (ids[:, 2] == 3)] *= 5   # and the last window of trial 0
    p2 = clf.predict_proba(X2, window_ids=ids)
    same = (ids[:, 1] != 3) & ~((ids[:, 1] == 0) & (ids[:, 2] == 3))
    np.testing.assert_array_equal(p2[same], p[same])
    assert not np.allclose(p2[~same], p[~same])


def _slot_data(tmp_path, effect, n_subjects=3, n_trials=6, seconds=10):
    from physiosync.training.sampling import SlotData

    root = make_deap(tmp_path / "d", n_subjects=n_subjects, n_trials=n_trials,
                     seconds=seconds, effect=effect, seed=5)
    windows = make_windows(prepare(DEAP(root), cache_dir=False), lengths=(5.0,))
    return SlotData.from_windows(windows, 5.0, target="valence")


@pytest.mark.parametrize("protocol", ["within-trial-kfold", "loso"])
def test_de_svm_grid_search_never_sees_a_test_window(tmp_path, monkeypatch, protocol):
    # Spy on every fit and predict of the scaler+SVM pipelines (the grid search's and the
    # final model's) and on the windows the classifier is given: no test window reaches
    # them before prediction, and the search scores on validation windows only.
    import sklearn.pipeline

    import physiosync.evaluation.runner as cv

    data = _slot_data(tmp_path, effect=3.0, n_trials=12)
    units = np.column_stack([np.repeat(data.subjects, len(data.trials)),
                             np.tile(data.trials, len(data.subjects))])
    labels = data.labels.reshape(-1)
    # validation units of both classes, so that the grid is searched
    fold = make_folds(units, protocol, n_splits=3, labels=labels, val_size=0.4, seed=0)[0]
    per_subject = protocol == "within-trial-kfold"  # loso: one pooled model
    seen = {"fit": [], "predict": [], "ids": []}
    orig_fit, orig_predict = sklearn.pipeline.Pipeline.fit, sklearn.pipeline.Pipeline.predict
    orig_de_fit, orig_de_proba = DEClassifier.fit, DEClassifier.predict_proba

    def spy_fit(self, X, y=None, **kw):
        seen["fit"].append(np.array(X))
        return orig_fit(self, X, y, **kw)

    def spy_predict(self, X, **kw):
        seen["predict"].append(np.array(X))
        return orig_predict(self, X, **kw)

    def spy_de_fit(self, X, y, X_val=None, y_val=None, window_ids=None, window_ids_val=None):
        seen["ids"].append(("train", window_ids))
        seen["ids"].append(("val", window_ids_val))
        return orig_de_fit(self, X, y, X_val, y_val, window_ids, window_ids_val)

    def spy_de_proba(self, X, window_ids=None):
        seen["ids"].append(("test", window_ids))
        return orig_de_proba(self, X, window_ids)

    spy_fit.__name__, spy_predict.__name__ = "fit", "predict"  # scorers look methods up by name
    monkeypatch.setattr(sklearn.pipeline.Pipeline, "fit", spy_fit)
    monkeypatch.setattr(sklearn.pipeline.Pipeline, "predict", spy_predict)
    monkeypatch.setattr(DEClassifier, "fit", spy_de_fit)
    monkeypatch.setattr(DEClassifier, "predict_proba", spy_de_proba)
    grid = {"C": [0.1, 1.0, 10.0], "gamma": [0.1, 1.0, 10.0]}
    model = cv.EstimatorRunner(
        lambda: DEClassifier(sfreq={"eeg": 128.0}, estimator="svm", param_grid=grid),
        modalities=("eeg",), validation="fit", window_ids=True)
    pred, details = cv.run_fold_with(data, fold, model=model, per_subject=per_subject,
                                     one_class="constant", verbose=False)
    # each model (one per subject, or the pooled one) records what it chose, and how
    chosen = details["model_selection"]
    models = sorted(set(data.units_of(cv.fold_cells(data, fold)[2])[:, 0])) if per_subject \
        else [None]
    assert [c["subject"] for c in chosen] == models
    assert all(c["params"]["C"] in grid["C"] for c in chosen)
    assert {c["selection"] for c in chosen} == {"validation"}

    train, val, test = cv.fold_cells(data, fold)

    def features(cells):
        x = data.gather("eeg", *map(torch_index, cells.T)).numpy()
        return DEClassifier(sfreq=128.0)._features(x, None)[0]

    f_train, f_val, f_test = features(train), features(val), features(test)

    def nearest(rows, ref):
        return np.min(np.linalg.norm(rows[:, None] - ref[None], axis=-1), axis=1)

    searched = sum(ids is not None for part, ids in seen["ids"] if part == "val")
    assert searched and len(seen["predict"]) == 9 * searched  # 9 combinations scored
    for rows in seen["fit"]:  # every fit sees training windows only
        assert np.all(nearest(rows, f_train) < 1e-9)
        assert np.all(nearest(rows, f_test) > 1e-6)
    for rows in seen["predict"]:  # the search scores validation windows only
        assert np.all(nearest(rows, f_val) < 1e-9)
        assert np.all(nearest(rows, f_test) > 1e-6)
    test_units = set(map(tuple, data.units_of(test)))
    by_part = {"train": [], "val": [], "test": []}
    for part, ids in seen["ids"]:
        if ids is not None:
            by_part[part] += [tuple(u) for u in ids[:, :2]]
    assert by_part["train"] and by_part["val"] and by_part["test"]
    assert not test_units & (set(by_part["train"]) | set(by_part["val"]))
    assert set(by_part["test"]) == test_units
    assert set(by_part["val"]) == set(map(tuple, data.units_of(val)))
    assert len(pred) == len(test)


def torch_index(column):
    import torch

    return torch.from_numpy(np.ascontiguousarray(column))


@pytest.mark.parametrize("effect", [0.0, 3.0])
@pytest.mark.parametrize("protocol", ["within-trial-kfold", "loso"])
def test_de_pipelines_learn_a_strong_effect_and_not_a_null_one(tmp_path, protocol, effect):
    # held-out videos (one pooled model: per-subject models of 8 training videos learn
    # little, band powers included) or held-out subjects
    from physiosync.config import load_config
    from physiosync.experiment import run_experiment

    root = make_deap(tmp_path / "d", n_subjects=4, n_trials=12, seconds=20, effect=effect,
                     seed=5)
    cfg = load_config("tiny", [f"data.root={root}", f"data.cache_dir={tmp_path / 'c'}",
                               "pipelines=[de-lr, de-svm]", f"protocol.name={protocol}",
                               "protocol.n_splits=3", "protocol.pooled=true",
                               "protocol.one_class=constant", "protocol.permutations=0"])
    report = run_experiment(cfg, tmp_path / "run", verbose=False, html=False)["report"]
    scores = {name: part["headline"]["mean"] for name, part in report["pipelines"].items()}
    # (measured: effect 3 gives 0.68-0.81, no effect 0.40-0.50); margins from the
    # binomial error of the 4 x 12 test trials (tests/_numerics.py)
    low, high = chance_band(4 * 12)
    for name in ("de-lr", "de-svm"):
        if effect:
            assert scores[name] > above_chance(4 * 12), scores
        else:
            assert low < scores[name] < high, scores
    lr, svm = report["pipelines"]["de-lr"], report["pipelines"]["de-svm"]
    assert lr["model"]["modalities"] == ["eeg"] and svm["model"]["modalities"] == ["eeg"]
    assert len(lr["channel_importance"]["values"]) == 32
    assert svm["channel_importance"] is None
    # the grid point each fold's SVM chose reaches the report, in every format
    from physiosync.reporting.report import report_markdown, report_text

    sel = svm["model_selection"]
    assert sel["fits"] == len(svm["folds"]) == sum(c["count"] for c in sel["chosen"])
    assert set(sel["chosen"][0]["params"]) == {"C", "gamma"}
    assert sum(sel["how"].values()) == sel["fits"]
    line = [ln for ln in report_text(report).splitlines() if "hyper-parameters (de-svm)" in ln]
    assert len(line) == 1 and "chosen on the validation windows in" in line[0], line
    assert "Hyper-parameters: chosen on the validation windows" in report_markdown(report)


def test_window_ids_reach_only_estimators_that_ask_and_smoothing_runs_in_a_fold(tmp_path):
    import physiosync.evaluation.runner as cv

    # other estimators' fold keys do not change
    assert "window_ids" not in cv.EstimatorRunner(DEClassifier).hyperparameters()
    assert cv.EstimatorRunner(DEClassifier, window_ids=True).hyperparameters()["window_ids"]
    with pytest.raises(PhysioSyncError, match="window_ids=True needs inputs='windows'"):
        cv.EstimatorRunner(DEClassifier, inputs="units", window_ids=True)
    data = _slot_data(tmp_path, effect=3.0)
    units = np.column_stack([np.repeat(data.subjects, len(data.trials)),
                             np.tile(data.trials, len(data.subjects))])
    fold = make_folds(units, "loso", seed=0)[0]
    proba = {}
    for width in (1, 2):
        model = cv.EstimatorRunner(
            lambda: DEClassifier(sfreq={"eeg": 128.0}, smoothing=width),
            modalities=("eeg",), window_ids=True)
        pred, _ = cv.run_fold_with(data, fold, model=model, per_subject=False, verbose=False)
        assert len(pred) == len(cv.fold_cells(data, fold)[2])
        proba[width] = pred[["p0", "p1"]].to_numpy()
    assert not np.allclose(proba[1], proba[2])  # the smoothed features reached the model


def test_de_options_change_only_runs_with_a_de_pipeline(tmp_path):
    from physiosync.config import load_config, used_config
    from physiosync.runfolder import run_fingerprint

    def fp(*overrides):
        return run_fingerprint(load_config("tiny", [f"data.root={tmp_path}", *overrides]))

    base = load_config("tiny", [f"data.root={tmp_path}"])
    assert "de" not in used_config(base)["baselines"]  # existing runs: same fingerprint
    assert fp("baselines.de.smoothing=5") == fp()
    assert fp("pipelines=[de-svm]", "baselines.de.svm_C=[1]") != fp("pipelines=[de-svm]")
    de = used_config(load_config("tiny", [f"data.root={tmp_path}", "pipelines=[de-lr]"]))
    assert list(de["baselines"]) == ["de"] and "pretrain" not in de

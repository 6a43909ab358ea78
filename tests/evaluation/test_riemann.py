"""The Riemannian tangent-space baseline (``riemann-lr``, optional extra ``riemann``)."""

import json

import numpy as np
import pytest
from sklearn.metrics import balanced_accuracy_score

from physiosync.config import ConfigError, PIPELINES, ignored_keys, load_config
from physiosync.evaluation import riemann
from physiosync.evaluation.pipelines import get_pipeline_kind
from physiosync.evaluation.riemann import TangentSpaceClassifier
from physiosync.exceptions import PhysioSyncError
from physiosync.experiment import run_experiment
from physiosync.synthetic import make_deap


def _correlated(n, seed, n_channels=4, n_times=256):
    """Windows whose class is in the channels' covariance only: class 1 couples channel 1
    to channel 0 at the same total power (so no channel's variance tells the classes)."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((2 * n, n_channels, n_times))
    X[n:, 1] = (X[n:, 0] + X[n:, 1]) / np.sqrt(2)
    return X, np.repeat([0, 1], n)


def test_tangent_space_classifier_reads_the_covariance():
    X, y = _correlated(30, 0)
    Xt, yt = _correlated(50, 1)
    clf = TangentSpaceClassifier().fit(X, y)
    assert clf.selection_ == "fixed" and clf.best_params_ == {"C": 1.0}
    # 100 test windows: chance would exceed 0.75 with probability < 1e-6
    assert balanced_accuracy_score(yt, clf.predict(Xt)) > 0.75
    np.testing.assert_allclose(clf.predict_proba(Xt).sum(1), 1.0)
    # a dict of modalities of one window length stacks their channels
    both = TangentSpaceClassifier().fit({"eeg": X[:, :2], "gsr": X[:, 2:]}, y)
    np.testing.assert_allclose(both.predict_proba({"eeg": Xt[:, :2], "gsr": Xt[:, 2:]}),
                               clf.predict_proba(Xt))


def test_C_is_chosen_on_the_validation_windows_only_when_they_can_choose():
    X, y = _correlated(20, 0)
    Xv, yv = _correlated(10, 2)
    grid = [0.001, 1.0, 100.0]
    clf = TangentSpaceClassifier(C=0.5, C_grid=grid).fit(X, y, X_val=Xv, y_val=yv)
    assert clf.selection_ == "validation" and clf.best_params_["C"] in grid
    assert [s["C"] for s in clf.search_scores_] == grid
    best = max(clf.search_scores_, key=lambda s: s["balanced_accuracy"])
    assert best["C"] == clf.best_params_["C"]
    # refitted on the training windows alone: the same model as a fixed C of that value
    fixed = TangentSpaceClassifier(C=clf.best_params_["C"]).fit(X, y)
    np.testing.assert_allclose(clf.predict_proba(Xv), fixed.predict_proba(Xv))
    none = TangentSpaceClassifier(C=0.5, C_grid=grid).fit(X, y)
    assert none.selection_ == "default (no validation windows)" and none.best_params_ == {
        "C": 0.5}
    one = TangentSpaceClassifier(C=0.5, C_grid=grid).fit(X, y, X_val=Xv[:5], y_val=yv[:5])
    assert one.selection_ == "default (validation windows of one class)"


def test_tangent_space_classifier_refuses_bad_windows():
    X, y = _correlated(5, 0)
    with pytest.raises(PhysioSyncError, match="different lengths"):
        TangentSpaceClassifier().fit({"eeg": X, "ecg": X[:, :, :128]}, y)
    with pytest.raises(PhysioSyncError, match=r"n_channels >= 2.*got shape \(10, 1, 256\)"):
        TangentSpaceClassifier().fit(X[:, :1], y)
    with pytest.raises(PhysioSyncError, match="10 windows and y 9 labels"):
        TangentSpaceClassifier().fit(X, y[:9])


def test_missing_pyriemann_gives_one_line(hide_package, study_root, tmp_path):
    hide_package("pyriemann")
    with pytest.raises(PhysioSyncError) as err:
        riemann.check_pyriemann()
    assert str(err.value) == ("the riemann-lr baseline needs pyRiemann: "
                              "pip install 'physiosync[riemann]'")
    cfg = load_config("tiny", [f"data.root={study_root}", f"data.cache_dir={tmp_path / 'c'}",
                               "pipelines=[bandpower,riemann-lr]", "protocol.n_splits=2",
                               "protocol.one_class=constant"])
    with pytest.raises(PhysioSyncError, match=r"^pipeline 'riemann-lr': the riemann-lr "
                                              r"baseline needs pyRiemann") as err:
        run_experiment(cfg, tmp_path / "run", verbose=False, html=False)
    assert "\n" not in str(err.value)
    assert not (tmp_path / "run" / "folds").exists()  # refused before any fold ran


def test_riemann_options_are_declared_validated_and_read_only_by_its_pipeline():
    assert PIPELINES["riemann-lr"]["kind"] == "riemann-lr"
    assert PIPELINES["riemann-lr"]["set"] == {"finetune.modalities": ["eeg"]}
    assert get_pipeline_kind("riemann-lr").validation == "fit"  # C chosen on validation
    cfg = load_config("tiny", ["pipelines=[riemann-lr]", "baselines.riemann.C_grid=[0.1, 1]"])
    assert cfg.baselines["riemann"] == {"estimator": "oas", "metric": "riemann", "C": 1.0,
                                        "C_grid": [0.1, 1.0]}
    assert not any(k.startswith("baselines.riemann") for k in ignored_keys(cfg))
    assert "baselines.riemann" in ignored_keys(load_config("tiny"))
    for bad, key in (("estimator=mle", "baselines.riemann.estimator"),
                     ("metric=wasserstein", "baselines.riemann.metric"),
                     ("C_grid=[]", "baselines.riemann.C_grid"),
                     ("C=0", "baselines.riemann.C")):
        with pytest.raises(ConfigError, match=key):
            load_config("tiny", [f"baselines.riemann.{bad}"])


def test_riemann_lr_refuses_modalities_of_two_window_lengths(dreamer_mat, tmp_path):
    cfg = load_config("tiny", ["data.name=dreamer", f"data.root={dreamer_mat}",
                               f"data.cache_dir={tmp_path / 'c'}", "data.long_seconds=2.5",
                               "pipelines=[{name: both, base: riemann-lr, "
                               "set: {finetune.modalities: [eeg, ecg]}}]",
                               "protocol.n_splits=2", "protocol.one_class=constant"])
    with pytest.raises(PhysioSyncError, match=r"^pipeline 'both': modalities eeg, ecg "
                                              "have windows of different lengths"):
        run_experiment(cfg, tmp_path / "run", verbose=False, html=False)


def _covariance_slots(n_subjects=3, n_trials=12, n_windows=4, seed=0, effect=True):
    """SlotData whose classes differ only in the coupling of two EEG channels.

    ``effect=False`` draws the same noise and labels and leaves the coupling out, so
    the negative control differs from the effect in nothing else."""
    from physiosync.training.sampling import SlotData

    rng = np.random.default_rng(seed)
    labels = np.tile(np.arange(n_trials) % 2, (n_subjects, 1)).astype(np.int64)
    x = rng.standard_normal((n_subjects, n_trials, n_windows, 4, 128)).astype(np.float32)
    if effect:
        hi = labels.astype(bool)
        x[hi, :, 1] = (x[hi, :, 0] + x[hi, :, 1]) / np.sqrt(2)
    valid = np.ones((n_subjects, n_trials, n_windows), dtype=bool)
    return SlotData({"eeg": x}, valid, range(1, n_subjects + 1), range(n_trials), labels=labels)


def _kind_balanced_accuracy(data):
    """Balanced accuracy of the riemann-lr kind over 3 within-trial folds of ``data``."""
    from conftest import kind_fold_kwargs
    from physiosync.evaluation.protocols import make_folds

    units = np.array([(s, t) for s in data.subjects for t in data.trials])
    kw = kind_fold_kwargs("riemann-lr", {"eeg": 128.0})
    y, pred = [], []
    for fold in make_folds(units, "within-trial-kfold", n_splits=3,
                           labels=data.labels.reshape(-1), val_size=0.25, seed=0):
        frame, details = kw["runner"](data, fold, model=kw["model"], per_subject=True,
                                      val_size=0.25)
        assert [d["selection"] for d in details["model_selection"]] == ["validation"] * 3
        y += frame["y"].tolist()
        pred += (frame["p1"] > frame["p0"]).astype(int).tolist()
    assert len(y) == 144
    return balanced_accuracy_score(y, pred)


def test_the_riemann_lr_kind_beats_chance_where_the_effect_is_in_the_covariance():
    # 144 test windows; chance is 0.5 with a binomial standard error of at most
    # 0.5 / sqrt(144) = 0.042: 0.75 is 6 standard errors above it
    assert _kind_balanced_accuracy(_covariance_slots()) > 0.75


def test_the_riemann_lr_kind_stays_at_chance_when_the_covariance_effect_is_off():
    """Negative control: the same noise, labels and folds without the coupling. Every
    window's noise is drawn on its own, so without the effect the 144 test windows are
    independent units; the band's upper end sits below the effect test's threshold."""
    from _numerics import chance_band

    low, high = chance_band(144)
    assert high < 0.75
    assert low < _kind_balanced_accuracy(_covariance_slots(effect=False)) < high


def test_riemann_lr_runs_a_study_on_synthetic_deap(tmp_path):
    """On the tiny synthetic DEAP the affect is in band-limited power (alpha asymmetry,
    beta/gamma), a small part of each broadband covariance; with 4 subjects and 8
    videos no baseline is reliably above chance here, so this checks the run itself."""
    root = make_deap(tmp_path / "deap", n_subjects=4, n_trials=8, seconds=10, effect=3.0,
                     seed=3, verbose=False)
    cfg = load_config("tiny", [f"data.root={root}", f"data.cache_dir={tmp_path / 'c'}",
                               "pipelines=[riemann-lr,stimulus-prior]",
                               "protocol.name=within-trial-kfold", "protocol.n_splits=2",
                               "protocol.one_class=constant"])
    report = run_experiment(cfg, tmp_path / "run", verbose=False, html=False)["report"]
    part = report["pipelines"]["riemann-lr"]
    assert part["model"]["modalities"] == ["eeg"] and part["channel_importance"] is None
    records = [json.loads(p.read_text())
               for p in sorted((tmp_path / "run" / "folds" / "riemann-lr").glob("fold_*.json"))]
    grid = cfg.baselines["riemann"]["C_grid"]
    for record in records:  # one C per subject's model, from the grid or the default
        for chosen in record["model_selection"]:
            assert chosen["params"]["C"] in grid + [cfg.baselines["riemann"]["C"]]
    n_test = sum(len(r["predictions"]) for r in records)
    assert n_test == sum(len(json.loads(p.read_text())["predictions"]) for p in sorted(
        (tmp_path / "run" / "folds" / "stimulus-prior").glob("fold_*.json")))  # same folds
    for record in records:
        proba = np.array([[p["p0"], p["p1"]] for p in record["predictions"]])
        np.testing.assert_allclose(proba.sum(1), 1.0)

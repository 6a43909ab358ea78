"""The cross-validation runner: no test data before prediction, atomic resumable folds."""

import json

import numpy as np
import pytest

import physiosync.evaluation.fit as fit_module  # PhysioSync's one fit path
import physiosync.evaluation.runner as cv
from conftest import kind_fold_kwargs
import physiosync.training.pretrain as pretrain_module
from physiosync.datasets import DEAP
from physiosync.exceptions import PhysioSyncError
from physiosync.synthetic import make_deap
from physiosync.params import FinetuneConfig
from physiosync.preprocessing.cache import prepare
from physiosync.params import PretrainConfig
from physiosync.evaluation.protocols import make_folds
from physiosync.training.sampling import SlotData
from physiosync.preprocessing.windows import make_windows

TINY = PretrainConfig(embed_dim=16, depth=1, n_heads=2, n_prompts=1, projector_dims=(32, 32),
                      cmca_dim=16, batch_slots=4, group_size=1, steps=2)
TINY_SHORT = PretrainConfig(embed_dim=8, depth=1, n_heads=2, n_prompts=1,
                            projector_dims=(32, 32), cmca_dim=16, batch_slots=4, group_size=1,
                            steps=2)
FT = FinetuneConfig(epochs=2, batch_size=8)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = make_deap(tmp_path_factory.mktemp("cv") / "d", n_subjects=3, n_trials=6, seconds=10,
                     effect=2.0, seed=3)
    windows = make_windows(prepare(DEAP(root), cache_dir=False), lengths=(5.0,))
    return SlotData.from_windows(windows, 5.0, target="valence")


def _units(data):
    return data.description[["subject", "trial"]].to_numpy()


def test_run_fold_never_sees_test_stimuli_before_prediction(data, monkeypatch):
    fold = make_folds(_units(data), "within-trial-kfold", n_splits=3, seed=0)[0]
    test_trials = set(fold.test[:, 1])
    seen = {"pretrain": [], "finetune": []}
    real_pretrain, real_finetune = pretrain_module.pretrain, fit_module.finetune

    def spy_pretrain(d, cfg, *, allowed, **kw):
        seen["pretrain"].append({d.trials[t] for t in np.nonzero(allowed.any(axis=(0, 2)))[0]})
        return real_pretrain(d, cfg, allowed=allowed, **kw)

    def spy_finetune(d, train_cells, *, val_cells=None, **kw):
        cells = train_cells if val_cells is None else np.concatenate([train_cells, val_cells])
        seen["finetune"].append({d.trials[t] for t in cells[:, 1]})
        return real_finetune(d, train_cells, val_cells=val_cells, **kw)

    monkeypatch.setattr(pretrain_module, "pretrain", spy_pretrain)
    monkeypatch.setattr(fit_module, "finetune", spy_finetune)
    pred, details = cv.run_fold(data, fold, long_config=TINY, short_config=TINY_SHORT,
                                finetune_config=FT, one_class="constant", device="cpu")
    n_fitted = 3 - pred.groupby("subject")["one_class"].first().sum()
    assert len(seen["pretrain"]) == 2 and len(seen["finetune"]) == n_fitted  # per subject
    for trials in seen["pretrain"] + seen["finetune"]:
        assert trials.isdisjoint(test_trials)
    assert set(pred["trial"]) == test_trials
    assert len(pred) == len(fold.test) * 2  # two 5 s windows per 10 s trial
    np.testing.assert_allclose(pred[["p0", "p1"]].sum(axis=1), 1, rtol=1e-5)
    metrics = cv.fold_metrics(pred)
    assert {"window", "trial", "chance", "chance_source"} <= set(metrics)
    assert set(metrics["chance"]["window"]) == set(metrics["window"])  # one per metric
    assert metrics["chance_source"] == "test labels"  # no training labels given
    train_labels = cv.train_label_counts(data, fold)
    assert sum(train_labels["pooled"]) == sum(map(sum, train_labels["subjects"].values()))
    assert cv.fold_metrics(pred, 2, train_labels)["chance_source"] == "training labels"
    assert set(details["curves"]["pretrain"]) == {"long", "short"}
    assert len(details["curves"]["pretrain"]["long"]["loss"]) == TINY.steps
    assert len(details["curves"]["finetune"]) == n_fitted
    imp = np.asarray(details["channel_importance"])
    assert imp.shape == (data.n_chans("eeg"),) and np.isclose(imp.sum(), 1) and (imp >= 0).all()


def test_cross_validate_writes_folds_atomically_and_resumes(data, tmp_path, monkeypatch,
                                                             interrupter):
    folds = make_folds(_units(data), "loso")
    # three subjects under loso leave one for pre-training once the validation subject is
    # held out for the diagnostic: pre-train on both training subjects instead
    kw = dict(long_config=TINY, short_config=TINY_SHORT, finetune_config=FT, per_subject=False,
              device="cpu", held_out="unused")
    real = cv.run_fold
    monkeypatch.setattr(cv, "run_fold", interrupter(real, at=2))
    with pytest.raises(KeyboardInterrupt):
        cv.cross_validate(data, folds, tmp_path, settings={"protocol": "loso"}, **kw)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fold_00.json"]  # no partial file
    first = json.loads((tmp_path / "fold_00.json").read_text())
    monkeypatch.setattr(cv, "run_fold", real)
    results = cv.cross_validate(data, folds, tmp_path, settings={"protocol": "loso"}, **kw)
    assert [r["fold"] for r in results] == [0, 1, 2]
    assert results[0] == first  # reused, not recomputed
    assert results[1]["test"] and all(s == results[1]["test"][0][0] for s, _ in results[1]["test"])
    # Other settings never reuse a finished fold.
    monkeypatch.setattr(cv, "run_fold", interrupter(real, at=1))
    with pytest.raises(KeyboardInterrupt):
        cv.cross_validate(data, folds, tmp_path, settings={"protocol": "loso", "x": 1}, **kw)


def test_one_class_training_split_is_an_error_before_training(data, monkeypatch):
    units = _units(data)
    labels = data.labels[np.searchsorted(data.subjects, units[:, 0]),
                         np.searchsorted(data.trials, units[:, 1])]
    # A fold whose training units for one subject all share one label.
    s0 = units[0, 0]
    mine = units[units[:, 0] == s0]
    lab = labels[units[:, 0] == s0]
    one = mine[lab == lab[0]]
    from physiosync.evaluation.protocols import Fold

    test = mine[lab != lab[0]][:1]
    pretrain = units[(units != test[0]).any(axis=1)]  # never a test unit
    fold = Fold(0, one[:1], one[:0], test, pretrain)
    monkeypatch.setattr(pretrain_module, "pretrain",
                        lambda *a, **k: pytest.fail("trained before checking"))
    with pytest.raises(PhysioSyncError, match=f"subject {s0} hold one class only"):
        cv.run_fold(data, fold, long_config=TINY, finetune_config=FT, device="cpu")


def test_report_files_and_leakage_warning(data, tmp_path):
    from physiosync.evaluation.summary import LEAKAGE_WARNING, build_report
    from physiosync.reporting.report import write_report

    folds = make_folds(_units(data), "within-trial-kfold", n_splits=2, seed=1)
    results = cv.cross_validate(data, folds, tmp_path / "folds", one_class="constant",
                                long_config=TINY, short_config=TINY_SHORT, finetune_config=FT,
                                device="cpu")
    report = build_report(results, protocol="within-trial-kfold", target="valence")
    paths = write_report(report, tmp_path / "run", html=False)
    doc = json.loads(paths["json"].read_text())
    assert doc["protocol"] == "within-trial-kfold" and doc["leaky"] is False
    assert {"fold", "train", "val", "test", "metrics", "chance"} <= set(doc["folds"][0])
    assert all(len(p) == 2 for p in doc["folds"][0]["test"])
    for key in ("window.accuracy", "trial.balanced_accuracy", "subject.accuracy",
                "subject.balanced_accuracy"):
        assert {"mean", "std", "n", "chance"} <= set(doc["summary"][key])
    assert "window.chance" not in doc["summary"]
    assert doc["headline"]["metric"] == "subject.balanced_accuracy"
    assert doc["folds"][0]["chance_source"] == "training labels"
    csv = paths["csv"].read_text().splitlines()
    # the per-fold columns first (older readers keep working), then the row kind
    assert csv[0] == "pipeline,fold,target,level,metric,value,chance,row,subject"
    assert len(csv) > 10 and {line.split(",")[7] for line in csv[1:]} == {"fold", "subject"}
    assert "LEAKAGE" not in paths["md"].read_text()
    with_p = build_report(results, protocol="within-trial-kfold", target="valence",
                          permutations=50, seed=0)
    p_value = with_p["pipelines"]["physiosync"]["p_value"]
    assert p_value["permutations"] == 50 and 1 / 51 <= p_value["p_value"] <= 1
    assert p_value["metric"] == "subject.balanced_accuracy"
    assert with_p["headline"]["p_value"] == p_value["p_value"]
    legacy = build_report(results, protocol="legacy-segment", target="valence")
    md = write_report(legacy, tmp_path / "legacy", html=False)["md"].read_text()
    assert LEAKAGE_WARNING in md and legacy["leaky"] is True


def test_legacy_segment_fold_splits_windows_and_never_selects_on_test(data):
    units = _units(data)
    folds = make_folds(units, "legacy-segment", n_splits=3, seed=0,
                       n_windows=data.description["n_windows"].to_numpy())
    fold = folds[0]
    train, val, test = cv.fold_cells(data, fold, val_size=0.2, seed=0)
    as_set = [set(map(tuple, c.tolist())) for c in (train, val, test)]
    assert not (as_set[0] & as_set[2]) and not (as_set[1] & as_set[2])
    assert not (as_set[0] & as_set[1])
    assert len(train) + len(val) + len(test) == int(data.valid.sum())
    # Windows of one trial sit in train and test: the leak the protocol is named for.
    train_units = {(s, t) for s, t, _ in as_set[0]}
    assert any((s, t) in train_units for s, t, _ in as_set[2])
    pred, _ = cv.run_fold(data, fold, per_subject=False, long_config=TINY,
                          short_config=TINY_SHORT, finetune_config=FT, val_size=0.2,
                          device="cpu")
    assert len(pred) == len(test)


def test_bandpower_runner_matches_the_fold_and_scores_channels(data):
    fold = make_folds(_units(data), "loso")[0]
    kw = kind_fold_kwargs("bandpower", {"eeg": 128.0, "gsr": 128.0})
    pred, details = kw["runner"](data, fold, model=kw["model"], per_subject=False)
    assert set(pred["subject"]) == set(fold.test[:, 0])
    imp = np.asarray(details["channel_importance"])
    assert imp.shape == (32,) and np.isclose(imp.sum(), 1)


def test_resume_upgrades_fold_files_written_without_training_labels(data, tmp_path):
    folds = make_folds(_units(data), "loso")[:1]
    kw = dict(kind_fold_kwargs("bandpower", {"eeg": 128.0, "gsr": 128.0}), per_subject=False)
    first = cv.cross_validate(data, folds, tmp_path, **kw)[0]
    labels = data.labels[data.valid.any(axis=2)]
    train_subjects = {s for s, _ in first["train"] + first["val"]}
    assert first["train_labels"]["per_subject_models"] is False
    assert set(first["train_labels"]["subjects"]) == {str(s) for s in train_subjects}
    assert sum(first["train_labels"]["pooled"]) == len(first["train"] + first["val"]) * 2
    assert np.bincount(labels).size == len(first["train_labels"]["pooled"])
    assert first["metrics"]["chance_source"] == "training labels"
    # A fold file of an older version: no training labels (nor checksum), one chance per
    # level.
    old = {k: v for k, v in first.items() if k not in ("train_labels", "checksum")}
    old["metrics"] = {"window": first["metrics"]["window"], "trial": first["metrics"]["trial"],
                      "chance_window": 0.5, "chance_trial": 0.5}
    (tmp_path / "fold_00.json").write_text(json.dumps(old))

    def fail(*args, **kwargs):
        raise AssertionError("recomputed a finished fold")

    again = cv.cross_validate(data, folds, tmp_path, **{**kw, "runner": fail})[0]
    assert again["train_labels"] == first["train_labels"]
    assert again["metrics"] == first["metrics"]

"""Label budgets (protocol.labelled_trials): nested stratified draws, studies and reports."""

import json

import numpy as np
import pytest

from _tiny import tiny_study
from physiosync.config import ConfigError, load_config
from physiosync.evaluation.label_budget import (budget_folder, labelled_fold, sort_budgets,
                                                stratified_order)
from physiosync.evaluation.protocols import Fold, make_folds
from physiosync.exceptions import PhysioSyncError
from physiosync.evaluation.label_efficiency import unit_auc
from physiosync.training.sampling import SlotData


def _labelled_slots(seed=0, n_subjects=4, n_trials=20):
    rng = np.random.default_rng(seed)
    x = {"eeg": np.zeros((n_subjects, n_trials, 2, 1, 4), "float32")}
    labels = (rng.random((n_subjects, n_trials)) < 0.3).astype(np.int64)
    labels[:, :2] = [0, 1]  # every subject has both classes
    return SlotData(x, np.ones((n_subjects, n_trials, 2), bool), range(n_subjects),
                    range(n_trials), labels)


def test_stratified_order_puts_every_class_first_and_keeps_proportions():
    rng = np.random.default_rng(0)
    labels = np.array([0] * 30 + [1] * 10)
    for _ in range(50):
        order = stratified_order(labels, rng)
        assert sorted(order) == list(range(40))
        assert set(labels[order[:2]]) == {0, 1}
        for k in (4, 8, 20):  # the minority share of a prefix stays near its pool share
            assert abs(labels[order[:k]].mean() - 0.25) <= 1.0 / k + 1e-9


def test_budgets_are_nested_stratified_reproducible_and_leave_pretraining_alone():
    data = _labelled_slots()
    units = data.description[["subject", "trial"]].to_numpy()
    fold = make_folds(units, "within-trial-kfold", n_splits=4, labels=data.labels.ravel(),
                      val_size=0.25, seed=0)[1]
    pool = {tuple(u) for u in np.concatenate([fold.train, fold.val]).tolist()}
    previous = None
    for budget in (1, 2, 4, 8, "all"):
        cut = labelled_fold(data, fold, budget, seed=3)
        assert cut.val.shape == (0, 2)
        np.testing.assert_array_equal(cut.test, fold.test)
        np.testing.assert_array_equal(cut.pretrain, fold.pretrain)
        kept = {tuple(u) for u in cut.train.tolist()}
        assert kept <= pool
        for s in range(4):
            mine = [u for u in kept if u[0] == s]
            expected = sum(u[0] == s for u in pool) if budget == "all" else min(budget, 16)
            assert len(mine) == expected
            if budget != "all" and budget >= 2:  # both classes from two trials on
                assert len({int(data.labels[s, t]) for _, t in mine}) == 2
        if previous is not None:
            assert previous <= kept  # nested: more labels add trials, never swap them
        previous = kept
        again = labelled_fold(data, fold, budget, seed=3)
        np.testing.assert_array_equal(again.train, cut.train)
    other = labelled_fold(data, fold, 4, seed=4)
    assert {tuple(u) for u in other.train.tolist()} != {
        tuple(u) for u in labelled_fold(data, fold, 4, seed=3).train.tolist()}


def test_a_subjects_draw_does_not_depend_on_the_other_subjects():
    data = _labelled_slots()
    units = data.description[["subject", "trial"]].to_numpy()
    fold = make_folds(units, "within-trial-kfold", n_splits=4, labels=data.labels.ravel(),
                      val_size=0.25, seed=0)[0]
    alone = Fold(fold.fold, fold.train[fold.train[:, 0] == 2], fold.val[fold.val[:, 0] == 2],
                 fold.test, fold.pretrain)
    full = labelled_fold(data, fold, 4, seed=0).train
    np.testing.assert_array_equal(labelled_fold(data, alone, 4, seed=0).train,
                                  full[full[:, 0] == 2])


def test_bad_budgets_and_window_folds_are_refused():
    data = _labelled_slots()
    units = data.description[["subject", "trial"]].to_numpy()
    fold = make_folds(units, "within-trial-kfold", n_splits=4, labels=data.labels.ravel())[0]
    for bad in (0, -2, 2.5, True, "most"):
        with pytest.raises(PhysioSyncError, match="label budget"):
            labelled_fold(data, fold, bad)
    leaky = Fold(0, units, units[:0], units[:0], units, leaky=True,
                 test_windows=np.arange(3))
    with pytest.raises(PhysioSyncError, match="legacy-segment"):
        labelled_fold(data, leaky, 2)


def test_budget_names_and_order():
    assert sort_budgets(["all", 8, 2, 4]) == [2, 4, 8, "all"]
    assert [budget_folder(b) for b in (2, 16, "all")] == ["labelled_002", "labelled_016",
                                                          "labelled_all"]


def test_area_under_the_curve_is_the_mean_trapezoid_height():
    assert unit_auc([0.5, 0.5, 0.5]) == pytest.approx(0.5)
    assert unit_auc([0.5, 0.7, 0.9]) == pytest.approx(0.7)
    assert unit_auc([0.5, 1.0]) == pytest.approx(0.75)
    assert unit_auc([0.6]) == pytest.approx(0.6)
    assert np.isnan(unit_auc([0.5, None, 0.7]))
    assert np.isnan(unit_auc([0.5, np.nan]))


@pytest.mark.parametrize("value, message", [
    ("[0, 4]", "labelled_trials"), ("[2, most]", "labelled_trials"),
    ("all", "must be a list"),
])
def test_config_refuses_bad_budgets(value, message):
    with pytest.raises(ConfigError, match=message):
        load_config("tiny", [f"protocol.labelled_trials={value}"])


def test_config_refuses_budgets_with_window_splits_and_refit_nulls():
    with pytest.raises(ConfigError, match="splits the windows"):
        load_config("tiny", ["protocol.name=legacy-segment", "protocol.labelled_trials=[2]"])
    with pytest.raises(ConfigError, match="cannot be combined"):
        load_config("tiny", ["protocol.permutation_refit=2", "protocol.labelled_trials=[2]"])
    cfg = load_config("tiny", ["protocol.labelled_trials=[all, 4, 2]"])
    assert cfg.protocol.labelled_trials == ["all", 4, 2]


def test_label_efficiency_study_end_to_end_shares_pretraining_and_resumes(
        study_root, tmp_path, monkeypatch):
    import physiosync.training.pretrain as pretrain_module
    from physiosync.experiment import run_experiment

    calls = []
    real = pretrain_module.pretrain

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(pretrain_module, "pretrain", counting)
    cfg = tiny_study(study_root, tmp_path / "cache", "protocol.labelled_trials=[2, all]",
                     "protocol.permutations=50")
    out = tmp_path / "run"
    result = run_experiment(cfg, out, verbose="error")
    report = result["report"]
    section = report["label_efficiency"]
    # two folds x two encoders: the budgets of a fold share its pre-training
    assert len(calls) == 4
    assert section["budgets"] == ["2", "all"]
    assert section["labelled"]["2"] == 2.0 and section["labelled"]["all"] > 2.0
    assert list(section["curves"]) == ["physiosync", "bandpower"]
    for points in section["curves"].values():
        assert [p["budget"] for p in points] == ["2", "all"]
        assert all(0 <= p["mean"] <= 1 and p["chance"] == pytest.approx(0.5) for p in points)
        assert all(p["p_value"] is not None for p in points)
    assert set(section["auc"]) == {"physiosync", "bandpower"}
    (comp,) = section["comparisons"]
    assert comp["baseline"] == "bandpower" and comp["metric"].startswith("auc.")
    assert set(section["by_budget"]) == {"2", "all"}
    # the study's report is that of the largest budget
    for name in ("physiosync", "bandpower"):
        for b in ("labelled_002", "labelled_all"):
            assert len(list((out / "folds" / name / b).glob("fold_*.json"))) == 2
    fold = json.loads((out / "folds" / "bandpower" / "labelled_002" / "fold_00.json")
                      .read_text())
    assert fold["val"] == [] and len(fold["train"]) == 2 * 3
    assert report["headline"]["mean"] == report["pipelines"]["physiosync"]["headline"]["mean"]
    assert section["curves"]["physiosync"][-1]["mean"] == report["headline"]["mean"]
    md = (out / "report.md").read_text()
    assert "## Label efficiency" in md and "| bandpower |" in md
    assert 'id="fig-label-efficiency"' in (out / "report.html").read_text()
    # a resumed run trains nothing and writes the same curves
    calls.clear()
    again = run_experiment(cfg, out, verbose="error")
    assert calls == []
    assert again["report"]["label_efficiency"]["curves"] == section["curves"]


def test_fold_batched_pretraining_serves_every_budget(study_root, tmp_path, monkeypatch):
    import physiosync.training.fold_batch as fold_batch
    import physiosync.training.pretrain as pretrain_module
    from physiosync.experiment import run_experiment

    single, batched = [], []
    real_single, real_batched = pretrain_module.pretrain, fold_batch.pretrain_folds
    monkeypatch.setattr(pretrain_module, "pretrain",
                        lambda *a, **k: single.append(1) or real_single(*a, **k))
    monkeypatch.setattr(fold_batch, "pretrain_folds",
                        lambda *a, **k: batched.append(len(k["allowed"])) or
                        real_batched(*a, **k))
    cfg = tiny_study(study_root, tmp_path / "cache", "protocol.labelled_trials=[2, all]",
                     "pretrain.batch_folds=2", "pipelines=[physiosync]")
    report = run_experiment(cfg, tmp_path / "run", verbose="error")["report"]
    assert batched == [2, 2] and single == []  # both folds of each encoder in one run
    assert [p["budget"] for p in report["label_efficiency"]["curves"]["physiosync"]] == [
        "2", "all"]

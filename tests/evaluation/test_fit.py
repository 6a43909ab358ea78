"""PhysioSync's one fit path (evaluation.fit): the estimator, the fold runner and the
``pretrain``/``finetune`` commands all pre-train, fine-tune and predict through it."""

from __future__ import annotations

import numpy as np
import pytest

import physiosync.evaluation.fit as fit_module
from physiosync import PhysioSyncError
from physiosync.cli import main
from physiosync.estimators import PhysioSyncClassifier
from physiosync.evaluation.fit import (encoders_used, fit_physiosync, holdout_split,
                                       pretrain_physiosync)
from physiosync.evaluation.protocols import make_folds
from physiosync.evaluation.runner import PhysioSyncRunner, run_fold_with
from physiosync.params import FinetuneConfig

from _tiny import tiny_pretrain, tiny_slots

FT = FinetuneConfig(epochs=2, batch_size=8, hidden=(8,), seed=0)


@pytest.fixture
def calls(monkeypatch):
    """Every pre-training run and fine-tuning of the fit path, in order."""
    seen = []
    real_pretrain, real_finetune = fit_module.pretrain_encoders, fit_module.finetune

    def spy_pretrain(data, long_config, short_config, *, which, **kw):
        seen.append(("pretrain", tuple(which)))
        return real_pretrain(data, long_config, short_config, which=which, **kw)

    def spy_finetune(data, train, *, val_cells=None, **kw):
        seen.append(("finetune", len(train), 0 if val_cells is None else len(val_cells)))
        return real_finetune(data, train, val_cells=val_cells, **kw)

    monkeypatch.setattr(fit_module, "pretrain_encoders", spy_pretrain)
    monkeypatch.setattr(fit_module, "finetune", spy_finetune)
    return seen


def _labelled(seed=0):
    data = tiny_slots(seed)
    data.labels = (np.arange(5)[None, :] % 2).repeat(6, axis=0)
    return data


def test_the_estimator_trains_through_the_fit_path(calls):
    data = _labelled()
    s, t, w = np.nonzero(data.valid)
    x = {m: v[s, t, w].numpy() for m, v in data.x.items()}
    est = PhysioSyncClassifier(n_sub=4, embed_dim=8, depth=1, n_heads=2, n_prompts=0,
                               projector_dims=(8,), pretrain_steps=2, batch_slots=3,
                               group_size=1, epochs=2, batch_size=8, random_state=0,
                               device="cpu")
    est.fit(x, data.labels[s, t], subject=s, trial=t, window=w)
    # one run per encoder, then one fine-tuning whose epoch is selected on held-out
    # training trials (split_validation, the estimator's split)
    assert [c[:2] for c in calls] == [("pretrain", ("long",)), ("pretrain", ("short",)),
                                      ("finetune", calls[2][1])]
    assert calls[2][2] > 0 and calls[2][1] + calls[2][2] == len(s)


def test_the_fold_runner_pretrains_once_and_fine_tunes_each_subject(calls):
    data = _labelled()
    units = np.argwhere(np.ones((6, 5), bool))
    fold = make_folds(units, "within-trial-kfold", n_splits=5, seed=0, val_size=0.25)[0]
    runner = PhysioSyncRunner(n_sub=4, long_config=tiny_pretrain(steps=2),
                              short_config=tiny_pretrain(steps=2, embed_dim=8),
                              finetune_config=FT, importance=False, device="cpu")
    pred, _ = run_fold_with(data, fold, model=runner, per_subject=True, one_class="constant")
    finetunes = [c for c in calls if c[0] == "finetune"]
    assert calls[:2] == [("pretrain", ("long",)), ("pretrain", ("short",))]
    assert len(calls) == 2 + len(finetunes) and 1 <= len(finetunes) <= 6
    # the protocol's validation units select the epoch
    assert all(c[2] > 0 for c in finetunes)
    assert set(pred["trial"]) == set(fold.test[:, 1])


def test_the_commands_train_through_the_fit_path(tmp_path, calls, capsys):
    from physiosync.synthetic import make_deap

    root = make_deap(tmp_path / "d", n_subjects=3, n_trials=6, seconds=10, effect=2, seed=2)
    common = ["--dataset", "deap", "--data-root", str(root), "--config", "tiny", "-q",
              "--cache-dir", str(tmp_path / "cache"), "--no-estimate"]
    assert main(["pretrain", *common, "--out", str(tmp_path / "ck")]) == 0
    assert calls == [("pretrain", ("long",)), ("pretrain", ("short",))]
    assert main(["finetune", *common, "--pretrained", str(tmp_path / "ck"),
                 "--test-trials", "4,5", "--out", str(tmp_path / "ck")]) == 0
    assert [c[0] for c in calls] == ["pretrain", "pretrain", "finetune"]
    assert "held-out trials [4, 5]: accuracy" in capsys.readouterr().out
    assert main(["finetune", *common, "--test-trials", "4,x", "--out",
                 str(tmp_path / "x")]) == 2
    assert "--test-trials '4,x': expected comma-separated trial numbers" in \
        capsys.readouterr().err


def test_fit_physiosync_pretrains_the_encoders_fine_tuning_uses(calls):
    data = _labelled()
    cells = np.argwhere(data.valid)
    train, val, test = cells[::3], cells[1::3], cells[2::3]
    long_only = FinetuneConfig(epochs=1, batch_size=8, hidden=(8,), use_short=False)
    assert encoders_used(long_only) == ("long",) and encoders_used(FT) == ("long", "short")
    fit = fit_physiosync(data, train, val, test, n_sub=4, n_classes=2,
                         finetune_config=long_only, long_config=tiny_pretrain(steps=2),
                         short_config=tiny_pretrain(steps=2), pretrain={}, device="cpu")
    assert calls[0] == ("pretrain", ("long",)) and set(fit.pretrained) == {"long"}
    assert len(fit.pretrain_history["long"]) == 2 and len(fit.history) == 1
    assert fit.proba.shape == (len(test), 2) and fit.selected_epoch == 0
    with pytest.raises(PhysioSyncError, match="not both"):
        fit_physiosync(data, train, n_sub=4, n_classes=2, finetune_config=FT,
                       long_config=tiny_pretrain(), short_config=tiny_pretrain(),
                       pretrained=fit.pretrained, pretrain={})


def test_pretrain_physiosync_reports_each_run_as_it_ends():
    data = tiny_slots()
    said = []
    runs = pretrain_physiosync(data, tiny_pretrain(steps=2), tiny_pretrain(steps=2), n_sub=4,
                               on_start=lambda name: said.append(("start", name)),
                               on_end=lambda name, model, hist: said.append(("end", name,
                                                                              len(hist))),
                               device="cpu")
    assert said == [("start", "long"), ("end", "long", 2), ("start", "short"),
                    ("end", "short", 2)]
    assert list(runs) == ["long", "short"]


def test_holdout_split_keeps_test_trials_out_of_training_and_validation():
    data = _labelled()
    units = np.argwhere(np.ones((6, 5), bool))
    labels = data.labels[units[:, 0], units[:, 1]]
    split = holdout_split(data, units, labels, test_trials=[3], val_size=0.25, seed=0)
    assert set(split.test[:, 1]) == {3} and split.test_trials == [3]
    assert 3 not in set(split.train[:, 1]) | set(split.val[:, 1])
    assert len(split.train) + len(split.val) + len(split.test) == data.valid.sum()
    assert len(split.val) > 0
    with pytest.raises(PhysioSyncError, match=r"--test-trials \[9\] are not trials"):
        holdout_split(data, units, labels, test_trials=[9], val_size=0.25, seed=0)


def test_held_out_scores_give_each_metric_with_its_chance_level():
    from physiosync.evaluation.fit import held_out_scores
    from physiosync.evaluation.metrics import chance_levels, classification_metrics

    y_test, y_pred, y_train = [0, 0, 1, 1], [0, 1, 1, 1], [0, 1, 1]
    s = held_out_scores(y_test, y_pred, y_train, n_classes=2)
    want = classification_metrics(np.array(y_test), y_pred, n_classes=2)
    assert s.metrics.keys() == want.keys()  # roc_auc is NaN without probabilities
    np.testing.assert_equal(list(s.metrics.values()), list(want.values()))
    assert s.metrics["accuracy"] == 0.75 and s.n_windows == 4 and not s.one_class
    assert s.chance == chance_levels(y_test, y_train, n_classes=2)
    assert s.chance["accuracy"] == 0.5  # the training majority (1) on two of four windows
    one = held_out_scores([0, 0, 0], [1, 1, 1], [1, 1, 0], n_classes=2)
    assert one.one_class and one.classes.tolist() == [0]
    assert one.metrics["accuracy"] == 0.0 and one.chance["accuracy"] == 0.0

"""The stimulus-prior baseline: the shortcut under loso, the prior where stimuli are held out."""

import numpy as np
import pytest
from sklearn.metrics import balanced_accuracy_score
from _numerics import above_chance

from physiosync import PhysioSyncError
from physiosync.evaluation.baselines import StimulusPriorClassifier
from conftest import kind_fold_kwargs
from physiosync.evaluation.protocols import Fold, LeakageError, make_folds
from physiosync.training.sampling import SlotData


def test_estimator_counts_labels_per_stimulus_and_falls_back_to_the_prior():
    units = np.array([[1, 0], [2, 0], [3, 0], [1, 1], [2, 1]])  # (subject, trial)
    clf = StimulusPriorClassifier().fit(units, [1, 1, 0, 0, 0])
    assert clf.classes_.tolist() == [0, 1] and clf.stimuli_.tolist() == [0, 1]
    np.testing.assert_allclose(clf.predict_proba([[9, 0], [9, 1], [9, 7]]),
                               [[1 / 3, 2 / 3], [1, 0], [3 / 5, 2 / 5]])
    assert clf.predict([[9, 0], [9, 1], [9, 7]]).tolist() == [1, 0, 0]
    # 1-D stimulus ids work the same, and string classes keep their labels.
    by_id = StimulusPriorClassifier().fit(units[:, 1], ["hi", "hi", "lo", "lo", "lo"])
    assert by_id.classes_.tolist() == ["hi", "lo"]
    assert by_id.predict([0, 1, 5]).tolist() == ["hi", "lo", "lo"]
    np.testing.assert_allclose(by_id.prior_, [2 / 5, 3 / 5])


def test_estimator_rejects_bad_input():
    with pytest.raises(PhysioSyncError, match=r"shape \(n, 2\); got shape \(2, 3\)"):
        StimulusPriorClassifier().fit(np.zeros((2, 3)), [0, 1])
    with pytest.raises(PhysioSyncError, match="same, non-zero length; got 3 and 2"):
        StimulusPriorClassifier().fit([0, 1, 2], [0, 1])
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        StimulusPriorClassifier().predict([0])


def run_fold_stimulus_prior(data, fold, **kwargs):
    """One fold of the ``stimulus-prior`` pipeline kind, in the shared fold loop."""
    kw = kind_fold_kwargs("stimulus-prior")
    return kw["runner"](data, fold, model=kw["model"], **kwargs)


def _consensus_slots(n_subjects=12, n_trials=24, seed=0) -> SlotData:
    """Labels only (flat signals), drawn like synthetic DEAP valence: a consensus rating
    per video on 1-9, plus each subject's own noise, high at >= 5."""
    rng = np.random.default_rng(seed)
    ratings = rng.uniform(1.0, 9.0, n_trials) + rng.normal(0.0, 8 / 6, (n_subjects, n_trials))
    labels = (ratings >= 5.0).astype(np.int64)
    x = {"eeg": np.zeros((n_subjects, n_trials, 2, 1, 4), dtype=np.float32)}
    valid = np.ones((n_subjects, n_trials, 2), dtype=bool)
    return SlotData(x, valid, range(1, n_subjects + 1), range(n_trials), labels=labels)


def _units(data):
    units = np.array([(s, t) for s in data.subjects for t in data.trials])
    return units, data.labels.reshape(-1)


def _run(data, protocol, per_subject):
    units, labels = _units(data)
    out = []
    for fold in make_folds(units, protocol, n_splits=4, labels=labels, seed=0):
        pred, details = run_fold_stimulus_prior(data, fold, per_subject=per_subject)
        assert details == {"curves": {}, "channel_importance": None}
        out.append((fold, pred))
    return out


def _balanced_accuracy(runs):
    return np.mean([balanced_accuracy_score(p["y"], p[["p0", "p1"]].to_numpy().argmax(1))
                    for _, p in runs])


def test_loso_lets_the_stimulus_alone_score_far_above_chance():
    data = _consensus_slots()
    runs = _run(data, "loso", per_subject=False)
    # far above chance: 12 subjects x 24 videos, 3.29 binomial errors above (1e-3)
    assert _balanced_accuracy(runs) > above_chance(12 * 24, alpha=1e-3)
    # Each test window gets the other subjects' label frequencies for its video.
    fold, pred = runs[0]
    s = int(fold.test[0, 0])
    for t in (0, 5):
        others = data.labels[[i for i, x in enumerate(data.subjects) if x != s], t]
        row = pred[(pred["trial"] == t)].iloc[0]
        assert row["p1"] == pytest.approx(others.mean())


@pytest.mark.parametrize("protocol,per_subject", [("subject-stimulus-kfold", False),
                                                  ("within-trial-kfold", True),
                                                  ("within-trial-kfold", False)])
def test_held_out_stimuli_leave_only_the_prior(protocol, per_subject):
    data = _consensus_slots()
    runs = _run(data, protocol, per_subject)
    for fold, pred in runs:
        seen = np.concatenate([fold.train, fold.val])
        for s, rows in pred.groupby("subject" if per_subject else np.zeros(len(pred))):
            mine = seen[seen[:, 0] == s] if per_subject else seen
            prior = data.labels[np.searchsorted(data.subjects, mine[:, 0]),
                                np.searchsorted(data.trials, mine[:, 1])].mean()
            np.testing.assert_allclose(rows["p1"], prior)  # one value: the training prior
    assert abs(_balanced_accuracy(runs) - 0.5) < 0.1


def test_one_class_models_are_handled_like_the_bandpower_baseline():
    data = _consensus_slots(4, 8)
    data.labels[0] = 1  # subject 1 rates every video high
    units, labels = _units(data)
    fold = make_folds(units, "within-trial-kfold", n_splits=2, labels=labels, seed=0)[0]
    with pytest.raises(PhysioSyncError, match="subject 1 hold one class only"):
        run_fold_stimulus_prior(data, fold, per_subject=True)
    pred, _ = run_fold_stimulus_prior(data, fold, per_subject=True, one_class="constant")
    mine = pred[pred["subject"] == 1]
    assert mine["one_class"].all() and (mine["p1"] == 1).all()
    assert not pred.loc[pred["subject"] != 1, "one_class"].any()


def test_the_runner_refuses_a_leaky_fold():
    data = _consensus_slots(4, 8)
    units, labels = _units(data)
    fold = make_folds(units, "subject-stimulus-kfold", n_splits=2, labels=labels, seed=0)[0]
    test_subject = fold.test[0, 0]
    tampered = Fold(0, np.concatenate([fold.train, [[test_subject, 99]]]), fold.val,
                    fold.test, fold.pretrain, held_out=fold.held_out)
    with pytest.raises(LeakageError, match=f"subject {test_subject} of the test set is also in "
                                           "train"):
        run_fold_stimulus_prior(data, tampered, per_subject=False)


def test_config_accepts_the_protocol_and_the_pipeline():
    from physiosync.config import load_config
    from physiosync.experiment.planning import _per_subject

    cfg = load_config("tiny", ["protocol.name=subject-stimulus-kfold",
                               "pipelines=[physiosync, stimulus-prior]"])
    assert [p["kind"] for p in cfg.pipelines] == ["physiosync", "stimulus-prior"]
    assert _per_subject(cfg) is False  # cross-subject: one pooled model

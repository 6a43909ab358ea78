"""Evaluation protocols: disjoint manifests, right groups held out, clear errors."""

import numpy as np
import pytest

from physiosync import PhysioSyncError
from physiosync.protocols import PROTOCOLS, Fold, LeakageError, check_disjoint, make_folds


def _units(n_subjects=6, n_trials=10):
    return np.array([(s, t) for s in range(1, n_subjects + 1) for t in range(n_trials)])


def _labels(units):
    # Per-video consensus: labels depend on the trial, as in DEAP.
    return (units[:, 1] % 3 == 0).astype(int)


@pytest.mark.parametrize("protocol", [p for p in PROTOCOLS if p != "legacy-segment"])
def test_partitions_are_disjoint_and_cover_the_data(protocol):
    units = _units()
    folds = make_folds(units, protocol, n_splits=5, labels=_labels(units), seed=1)
    tested = np.concatenate([f.test for f in folds])
    # Every unit is tested exactly once.
    assert len(tested) == len(units)
    assert len(np.unique(tested, axis=0)) == len(units)
    for f in folds:
        check_disjoint(f)
        union = np.concatenate([f.train, f.val, f.test])
        assert len(np.unique(union, axis=0)) == len(units)
        assert len(f.val) > 0


@pytest.mark.parametrize("protocol", ["within-trial-kfold", "within-loto"])
def test_within_protocols_hold_out_stimuli_for_everyone(protocol):
    units = _units()
    for f in make_folds(units, protocol, n_splits=5, labels=_labels(units)):
        test_trials = set(f.test[:, 1])
        # A held-out stimulus is held out for every subject ...
        assert len(f.test) == len(test_trials) * 6
        assert not test_trials & set(f.train[:, 1]) and not test_trials & set(f.val[:, 1])
        # ... including from pre-training, which uses other subjects on the same stimuli.
        assert not test_trials & set(f.pretrain[:, 1])
        assert set(f.pretrain[:, 0]) == set(range(1, 7))
        # Validation stimuli are other stimuli, never test ones.
        assert set(f.val[:, 1]).isdisjoint(test_trials)
    loto = make_folds(units, "within-loto")
    assert len(loto) == 10 and all(len(set(f.test[:, 1])) == 1 for f in loto)


@pytest.mark.parametrize("protocol", ["loso", "subject-kfold"])
def test_cross_protocols_hold_out_subjects_everywhere(protocol):
    units = _units()
    folds = make_folds(units, protocol, n_splits=3)
    assert len(folds) == (6 if protocol == "loso" else 3)
    for f in folds:
        test_subjects = set(f.test[:, 0])
        for part in (f.train, f.val, f.pretrain):
            assert test_subjects.isdisjoint(part[:, 0])
        assert set(f.val[:, 0]).isdisjoint(f.train[:, 0])  # validation = other subjects


def test_seeded_and_stratified():
    units = _units(4, 20)
    labels = _labels(units)
    a = make_folds(units, "within-trial-kfold", n_splits=4, labels=labels, seed=3)
    b = make_folds(units, "within-trial-kfold", n_splits=4, labels=labels, seed=3)
    c = make_folds(units, "within-trial-kfold", n_splits=4, labels=labels, seed=4)
    assert all(np.array_equal(x.test, y.test) for x, y in zip(a, b))
    assert not all(np.array_equal(x.test, y.test) for x, y in zip(a, c))
    for f in a:  # both classes in every training part
        assert set(labels[[np.flatnonzero((units == u).all(1))[0] for u in f.train]]) == {0, 1}


def test_legacy_segment_is_flagged_leaky():
    units = _units(2, 4)
    folds = make_folds(units, "legacy-segment", n_splits=5, n_windows=12)
    assert all(f.leaky for f in folds)
    assert sorted(np.concatenate([f.test_windows for f in folds])) == list(range(2 * 4 * 12))
    # Its test units overlap the training units: exactly the leak.
    assert any(len(set(map(tuple, f.test)) & set(map(tuple, f.train))) for f in folds)
    assert folds[0].manifest()["leaky"] is True
    with pytest.raises(PhysioSyncError, match="n_windows"):
        make_folds(units, "legacy-segment")


def test_errors():
    units = _units(3, 4)
    with pytest.raises(PhysioSyncError, match="n_splits=5 is larger than the 4 stimuli"):
        make_folds(units, "within-trial-kfold", n_splits=5)
    with pytest.raises(PhysioSyncError, match="n_splits=4 is larger than the 3 subjects"):
        make_folds(units, "subject-kfold", n_splits=4)
    with pytest.raises(PhysioSyncError, match="Did you mean 'loso'"):
        make_folds(units, "lsoo")
    with pytest.raises(PhysioSyncError, match=r"\(n, 2\)"):
        make_folds(units[:, 0], "loso")
    bad = Fold(0, units[:3], units[2:4], units[5:6], units)
    with pytest.raises(LeakageError, match=r"subject 1, trial 2\) is in both train and val"):
        check_disjoint(bad)


def test_manifest_is_json_ready():
    import json

    f = make_folds(_units(3, 6), "loso")[0]
    m = json.loads(json.dumps(f.manifest()))
    assert set(m) == {"fold", "leaky", "train", "val", "test", "pretrain"}
    assert all(len(pair) == 2 for pair in m["test"])

"""Evaluation protocols: disjoint manifests, right groups held out, clear errors."""

import numpy as np
import pytest

from physiosync import PhysioSyncError
from physiosync.evaluation.protocols import PROTOCOLS, Fold, LeakageError, check_disjoint, make_folds


def _units(n_subjects=6, n_trials=10):
    return np.array([(s, t) for s in range(1, n_subjects + 1) for t in range(n_trials)])


def _labels(units):
    # Per-video consensus: labels depend on the trial, as in DEAP.
    return (units[:, 1] % 3 == 0).astype(int)


def _facts(protocol, units):
    """What the session protocols need: the trials split into two sessions, and the
    number of training trials per session of session-split."""
    if protocol not in ("cross-session", "session-split"):
        return {}
    half = units[:, 1].max() // 2 + 1
    sessions = np.where(units[:, 1] < half, "a", "b")
    return {"sessions": sessions, **({"train_trials": 3} if protocol == "session-split"
                                     else {})}


# session-split tests only the last trials of each session (its own tests are in
# test_protocols_sessions.py)
@pytest.mark.parametrize("protocol", [p for p in PROTOCOLS if p not in (
    "legacy-segment", "subject-stimulus-kfold", "session-split")])
def test_partitions_are_disjoint_and_cover_the_data(protocol):
    units = _units()
    folds = make_folds(units, protocol, n_splits=5, labels=_labels(units), seed=1,
                       **_facts(protocol, units))
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


def test_subject_stimulus_kfold_holds_out_subjects_and_stimuli_together():
    units = _units(6, 12)
    labels = _labels(units)
    folds = make_folds(units, "subject-stimulus-kfold", n_splits=3, labels=labels, seed=2)
    assert len(folds) == 3
    for f in folds:
        subjects, trials = set(f.test[:, 0]), set(f.test[:, 1])
        # The test set is every held-out subject on every held-out stimulus ...
        assert len(f.test) == len(subjects) * len(trials) == len(np.unique(f.test, axis=0))
        # ... and nothing of either is used for training, validation or pre-training.
        for part in (f.train, f.val, f.pretrain):
            assert subjects.isdisjoint(part[:, 0]) and trials.isdisjoint(part[:, 1])
        # Training = the other subjects on the other stimuli, all of them.
        rest = units[~np.isin(units[:, 0], list(subjects)) & ~np.isin(units[:, 1], list(trials))]
        assert {tuple(u) for u in np.concatenate([f.train, f.val])} == set(map(tuple, rest))
        assert {tuple(u) for u in f.pretrain} == set(map(tuple, rest))
        # Validation holds out whole training subjects (unseen subjects for epoch selection).
        assert len(f.val) and set(f.val[:, 0]).isdisjoint(f.train[:, 0])
        assert f.held_out == ("subject", "trial")
        check_disjoint(f)
    # Every subject and every stimulus is tested in exactly one fold.
    for col, n in ((0, 6), (1, 12)):
        tested = [u for f in folds for u in set(f.test[:, col])]
        assert sorted(tested) == sorted(set(units[:, col])) and len(tested) == n
    # Seeded.
    again = make_folds(units, "subject-stimulus-kfold", n_splits=3, labels=labels, seed=2)
    other = make_folds(units, "subject-stimulus-kfold", n_splits=3, labels=labels, seed=3)
    assert all(np.array_equal(getattr(a, p), getattr(b, p)) for a, b in zip(folds, again)
               for p in ("train", "val", "test", "pretrain"))
    assert not all(np.array_equal(a.test, b.test) for a, b in zip(folds, other))


def test_subject_stimulus_kfold_errors_and_leakage_check():
    units = _units(3, 8)
    with pytest.raises(PhysioSyncError, match="n_splits=4 is larger than the 3 subjects "
                                              "available for subject-stimulus-kfold"):
        make_folds(units, "subject-stimulus-kfold", n_splits=4)
    with pytest.raises(PhysioSyncError, match="n_splits=4 is larger than the 3 stimuli "
                                              r"\(trials\) available for subject-stimulus"):
        make_folds(_units(6, 3), "subject-stimulus-kfold", n_splits=4)
    f = make_folds(units, "subject-stimulus-kfold", n_splits=3, labels=_labels(units))[0]
    s, t = f.test[0]
    # A held-out stimulus watched by a training subject, in training: leaks the stimulus.
    other = f.train[0, 0]
    with pytest.raises(LeakageError, match=f"held-out trial {t} of the test set is also in "
                                           "train"):
        check_disjoint(Fold(0, np.vstack([f.train, [[other, t]]]), f.val, f.test,
                            f.pretrain, held_out=f.held_out))
    # A held-out subject on a training stimulus, in pre-training: leaks the subject.
    with pytest.raises(LeakageError, match=f"held-out subject {s} of the test set is also in "
                                           "pretrain"):
        check_disjoint(Fold(0, f.train, f.val, f.test,
                            np.vstack([f.pretrain, [[s, f.train[0, 1]]]]), held_out=f.held_out))


@pytest.mark.parametrize("protocol,held_out", [("within-trial-kfold", ("trial",)),
                                               ("within-loto", ("trial",)),
                                               ("loso", ("subject",)),
                                               ("subject-kfold", ("subject",))])
def test_every_unit_protocol_declares_what_it_holds_out(protocol, held_out):
    units = _units(4, 6)
    for f in make_folds(units, protocol, n_splits=2, labels=_labels(units)):
        assert f.held_out == held_out
    f = make_folds(units, protocol, n_splits=2, labels=_labels(units))[0]
    col = 0 if held_out == ("subject",) else 1
    leak = f.test[:1].copy()
    leak[0, 1 - col] = 99  # same held-out subject (or stimulus), another unit
    with pytest.raises(LeakageError, match=f"held-out {held_out[0]}"):
        check_disjoint(Fold(0, np.vstack([f.train, leak]), f.val, f.test, f.pretrain,
                            held_out=f.held_out))


def test_caveats_name_the_stimulus_shortcut_of_cross_subject_protocols():
    from physiosync.evaluation.protocols import CAVEATS, CROSS

    assert "subject-stimulus-kfold" in CROSS and "subject-stimulus-kfold" in PROTOCOLS
    for protocol in ("loso", "subject-kfold"):
        text = CAVEATS[protocol]
        assert "stimulus-prior" in text and "subject-stimulus-kfold" in text
    assert set(CAVEATS) <= set(PROTOCOLS)


# --------------------------------------------------------------------------- pre-training split
@pytest.mark.parametrize("protocol", [p for p in PROTOCOLS if p != "legacy-segment"])
def test_every_protocols_pretrain_split_passes_and_never_holds_a_test_unit(protocol):
    units = _units(6, 9)
    folds = make_folds(units, protocol, n_splits=3, labels=_labels(units), seed=2,
                       **_facts(protocol, units))
    for f in folds:
        check_disjoint(f)
        test = {tuple(u) for u in f.test.tolist()}
        pretrain = {tuple(u) for u in f.pretrain.tolist()}
        assert pretrain and not test & pretrain
        # pre-training sees the training (and validation) units, nothing held out
        assert {tuple(u) for u in np.vstack([f.train, f.val]).tolist()} <= pretrain
        if "trial" in f.held_out:  # no subject's test stimulus
            assert set(f.test[:, 1]).isdisjoint(f.pretrain[:, 1])
        if "subject" in f.held_out:  # training subjects only
            assert set(f.pretrain[:, 0]) <= set(np.vstack([f.train, f.val])[:, 0])


def test_a_test_unit_in_pretrain_is_a_leak_even_without_held_out_columns():
    train, test = np.array([[1, 0], [1, 1]]), np.array([[1, 2]])
    check_disjoint(Fold(0, train, train[:0], test, train))  # a hand-made fold: fine
    with pytest.raises(LeakageError, match=r"\(subject 1, trial 2\) is in both test and "
                                           "pretrain"):
        check_disjoint(Fold(0, train, train[:0], test, np.vstack([train, test])))


@pytest.mark.parametrize("protocol", ["within-trial-kfold", "within-loto"])
def test_another_subjects_test_stimulus_in_pretrain_is_a_leak(protocol):
    # Within subjects, pre-training may hold other subjects' *training* stimuli, never a
    # stimulus that is held out, whoever watched it.
    units = _units(4, 6)
    f = make_folds(units, protocol, n_splits=3, labels=_labels(units))[0]
    s, t = f.test[0]
    other = next(x for x in range(1, 5) if x != s)
    assert [other, t] in f.test.tolist()  # every subject is tested on a held-out stimulus
    with pytest.raises(LeakageError, match=rf"\(subject {other}, trial {t}\) is in both test "
                                           "and pretrain"):
        check_disjoint(Fold(0, f.train, f.val, f.test, np.vstack([f.pretrain, [[other, t]]]),
                            held_out=f.held_out))
    # a subject outside the test set (e.g. a pre-training-only recording) on that stimulus
    with pytest.raises(LeakageError, match=f"held-out trial {t} of the test set is also in "
                                           "pretrain"):
        check_disjoint(Fold(0, f.train, f.val, f.test, np.vstack([f.pretrain, [[99, t]]]),
                            held_out=f.held_out))


@pytest.mark.parametrize("protocol", ["loso", "subject-kfold"])
def test_a_test_subject_in_pretrain_is_a_leak_under_cross_subject_protocols(protocol):
    units = _units(4, 6)
    f = make_folds(units, protocol, n_splits=2, labels=_labels(units))[0]
    s = f.test[0, 0]
    with pytest.raises(LeakageError, match=f"held-out subject {s} of the test set is also in "
                                           "pretrain"):
        check_disjoint(Fold(0, f.train, f.val, f.test, np.vstack([f.pretrain, [[s, 99]]]),
                            held_out=f.held_out))

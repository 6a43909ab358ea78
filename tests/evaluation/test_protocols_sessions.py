"""Sessions and stimuli in the folds: clips shown in several sessions, cross-session and
the SEED split, and folds of single-session data unchanged."""

import hashlib
import json

import numpy as np
import pytest

from physiosync import PhysioSyncError
from physiosync.evaluation.protocols import (PROTOCOLS, Fold, LeakageError, check_disjoint,
                                             make_folds)

N_CLIPS, N_SESSIONS = 5, 3


def _seed_like(n_subjects=4, n_clips=N_CLIPS, n_sessions=N_SESSIONS):
    """Units of a SEED-like study: every subject sees the same clips, in the same order, in
    each session; trials are numbered across sessions (session-major)."""
    units = np.array([(s, k * n_clips + c) for s in range(1, n_subjects + 1)
                      for k in range(n_sessions) for c in range(n_clips)])
    sessions = np.array([str(1 + t // n_clips) for t in units[:, 1]])
    stimuli = units[:, 1] % n_clips
    labels = stimuli % 3  # SEED: the class is the clip's
    return units, sessions, stimuli, labels


def _stimuli_of(fold, units, stimuli, part):
    lookup = dict(zip(map(tuple, units.tolist()), stimuli.tolist()))
    return {lookup[tuple(u)] for u in getattr(fold, part).tolist()}


@pytest.mark.parametrize("protocol", ["within-trial-kfold", "within-loto",
                                      "subject-stimulus-kfold"])
def test_a_clip_shown_in_every_session_is_held_out_in_all_of_them(protocol):
    units, sessions, stimuli, labels = _seed_like()
    folds = make_folds(units, protocol, n_splits=2, labels=labels, sessions=sessions,
                       stimuli=stimuli, seed=3)
    if protocol == "within-loto":
        assert len(folds) == N_CLIPS  # one fold per clip, not per trial id
    for f in folds:
        held = _stimuli_of(f, units, stimuli, "test")
        for part in ("train", "val", "pretrain"):
            assert held.isdisjoint(_stimuli_of(f, units, stimuli, part)), (f.fold, part)
        if protocol != "subject-stimulus-kfold":  # the clip, in all three sessions
            assert len(f.test) == len(held) * 4 * N_SESSIONS
    tested = np.concatenate([f.test for f in folds])
    if protocol != "subject-stimulus-kfold":
        assert len(np.unique(tested, axis=0)) == len(units)


def test_the_leakage_check_compares_stimuli_not_trial_ids():
    units, sessions, stimuli, _ = _seed_like(2)
    stimulus_of = dict(zip(map(tuple, units.tolist()), stimuli.tolist()))
    test, train = np.array([[1, 0]]), np.array([[1, 5], [2, 6]])  # trial 5 is clip 0 again
    fine = Fold(0, train, train[:0], test, train, held_out=("trial",))
    check_disjoint(fine)  # by trial id, 0 and 5 differ
    with pytest.raises(LeakageError, match="held-out stimulus 0 of the test set is also in "
                                           "train"):
        check_disjoint(Fold(0, train, train[:0], test, train, held_out=("trial",),
                            stimulus_of=stimulus_of))


def test_cross_session_tests_each_session_on_a_model_of_the_others():
    units, sessions, stimuli, labels = _seed_like()
    folds = make_folds(units, "cross-session", labels=labels, sessions=sessions,
                       stimuli=stimuli, seed=1)
    assert len(folds) == N_SESSIONS
    session_of = dict(zip(map(tuple, units.tolist()), sessions.tolist()))
    tested = []
    for f in folds:
        held = {session_of[tuple(u)] for u in f.test.tolist()}
        assert len(held) == 1 and len(f.test) == 4 * N_CLIPS  # every subject, one session
        tested += sorted(held)
        for part in ("train", "val", "pretrain"):
            assert held.isdisjoint(session_of[tuple(u)] for u in getattr(f, part).tolist())
        # validation: whole clips of the training sessions
        val_clips = _stimuli_of(f, units, stimuli, "val")
        assert val_clips and val_clips.isdisjoint(_stimuli_of(f, units, stimuli, "train"))
        # the clips of the test session are in training: the caveat's point
        assert _stimuli_of(f, units, stimuli, "test") <= (
            _stimuli_of(f, units, stimuli, "train") | val_clips)
        assert f.held_out == ("session",)
    assert tested == ["1", "2", "3"]
    # a held-out session in pre-training is a leak
    f = folds[0]
    with pytest.raises(LeakageError, match="held-out session 1 of the test set is also in "
                                           "pretrain"):
        check_disjoint(Fold(0, f.train, f.val, f.test, np.vstack([f.pretrain, [[9, 0]]]),
                            held_out=f.held_out, stimulus_of=f.stimulus_of,
                            session_of={**f.session_of, (9, 0): "1"}))
    assert "same clips" in PROTOCOLS["cross-session"].caveat


def test_cross_session_refuses_single_session_data_in_one_line():
    units = np.array([(s, t) for s in (1, 2) for t in range(4)])
    for kwargs in ({}, {"sessions": ["0"] * len(units)}):
        with pytest.raises(PhysioSyncError, match=r"cross-session needs data recorded in two or "
                                                  r"more sessions; these data have one \(0\)"):
            make_folds(units, "cross-session", **kwargs)


def test_session_split_trains_on_the_first_trials_of_every_session():
    units, sessions, stimuli, labels = _seed_like()
    (f,) = make_folds(units, "session-split", labels=labels, sessions=sessions,
                      stimuli=stimuli, train_trials=3, val_size=0.34, seed=0)
    position = units[:, 1] % N_CLIPS  # place in its session
    first = {tuple(u) for u in units[position < 3].tolist()}
    assert {tuple(u) for u in np.vstack([f.train, f.val]).tolist()} == first
    assert {tuple(u) for u in f.test.tolist()} == {tuple(u) for u in units[position >= 3]}
    assert len(f.val) and _stimuli_of(f, units, stimuli, "val").isdisjoint(
        _stimuli_of(f, units, stimuli, "train"))
    assert {tuple(u) for u in f.pretrain.tolist()} == first
    # presentation order is the trial id, whatever order the units come in
    shuffled = np.random.default_rng(0).permutation(len(units))
    (g,) = make_folds(units[shuffled], "session-split", sessions=sessions[shuffled],
                      stimuli=stimuli[shuffled], train_trials=3, val_size=0)
    assert {tuple(u) for u in g.test.tolist()} == {tuple(u) for u in f.test.tolist()}


def test_session_split_refuses_what_it_cannot_split():
    units, sessions, stimuli, _ = _seed_like(2)
    with pytest.raises(PhysioSyncError, match=r"protocol.train_trials"):
        make_folds(units, "session-split", sessions=sessions, stimuli=stimuli)
    with pytest.raises(PhysioSyncError, match="train_trials = 5 leaves no test trial in subject "
                                              "1's session '1', which has 5 trials"):
        make_folds(units, "session-split", sessions=sessions, train_trials=5)
    # subjects who saw the clips in other orders: a first trial of one is a test clip of
    # another, which the leakage check refuses
    stimuli = stimuli.copy()
    stimuli[:N_CLIPS] = stimuli[:N_CLIPS][::-1]
    with pytest.raises(LeakageError, match="do not show the clips in one order"):
        make_folds(units, "session-split", sessions=sessions, stimuli=stimuli, train_trials=2,
                   val_size=0)


def _digest(folds) -> str:
    return hashlib.sha256(json.dumps([f.manifest() for f in folds]).encode()).hexdigest()[:16]


#: sha256 (first 16 hex digits) of the fold manifests that the code before sessions and
#: stimuli existed made on DEAP-sized (32 subjects x 40 videos) and DREAMER-sized (23 x 18)
#: units, labels drawn with seed 0: their folds must not change.
BEFORE = {
    "within-trial-kfold 32x40": "5ffe39a3b0a12091",
    "within-trial-kfold 23x18": "3d1437d26e7f0dcd",
    "within-loto 32x40": "4c64e6068c8212de",
    "within-loto 23x18": "86a8180d7d7b15f6",
    "loso 32x40": "92b1a810ab04bb01",
    "loso 23x18": "aaaa1dbea4925edf",
    "subject-kfold 32x40": "71c497c41d6e9612",
    "subject-kfold 23x18": "281ea52012c1f166",
    "subject-stimulus-kfold 32x40": "61f02be2cd896282",
    "subject-stimulus-kfold 23x18": "e6cb0e4ec389cefc",
    "legacy-segment 32x40": "1e999daee25c49d4",
    "legacy-segment 23x18": "de035194df706b9a",
}


def _single_session(n_subjects, n_trials):
    units = np.array([(s, t) for s in range(1, n_subjects + 1) for t in range(n_trials)])
    labels = np.random.default_rng(0).integers(0, 2, len(units))
    return units, labels


@pytest.mark.parametrize("size", [(32, 40), (23, 18)])
@pytest.mark.parametrize("protocol", ["within-trial-kfold", "within-loto", "loso",
                                      "subject-kfold", "subject-stimulus-kfold",
                                      "legacy-segment"])
def test_single_session_folds_are_those_of_before(protocol, size):
    units, labels = _single_session(*size)
    kwargs = dict(n_splits=4, labels=labels, seed=7, n_windows=3)
    folds = make_folds(units, protocol, **kwargs)
    assert _digest(folds) == BEFORE[f"{protocol} {size[0]}x{size[1]}"]
    # the defaults spelled out (one session, stimulus = trial) give the same folds
    explicit = make_folds(units, protocol, sessions=["0"] * len(units), stimuli=units[:, 1],
                          **kwargs)
    assert _digest(explicit) == _digest(folds)
    assert all(f.stimulus_of is None and f.session_of is None for f in folds)


def test_the_declarations_the_session_protocols_read_are_checked():
    from physiosync.dataset_specs import DatasetSpec
    from physiosync.params import ProtocolTraits

    with pytest.raises(PhysioSyncError, match="session_train_trials must be a positive integer"):
        DatasetSpec("x", "X", "m:X", ("eeg",), ("eeg",), (1, 9), 5.0, ("valence",), "x",
                    session_train_trials=0)
    with pytest.raises(PhysioSyncError, match="first_trials holds out trials"):
        ProtocolTraits("x", ("session",), first_trials=True)
    with pytest.raises(PhysioSyncError, match="need one entry per unit"):
        make_folds(np.array([[1, 0], [1, 1]]), "cross-session", sessions=["a"])

"""The (subject, trial, window) grid, the inter-subject synchrony sampler, augmentation."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import torch

from physiosync import PhysioSyncError
from physiosync.exceptions import InputShapeError
from physiosync.training.augment import N_KINDS, augment
from physiosync.datasets import DEAP
from physiosync.preprocessing.cache import PreparedSubject, prepare
from physiosync.training.sampling import SlotBatch, SlotData, SynchronySampler
from physiosync.preprocessing.windows import make_windows


# ----------------------------------------------------------------------------- SlotData
def _subject(subject, trials, seconds, valence):
    """A prepared subject whose samples encode (subject, trial, channel, time)."""
    n_e = int(128 * seconds)
    t = np.arange(n_e, dtype=np.float32)
    eeg = np.stack([np.stack([1e6 * subject + 1e4 * tr + 1e3 * ch + t for ch in range(2)])
                    for tr in trials]).astype(np.float32)
    gsr = eeg[:, :1] + 0.5
    ratings = pd.DataFrame({"valence": valence, "arousal": [5.0] * len(trials)},
                           index=pd.Index(trials, name="trial"))
    return PreparedSubject(subject, "DEAP", {"eeg": eeg, "gsr": gsr},
                           {"eeg": 128.0, "gsr": 128.0},
                           {"eeg": ["a", "b"], "gsr": ["g"]}, ratings, float(seconds))


@pytest.fixture(scope="module")
def ragged_windows():
    """Two subjects with different trials and durations (2 and 1 windows of 5 s)."""
    prepared = {4: _subject(4, [0, 1, 2], 10.0, [7.0, 2.0, 6.0]),
                9: _subject(9, [1, 2, 3], 6.0, [1.0, 8.0, 3.0])}
    return make_windows(prepared, lengths=(5.0,))


@pytest.fixture(scope="module")
def deap_slots(deap_dat_dir):
    ws = make_windows(prepare(DEAP(deap_dat_dir), cache_dir=False), lengths=(5.0,))
    return ws, SlotData.from_windows(ws, 5.0, target="valence")


def test_slotdata_shape_validation():
    x = torch.zeros(2, 3, 4, 5, 6)
    valid = np.ones((2, 3, 4), bool)
    data = SlotData({"eeg": x, "gsr": torch.zeros(2, 3, 4, 1, 12)}, valid, [1, 2], [0, 1, 2])
    assert data.shape == (2, 3, 4) and data.modalities == ("eeg", "gsr")
    assert data.n_chans("gsr") == 1 and data.n_times("gsr") == 12 and data.n_times("eeg") == 6
    with pytest.raises(PhysioSyncError, match=r"valid has shape \(2, 3\).*expected"):
        SlotData({"eeg": x}, valid[:, :, 0], [1, 2], [0, 1, 2])
    with pytest.raises(PhysioSyncError, match="3 subjects"):
        SlotData({"eeg": x}, valid, [1, 2, 3], [0, 1, 2])
    with pytest.raises(PhysioSyncError, match="4 trials"):
        SlotData({"eeg": x}, valid, [1, 2], [0, 1, 2, 3])
    with pytest.raises(PhysioSyncError, match=r"eeg windows have shape \(2, 3, 5, 5, 6\)"):
        SlotData({"eeg": torch.zeros(2, 3, 5, 5, 6)}, valid, [1, 2], [0, 1, 2])
    with pytest.raises(PhysioSyncError, match="gsr windows have shape"):
        SlotData({"eeg": x, "gsr": torch.zeros(2, 3, 4, 6)}, valid, [1, 2], [0, 1, 2])


def test_from_windows_layout_with_missing_trials_and_windows(ragged_windows):
    ws = ragged_windows
    data = SlotData.from_windows(ws, 5.0, target="valence")
    assert data.subjects == [4, 9]
    assert data.trials == [0, 1, 2, 3]  # union of the subjects' trials, sorted
    assert data.shape == (2, 4, 2)
    assert data.x["eeg"].shape == (2, 4, 2, 2, 640) and data.x["gsr"].shape == (2, 4, 2, 1, 640)
    assert data.x["eeg"].dtype == torch.float32
    expected_valid = np.array([[[1, 1], [1, 1], [1, 1], [0, 0]],
                               [[0, 0], [1, 0], [1, 0], [1, 0]]], bool)
    np.testing.assert_array_equal(data.valid, expected_valid)
    # Labels per (subject, trial): valence >= 5 is high; -1 where the subject lacks the trial.
    np.testing.assert_array_equal(data.labels, [[1, 0, 1, -1], [-1, 0, 1, 0]])
    for i, s in enumerate(data.subjects):
        p = ws.prepared[s]
        for k, trial in enumerate(p.trials):
            for w in range(ws.n_windows(5.0, s)):
                for m in ("eeg", "gsr"):
                    np.testing.assert_array_equal(
                        data.x[m][i, data.trials.index(int(trial)), w].numpy(),
                        ws.windows(s, m, 5.0)[k, w])
    # Cells without data are zeros; no labels without a target; modality subset.
    assert not data.x["eeg"][1, 0].any() and not data.x["eeg"][1, 1, 1].any()
    assert SlotData.from_windows(ws, 5.0).labels is None
    assert SlotData.from_windows(ws, 5.0, modalities=["gsr"]).modalities == ("gsr",)


def test_from_windows_on_prepared_deap(deap_slots):
    ws, data = deap_slots
    assert data.shape == (3, 4, 2) and data.valid.all()
    assert data.x["eeg"].shape[3:] == (32, 640) and data.x["gsr"].shape[3:] == (1, 640)
    for i, s in enumerate(data.subjects):
        np.testing.assert_array_equal(data.labels[i], ws.prepared[s].labels("valence"))
    np.testing.assert_array_equal(data.x["eeg"][2, 3, 1].numpy(), ws.windows(3, "eeg", 5.0)[3, 1])


def test_gather_whole_and_sub_windows(deap_slots):
    _, data = deap_slots
    s = torch.tensor([0, 2, 1, 2, 0])
    t = torch.tensor([3, 0, 1, 1, 3])
    w = torch.tensor([1, 0, 1, 1, 0])
    for m in ("eeg", "gsr"):
        whole = data.gather(m, s, t, w)
        assert whole.shape == (5, data.n_chans(m), 640)
        for k in range(5):
            torch.testing.assert_close(whole[k], data.x[m][s[k], t[k], w[k]], rtol=0, atol=0)
        sub = torch.tensor([0, 4, 2, 3, 1])
        part = data.gather(m, s, t, w, n_sub=5, sub=sub)
        assert part.shape == (5, data.n_chans(m), 128)
        for k in range(5):
            j = int(sub[k])
            torch.testing.assert_close(
                part[k], data.x[m][s[k], t[k], w[k], :, 128 * j:128 * (j + 1)], rtol=0, atol=0)
        # Sub-windows of an uneven split drop the tail: 640 // 3 = 213 samples each.
        part3 = data.gather(m, s, t, w, n_sub=3, sub=torch.tensor([2, 0, 1, 2, 0]))
        assert part3.shape[-1] == 213
        torch.testing.assert_close(part3[0], data.x[m][0, 3, 1, :, 426:639], rtol=0, atol=0)



# ------------------------------------------------- units (subject, trial) and cells (s, t, w)
def test_description_lists_the_units_in_grid_order(ragged_windows):
    data = SlotData.from_windows(ragged_windows, 5.0, target="valence")
    table = data.description
    assert list(table.columns) == ["subject", "session", "trial", "s", "t", "n_windows", "label"]
    assert set(table["session"]) == {"0"}  # recorded in one session
    # Subject 4 has trials 0-2 (two windows each), subject 9 trials 1-3 (one window each).
    assert table[["subject", "trial"]].to_numpy().tolist() == [
        [4, 0], [4, 1], [4, 2], [9, 1], [9, 2], [9, 3]]
    assert table[["s", "t"]].to_numpy().tolist() == [[0, 0], [0, 1], [0, 2], [1, 1], [1, 2],
                                                     [1, 3]]
    assert table["n_windows"].tolist() == [2, 2, 2, 1, 1, 1]
    assert table["label"].tolist() == [1, 0, 1, 0, 1, 0]
    assert all(table[c].dtype == np.int64 for c in table.columns if c != "session")
    assert table["n_windows"].sum() == data.valid.sum()
    assert "label" not in SlotData.from_windows(ragged_windows, 5.0).description
    # It follows the data: a copy with other labels describes those.
    other = SlotData(data.x, data.valid, data.subjects, data.trials, 1 - data.labels)
    assert other.description["label"].tolist() == [0, 1, 0, 1, 0, 1]


def test_cells_of_units_round_trip_in_the_documented_order(ragged_windows):
    data = SlotData.from_windows(ragged_windows, 5.0, target="valence")
    units = np.array([[9, 3], [4, 2], [9, 1], [4, 0]])
    np.testing.assert_array_equal(data.locate(units), [[1, 3], [0, 2], [1, 1], [0, 0]])
    np.testing.assert_array_equal(data.units_of(data.locate(units)), units)
    # "grid": every valid cell of the units once, sorted by (s, t, w), whatever the order.
    cells = data.cells(units)
    assert cells.dtype == np.int64 and cells.shape == (6, 3)
    np.testing.assert_array_equal(cells, [[0, 0, 0], [0, 0, 1], [0, 2, 0], [0, 2, 1],
                                          [1, 1, 0], [1, 3, 0]])
    np.testing.assert_array_equal(cells, data.cells(units[::-1]))
    assert data.valid[tuple(cells.T)].all()
    # "units": unit by unit in the given order; a repeated unit repeats its cells.
    by_unit = data.cells(units, order="units")
    np.testing.assert_array_equal(by_unit, [[1, 3, 0], [0, 2, 0], [0, 2, 1], [1, 1, 0],
                                            [0, 0, 0], [0, 0, 1]])
    assert len(data.cells(np.vstack([units, units[:1]]), order="units")) == 7
    # Cells map back to their units; all units give all valid cells.
    back = data.units_of(cells)
    assert {tuple(u) for u in back.tolist()} == {tuple(u) for u in units.tolist()}
    every = data.description[["subject", "trial"]].to_numpy()
    np.testing.assert_array_equal(data.cells(every), np.argwhere(data.valid))
    np.testing.assert_array_equal(data.units_of(data.cells(every))[:, 0],
                                  np.asarray(data.subjects)[np.argwhere(data.valid)[:, 0]])
    # A unit without windows has no cells; no units, no cells.
    assert data.cells([[4, 3]]).shape == (0, 3) and data.cells(np.zeros((0, 2))).shape == (0, 3)
    assert data.cells([], order="units").shape == (0, 3)
    with pytest.raises(PhysioSyncError, match=r"unit \(subject 5, trial 1\) is not in"):
        data.cells([[4, 1], [5, 1]])
    with pytest.raises(PhysioSyncError, match="order"):
        data.cells(units, order="time")
    with pytest.raises(PhysioSyncError, match=r"got shape \(3,\)"):
        data.units_of([0, 0, 1])


def test_from_arrays_builds_the_grid_of_from_windows(ragged_windows):
    """The estimator's constructor and from_windows agree on the same windows."""
    grid = SlotData.from_windows(ragged_windows, 5.0)
    cells = np.argwhere(grid.valid)
    shuffle = np.random.default_rng(0).permutation(len(cells))
    cells = cells[shuffle]  # input order is free
    ids = grid.units_of(cells)
    arrays = {m: grid.x[m][tuple(torch.from_numpy(cells).T)].numpy() for m in grid.modalities}
    data, where = SlotData.from_arrays(arrays, ids[:, 0], ids[:, 1], cells[:, 2])
    assert (data.subjects, data.trials) == (grid.subjects, grid.trials)
    pd.testing.assert_frame_equal(data.description, grid.description)
    np.testing.assert_array_equal(data.valid, grid.valid)
    for m in grid.modalities:
        torch.testing.assert_close(data.x[m], grid.x[m], rtol=0, atol=0)
    np.testing.assert_array_equal(where, cells)  # the cell of each input window, in order
    np.testing.assert_array_equal(data.units_of(where), ids)


def test_from_arrays_default_positions_and_errors():
    x = {"eeg": np.arange(5 * 2 * 4, dtype=np.float32).reshape(5, 2, 4)}
    data, cells = SlotData.from_arrays(x)  # no ids: one unit, windows in order
    assert data.subjects == [0] and data.trials == [0] and data.shape == (1, 1, 5)
    np.testing.assert_array_equal(cells, [[0, 0, w] for w in range(5)])
    subject, trial = np.array([7, 3, 7, 7, 3]), np.array([1, 2, 1, 0, 2])
    data, cells = SlotData.from_arrays(x, subject, trial)
    assert data.subjects == [3, 7] and data.trials == [0, 1, 2]
    # Without window positions, each unit's windows are numbered in order of appearance.
    np.testing.assert_array_equal(cells, [[1, 1, 0], [0, 2, 0], [1, 1, 1], [1, 0, 0],
                                          [0, 2, 1]])
    np.testing.assert_array_equal(data.x["eeg"][1, 1, 1].numpy(), x["eeg"][2])
    assert data.labels is None and data.description["n_windows"].tolist() == [2, 1, 2]
    with pytest.raises(PhysioSyncError, match="both subject and trial"):
        SlotData.from_arrays(x, subject=subject)
    with pytest.raises(InputShapeError, match="one entry per window"):
        SlotData.from_arrays(x, subject[:4], trial[:4])
    with pytest.raises(InputShapeError, match="non-negative"):
        SlotData.from_arrays(x, subject, trial, [0, 0, 1, -1, 1])
    with pytest.raises(PhysioSyncError, match="share the same"):
        SlotData.from_arrays(x, subject, trial, [0, 0, 0, 0, 1])


def test_from_windows_reads_read_only_views_without_warning(ragged_windows):
    prepared = {}
    for s, p in ragged_windows.prepared.items():
        data = {m: v.copy() for m, v in p.data.items()}
        for v in data.values():
            v.flags.writeable = False  # as the cache's memory maps
        prepared[s] = PreparedSubject(s, p.dataset, data, p.sfreq, p.ch_names, p.ratings,
                                      p.seconds)
    ws = make_windows(prepared, lengths=(5.0,))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        data = SlotData.from_windows(ws, 5.0)
    ref = SlotData.from_windows(ragged_windows, 5.0)
    for m in ref.modalities:
        torch.testing.assert_close(data.x[m], ref.x[m], rtol=0, atol=0)
        assert not np.shares_memory(data.x[m].numpy(), prepared[4].data[m])
        assert data.x[m].numpy().flags.writeable


# ---------------------------------------------------------------------- the sampler
def _drawn(batch: SlotBatch):
    s, t, w, sub = batch.flat_index
    return s.numpy(), t.numpy(), w.numpy(), sub.numpy()


def _check_batch(batch: SlotBatch, allowed: np.ndarray, b: int, n: int, n_sub: int):
    assert batch.groups.shape == (b, 2, n)
    assert batch.trial.shape == batch.window.shape == batch.sub.shape == batch.aug.shape == (b,)
    groups = batch.groups.numpy()
    for row in groups:
        g1, g2 = set(row[0]), set(row[1])
        assert len(g1) == n and len(g2) == n  # N distinct subjects per group
        assert not g1 & g2  # the two groups are disjoint
    s, t, w, sub = _drawn(batch)
    assert len(s) == 2 * b * n
    assert allowed[s, t, w].all()  # only allowed (subject, trial, window) cells
    assert ((sub >= 0) & (sub < n_sub)).all()
    # Group-major order: rows [g * B * N + i * N + k] = group g of slot i, subject k.
    s4 = s.reshape(2, b, n)
    np.testing.assert_array_equal(s4, groups.transpose(1, 0, 2))
    for arr, slot in ((t, batch.trial), (w, batch.window), (sub, batch.sub)):
        arr = arr.reshape(2, b, n)
        # Both groups of slot i see the same trial, window and sub-window.
        np.testing.assert_array_equal(arr[0], arr[1])
        np.testing.assert_array_equal(arr[0], np.repeat(slot.numpy()[:, None], n, 1))
    assert ((batch.aug >= 0) & (batch.aug < N_KINDS)).all()


@pytest.mark.parametrize("case", ["held-out-subject", "held-out-trials"])
@pytest.mark.parametrize("n_sub", [1, 5])
def test_sampler_draws_only_allowed_cells(case, n_sub):
    rng = np.random.default_rng(0)
    n_subj, n_trials, n_win = 9, 6, 4
    valid = np.ones((n_subj, n_trials, n_win), bool)
    valid[3, 2] = False  # subject 3 lacks trial 2
    valid[5, :, 3] = False  # subject 5 has a shorter recording
    allowed = valid.copy()
    if case == "held-out-subject":
        allowed[4] = False
        forbidden = lambda s, t, w: s == 4  # noqa: E731
    else:  # within-trial: trials 1 and 4 are test trials for every subject
        allowed[:, [1, 4]] = False
        forbidden = lambda s, t, w: np.isin(t, [1, 4])  # noqa: E731
    # A slot with fewer than 2N = 4 allowed subjects must be skipped altogether.
    allowed[:, 0, 2] = False
    allowed[rng.choice(n_subj, 3, replace=False), 0, 2] = True
    sampler = SynchronySampler(allowed, batch_slots=6, group_size=2, n_sub=n_sub, seed=3)
    seen = set()
    for step in range(200):
        batch = sampler.batch(step)
        _check_batch(batch, allowed, 6, 2, n_sub)
        s, t, w, _ = _drawn(batch)
        assert not forbidden(s, t, w).any()
        seen.update(zip(batch.trial.tolist(), batch.window.tolist()))
    assert (0, 2) not in seen
    usable = {(t, w) for t in range(n_trials) for w in range(n_win)
              if allowed[:, t, w].sum() >= 4}
    assert seen == usable  # and every usable slot does get drawn


def test_sampler_groups_vary_and_cover_subjects():
    allowed = np.ones((8, 4, 2), bool)
    sampler = SynchronySampler(allowed, batch_slots=4, group_size=3, seed=0)
    counts = np.zeros(8, int)
    for step in range(100):
        counts += np.bincount(sampler.batch(step).groups.numpy().ravel(), minlength=8)
    assert counts.sum() == 100 * 4 * 6
    # Subjects are drawn roughly uniformly (each expected 300 times).
    assert counts.min() > 200 and counts.max() < 400


def test_pool_maxes_over_each_group():
    groups = torch.tensor([[[0, 1], [2, 3]], [[4, 2], [1, 0]], [[3, 4], [0, 2]]])  # (B=3, 2, N=2)
    batch = SlotBatch(torch.tensor([0, 1, 2]), torch.zeros(3, dtype=torch.long),
                      torch.zeros(3, dtype=torch.long), groups, torch.zeros(3, dtype=torch.long))
    s, _, _, _ = batch.flat_index
    # Per-subject features: subject k has feature vector feats_by_subject[k].
    feats_by_subject = torch.tensor([[0.0, 9.0], [5.0, 1.0], [2.0, 2.0], [7.0, -1.0],
                                     [-3.0, 4.0]])
    slot_offset = torch.tensor([0.0, 100.0, 200.0]).repeat(2).repeat_interleave(2)
    features = feats_by_subject[s] + slot_offset[:, None]
    pooled = batch.pool(features)
    assert pooled.shape == (6, 2)
    for g in range(2):
        for i in range(3):
            want = feats_by_subject[groups[i, g]].amax(0) + 100.0 * i
            torch.testing.assert_close(pooled[g * 3 + i], want)
    # Gradients flow to the argmax rows only.
    f = features.clone().requires_grad_(True)
    batch.pool(f).sum().backward()
    assert f.grad.sum() == 6 * 2 and set(f.grad.unique().tolist()) == {0.0, 1.0}


def test_batches_are_a_pure_function_of_seed_and_step():
    allowed = np.ones((6, 5, 3), bool)
    a = SynchronySampler(allowed, batch_slots=4, group_size=2, n_sub=5, seed=11)
    b = SynchronySampler(allowed, batch_slots=4, group_size=2, n_sub=5, seed=11)
    c = SynchronySampler(allowed, batch_slots=4, group_size=2, n_sub=5, seed=12)
    later = [b.batch(step) for step in (40, 7, 3)]  # any call order
    for step, bb in zip((40, 7, 3), later):
        ab = a.batch(step)
        for name in ("trial", "window", "sub", "groups", "aug"):
            assert torch.equal(getattr(ab, name), getattr(bb, name)), name
        assert torch.equal(a.batch(step).groups, ab.groups)  # repeated call, same batch
    differs = [not (torch.equal(a.batch(k).groups, c.batch(k).groups)
                    and torch.equal(a.batch(k).trial, c.batch(k).trial)) for k in range(5)]
    assert all(differs)
    assert not torch.equal(a.batch(0).groups, a.batch(1).groups)


@pytest.mark.parametrize("n_sub", [1, 5])
def test_an_epoch_covers_every_usable_slot_once(n_sub):
    allowed = np.ones((5, 6, 4), bool)
    allowed[:, 5, 3] = False  # an unusable slot
    allowed[:2, 0, 0] = False  # only 3 subjects: unusable with N = 2 (needs 4)
    sampler = SynchronySampler(allowed, batch_slots=2, group_size=2, n_sub=n_sub, seed=5)
    usable = [(t, w, k) for t in range(6) for w in range(4) for k in range(n_sub)
              if allowed[:, t, w].sum() >= 4]
    assert sampler.n_slots == len(usable) == 22 * n_sub
    per_epoch = sampler.steps_per_epoch()
    assert per_epoch == len(usable) // 2
    for epoch in range(2):
        drawn = []
        for step in range(epoch * per_epoch, (epoch + 1) * per_epoch):
            bt = sampler.batch(step)
            drawn += list(zip(bt.trial.tolist(), bt.window.tolist(), bt.sub.tolist()))
        assert sorted(drawn) == sorted(usable), epoch
    order0 = [sampler.batch(k).trial.tolist() for k in range(per_epoch)]
    order1 = [sampler.batch(k + per_epoch).trial.tolist() for k in range(per_epoch)]
    assert order0 != order1  # reshuffled every epoch


def test_epoch_with_remainder_draws_no_slot_twice():
    allowed = np.ones((4, 7, 1), bool)  # 7 slots, batches of 3: one slot left over
    sampler = SynchronySampler(allowed, batch_slots=3, group_size=2, seed=0)
    assert sampler.steps_per_epoch() == 2
    drawn = [t for k in range(2) for t in sampler.batch(k).trial.tolist()]
    assert len(set(drawn)) == 6


def test_sampler_errors():
    with pytest.raises(PhysioSyncError, match=r"at least 4 allowed subjects \(at most 3"):
        SynchronySampler(np.ones((3, 5, 2), bool), batch_slots=4, group_size=2)
    # Enough subjects overall, but they never share a slot.
    disjoint = np.zeros((4, 4, 1), bool)
    for s in range(4):
        disjoint[s, s] = True
    with pytest.raises(PhysioSyncError, match="Only 0 stimulus slots"):
        SynchronySampler(disjoint, batch_slots=2, group_size=1)
    with pytest.raises(PhysioSyncError, match="need >= 8 slots"):
        SynchronySampler(np.ones((4, 3, 2), bool), batch_slots=8, group_size=2)
    with pytest.raises(PhysioSyncError, match="batch_slots must be >= 2"):
        SynchronySampler(np.ones((4, 3, 2), bool), batch_slots=1)
    with pytest.raises(PhysioSyncError, match="group_size must be >= 1"):
        SynchronySampler(np.ones((4, 3, 2), bool), group_size=0)
    with pytest.raises(PhysioSyncError, match=r"\(subjects, trials, windows\)"):
        SynchronySampler(np.ones((4, 3), bool))
    # group_size 1 with 2 subjects works.
    bt = SynchronySampler(np.ones((2, 3, 1), bool), batch_slots=3, group_size=1).batch(0)
    assert all(sorted(r) == [0, 1] for r in bt.groups.view(3, 2).tolist())


# ---------------------------------------------------------------------- augmentation
def _signal(k=6, c=4, t=6000, dtype=torch.float32, seed=0):
    g = torch.Generator().manual_seed(seed)
    base = torch.randn(k, c, t, generator=g, dtype=torch.float64)
    trend = torch.linspace(0, 3, t, dtype=torch.float64)
    return (3.0 * base + trend + torch.arange(k, dtype=torch.float64).view(k, 1, 1)).to(dtype)


def test_identity_kind_returns_the_input():
    x = _signal()
    out = augment(x, torch.zeros(6, dtype=torch.long), generator=torch.Generator().manual_seed(1))
    assert torch.equal(out, x)
    assert out.shape == x.shape and out.dtype == x.dtype


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_scaling_kinds(dtype):
    x = _signal(k=40, t=500, dtype=dtype)
    kinds = torch.tensor([1, 2] * 20)
    x_before = x.clone()
    out = augment(x, kinds, generator=torch.Generator().manual_seed(0))
    assert torch.equal(x, x_before)  # input untouched
    assert out.dtype == dtype and out.shape == x.shape
    ratio = (out.flatten(1).norm(dim=1) / x.flatten(1).norm(dim=1)).double()
    low, high = ratio[kinds == 1], ratio[kinds == 2]
    assert ((low >= 0.7 - 1e-6) & (low <= 0.8 + 1e-6)).all()
    assert ((high >= 1.2 - 1e-6) & (high <= 1.3 + 1e-6)).all()
    # A pure rescaling (no noise), with a different factor per row.
    torch.testing.assert_close(out, x * ratio.to(dtype).view(-1, 1, 1))
    assert low.std() > 0.01 and high.std() > 0.01
    assert low.min() < 0.73 and low.max() > 0.77  # the range is used, not one value


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_noise_kinds_give_5_db_snr(dtype):
    x = _signal(k=6, dtype=dtype)
    kinds = torch.tensor([3, 4, 5, 3, 4, 5])
    out = augment(x, kinds, generator=torch.Generator().manual_seed(2))
    assert out.dtype == dtype
    for i, kind in enumerate(kinds.tolist()):
        xi, oi = x[i].double().flatten(), out[i].double().flatten()
        alpha = float(oi @ xi / (xi @ xi))  # least-squares estimate of the scaling
        lo, hi = {3: (1.0, 1.0), 4: (0.7, 0.8), 5: (1.2, 1.3)}[kind]
        assert lo - 0.02 <= alpha <= hi + 0.02
        if kind == 3:
            alpha = 1.0
        noise = oi - alpha * xi
        snr = 10 * np.log10(float((alpha * xi).var() / noise.var()))
        assert snr == pytest.approx(5.0, abs=0.5), (kind, snr)
        assert abs(float(noise.mean())) < 0.1 * float(noise.std())  # zero-mean white noise
    # Another SNR is honoured too.
    out10 = augment(x, torch.full((6,), 3), snr_db=10.0, generator=torch.Generator().manual_seed(2))
    n10 = (out10 - x).double()
    snr10 = 10 * torch.log10(x.double().flatten(1).var(1) / n10.flatten(1).var(1))
    assert torch.allclose(snr10, torch.full_like(snr10, 10.0), atol=0.5)


def test_augment_randomness_follows_the_generator():
    x = _signal(k=8, t=300)
    kinds = torch.arange(8) % N_KINDS
    a = augment(x, kinds, generator=torch.Generator().manual_seed(0))
    b = augment(x, kinds, generator=torch.Generator().manual_seed(0))
    c = augment(x, kinds, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a, b)
    changed = kinds != 0
    assert not torch.equal(a[changed], c[changed])
    for i in torch.nonzero(changed).flatten().tolist():
        assert not torch.equal(a[i], c[i])
    assert torch.equal(a[kinds == 0], x[kinds == 0]) and torch.equal(c[kinds == 0], x[kinds == 0])


def test_augment_small_batches_and_shapes():
    x = torch.randn(3, 1, 128, dtype=torch.float64)
    out = augment(x, torch.tensor([5, 0, 2]), generator=torch.Generator().manual_seed(0))
    assert out.shape == (3, 1, 128) and out.dtype == torch.float64
    assert torch.isfinite(out).all()
    zeros = torch.zeros(2, 2, 50)  # silent windows stay silent (noise scales with the signal)
    assert torch.equal(augment(zeros, torch.tensor([3, 5])), zeros)

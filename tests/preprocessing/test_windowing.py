"""Aligned multi-length windows: views, alignment across rates, sub-windows."""

import numpy as np
import pandas as pd
import pytest

from physiosync import PhysioSyncError
from physiosync.datasets import DEAP
from physiosync.preprocessing.cache import PreparedSubject, prepare
from physiosync.preprocessing.windows import make_windows, split_sub_windows


@pytest.fixture(scope="module")
def windows(deap_dat_dir):
    prepared = prepare(DEAP(deap_dat_dir), cache_dir=False)
    return make_windows(prepared, lengths=(1.0, 5.0))


def test_window_shapes_and_views(windows):
    w5 = windows.windows(1, "eeg", 5.0)
    w1 = windows.windows(1, "gsr", 1.0)
    assert w5.shape == (4, 2, 32, 640)
    assert w1.shape == (4, 10, 1, 128)
    base = windows.prepared[1].data["eeg"]
    assert np.shares_memory(w5, base)  # a view, not a copy
    np.testing.assert_array_equal(w5[2, 1], base[2, :, 640:1280])


def test_each_long_window_holds_five_short_ones(windows):
    sub = windows.sub_windows(5.0, 1.0)
    np.testing.assert_array_equal(sub, [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9]])
    w5, w1 = windows.windows(2, "eeg", 5.0), windows.windows(2, "eeg", 1.0)
    for j, row in enumerate(sub):
        np.testing.assert_array_equal(w5[3, j], np.concatenate(list(w1[3, row]), axis=-1))



@pytest.mark.parametrize("kind", ["numpy", "torch"])
def test_split_sub_windows_is_a_view_in_equal_consecutive_pieces(kind):
    torch = pytest.importorskip("torch")
    base = np.arange(2 * 3 * 12, dtype=np.float32).reshape(2, 3, 12)
    x = base if kind == "numpy" else torch.from_numpy(base)
    parts = split_sub_windows(x, 4)
    assert type(parts) is type(x) and tuple(parts.shape) == (2, 3, 4, 3)
    np.testing.assert_array_equal(np.asarray(parts), base.reshape(2, 3, 4, 3))
    shared = (np.shares_memory(parts, base) if kind == "numpy"
              else parts.data_ptr() == x.data_ptr())
    assert shared  # no copy
    # An uneven split drops the last n_times % n_sub samples: 12 // 5 = 2 samples each.
    odd = split_sub_windows(x, 5)
    assert tuple(odd.shape) == (2, 3, 5, 2)
    np.testing.assert_array_equal(np.asarray(odd), base[..., :10].reshape(2, 3, 5, 2))
    np.testing.assert_array_equal(np.asarray(split_sub_windows(x, 1))[..., 0, :], base)
    for bad in (0, 13):
        with pytest.raises(PhysioSyncError, match=f"n_sub={bad}"):
            split_sub_windows(x, bad)


def test_split_sub_windows_cuts_the_short_windows_of_the_window_set(windows):
    """With the default strides, cutting long windows gives the short windows."""
    index = windows.sub_windows(5.0, 1.0)
    for m in ("eeg", "gsr"):
        cut = split_sub_windows(windows.windows(1, m, 5.0), 5)  # (trials, 2, C, 5, L / 5)
        short = windows.windows(1, m, 1.0)[:, index]  # (trials, 2, 5, C, L / 5)
        np.testing.assert_array_equal(cut.swapaxes(-3, -2), short)


def test_the_model_and_the_sampler_cut_the_same_short_windows(deap_dat_dir):
    """The fine-tuned model's short encoders see the sub-windows pre-training sees."""
    torch = pytest.importorskip("torch")
    from physiosync.models.physiosync import PhysioSyncNet
    from physiosync.params import FinetuneConfig, PretrainConfig
    from physiosync.training.sampling import SlotData

    data = SlotData.from_windows(
        make_windows(prepare(DEAP(deap_dat_dir), cache_dir=False), lengths=(5.0,)), 5.0)
    enc = PretrainConfig(embed_dim=8, depth=1, n_heads=1, n_prompts=0, embedding="spectral")
    net = PhysioSyncNet({m: data.n_chans(m) for m in data.modalities},
                        {m: data.n_times(m) for m in data.modalities}, 5, 2,
                        FinetuneConfig(use_long=False), enc, enc).eval()
    seen = {}
    for m in data.modalities:  # the input of each short encoder
        net.short[m].register_forward_pre_hook(lambda mod, args, m=m: seen.update({m: args[0]}))
    s, t, w = torch.tensor([0, 2, 1]), torch.tensor([3, 0, 1]), torch.tensor([1, 0, 1])
    with torch.no_grad():
        net.features({m: data.gather(m, s, t, w) for m in data.modalities})
    for m in data.modalities:
        short = seen[m].view(3, 5, data.n_chans(m), 128)  # window-major, then sub-window
        for k in range(5):
            sub = data.gather(m, s, t, w, n_sub=5, sub=torch.full((3,), k))
            torch.testing.assert_close(short[:, k], sub, rtol=0, atol=0)


def test_metadata_and_labels(windows):
    meta = windows.metadata(5.0)
    assert list(meta.columns) == ["subject", "session", "trial", "window", "onset_s", "start_eeg",
                                  "start_gsr"]
    assert len(meta) == 3 * 4 * 2
    assert not meta.duplicated(["subject", "trial", "window"]).any()
    labels = windows.labels(5.0, "valence")
    prep = windows.prepared[3]
    rows = meta.index[(meta.subject == 3) & (meta.trial == 1)]
    assert set(labels[rows]) == {prep.labels("valence")[1]}


def test_get_gathers_the_right_windows(windows):
    meta = windows.metadata(1.0)
    rows = np.array([0, 17, len(meta) - 1, 5])
    batch = windows.get("eeg", 1.0, rows)
    assert batch.shape == (4, 32, 128) and batch.dtype == np.float32
    for b, r in zip(batch, rows):
        m = meta.iloc[r]
        np.testing.assert_array_equal(
            b, windows.windows(int(m.subject), "eeg", 1.0)[int(m.trial), int(m.window)])


def test_to_sklearn_gives_windows_labels_and_the_ids_fit_takes(windows):
    X, y, ids = windows.to_sklearn(5.0, target="valence")
    meta = windows.metadata(5.0)
    assert X.shape == (len(meta), 33, 640) and X.dtype == np.float32
    assert list(ids.columns) == ["subject", "session", "trial", "window"]
    pd.testing.assert_frame_equal(ids, meta[["subject", "session", "trial", "window"]])
    assert set(ids["session"]) == {"0"}  # DEAP: one session
    np.testing.assert_array_equal(y, windows.labels(5.0, "valence"))
    rows = np.arange(len(meta))
    np.testing.assert_array_equal(X[:, :32], windows.get("eeg", 5.0, rows))  # EEG first
    np.testing.assert_array_equal(X[:, 32:], windows.get("gsr", 5.0, rows))
    # the keyword arguments of PhysioSyncClassifier.fit, no more
    import inspect

    from physiosync import PhysioSyncClassifier
    assert set(ids) <= set(inspect.signature(PhysioSyncClassifier.fit).parameters)


def test_to_sklearn_subsets_modalities_subjects_and_unstacks(windows):
    X, y, ids = windows.to_sklearn(5.0, "arousal", modalities=["eeg"], subjects=[2, 3])
    assert X.shape == (2 * 4 * 2, 32, 640) and set(ids.subject) == {2, 3}
    assert ids.index.tolist() == list(range(len(ids)))  # positions, for X[train]
    rows = np.flatnonzero(windows.metadata(5.0).subject.isin([2, 3]))
    np.testing.assert_array_equal(y, windows.labels(5.0, "arousal")[rows])
    d, _, _ = windows.to_sklearn(5.0, "valence", stack=False)
    assert set(d) == {"eeg", "gsr"} and d["gsr"].shape[1:] == (1, 640)


def test_to_sklearn_refuses_what_it_cannot_give(windows):
    with pytest.raises(PhysioSyncError, match="No modality 'ecg'.*eeg"):
        windows.to_sklearn(5.0, "valence", modalities=["ecg"])
    with pytest.raises(PhysioSyncError, match="No subject 9"):
        windows.to_sklearn(5.0, "valence", subjects=[9])
    with pytest.raises(PhysioSyncError, match="No 2 s windows"):
        windows.to_sklearn(2.0, "valence")
    ws = make_windows({1: _fake()}, lengths=(1.0,))  # EEG 128 Hz, ECG 256 Hz
    with pytest.raises(PhysioSyncError, match="stack=False"):
        ws.to_sklearn(1.0, "valence")
    X, _, _ = ws.to_sklearn(1.0, "valence", stack=False)
    assert X["eeg"].shape[-1] == 128 and X["ecg"].shape[-1] == 256


def _fake(sfreq_ecg=256.0, seconds=10.0):
    n_e, n_c = int(128 * seconds), int(sfreq_ecg * seconds)
    t_e, t_c = np.arange(n_e) / 128.0, np.arange(n_c) / sfreq_ecg
    data = {"eeg": np.broadcast_to(t_e, (3, 2, n_e)).astype(np.float32),
            "ecg": np.broadcast_to(t_c, (3, 1, n_c)).astype(np.float32)}
    ratings = pd.DataFrame({"valence": [1, 3, 5], "arousal": [2, 4, 1]},
                           index=pd.Index([0, 1, 2], name="trial"))
    return PreparedSubject(1, "DREAMER", data, {"eeg": 128.0, "ecg": sfreq_ecg},
                           {"eeg": ["a", "b"], "ecg": ["c"]}, ratings, seconds)


def test_modalities_at_different_rates_stay_aligned_in_time():
    ws = make_windows({1: _fake()}, lengths=(1.0, 5.0))
    eeg, ecg = ws.windows(1, "eeg", 1.0), ws.windows(1, "ecg", 1.0)
    assert eeg.shape[-1] == 128 and ecg.shape[-1] == 256
    # Sample values are the time stamps, so equal first values mean equal onsets.
    np.testing.assert_allclose(eeg[:, :, 0, 0], ecg[:, :, 0, 0])
    meta = ws.metadata(1.0)
    np.testing.assert_array_equal(meta.start_ecg, 2 * meta.start_eeg)


def test_overlapping_strides():
    ws = make_windows({1: _fake()}, lengths=(2.0,), strides=(0.5,))
    w = ws.windows(1, "ecg", 2.0)
    assert w.shape == (3, 17, 1, 512)
    np.testing.assert_allclose(w[0, 3, 0, 0], 1.5)


def test_window_errors():
    with pytest.raises(PhysioSyncError, match="whole number of samples"):
        make_windows({1: _fake()}, lengths=(1.0 / 300,))
    with pytest.raises(PhysioSyncError, match="do not fit"):
        make_windows({1: _fake(seconds=4.0)}, lengths=(5.0,))
    ws = make_windows({1: _fake()}, lengths=(1.0,))
    with pytest.raises(PhysioSyncError, match="No 5 s windows"):
        ws.windows(1, "eeg", 5.0)
    with pytest.raises(PhysioSyncError, match="No modality 'gsr'"):
        ws.windows(1, "gsr", 1.0)


def test_dreamer_eeg_and_ecg_windows_align_at_native_rates(dreamer_mat, tmp_path):
    from physiosync.datasets import DREAMER

    dreamer = DREAMER(dreamer_mat)
    prepared = prepare(dreamer, cache_dir=tmp_path / "cache")
    rec = dreamer.load_subject(2)
    shortest = min(rec.stimulus_lengths("eeg")) / 128.0
    p = prepared[2]
    assert p.modalities == ("eeg", "ecg")
    assert p.seconds == pytest.approx(shortest)
    assert p.data["eeg"].shape[-1] * 2 == p.data["ecg"].shape[-1]
    ws = make_windows(prepared, lengths=(1.0,))
    eeg, ecg = ws.windows(2, "eeg", 1.0), ws.windows(2, "ecg", 1.0)
    assert eeg.shape[:2] == ecg.shape[:2] and ecg.shape[-1] == 256
    assert set(ws.labels(1.0, "valence")) <= {0, 1}
    # Without baseline removal and normalisation, window 3 of trial 1 is exactly
    # seconds 3-4 of that trial's stimulus, at each modality's own rate.
    from physiosync.params import PrepareParams

    raw_params = PrepareParams(modalities=("eeg", "ecg"), baseline="none",
                               norm={"eeg": "none", "ecg": "none"})
    ws = make_windows(prepare(dreamer, [2], params=raw_params, cache_dir=False), lengths=(1.0,))
    np.testing.assert_allclose(ws.windows(2, "ecg", 1.0)[1, 3],
                               rec.stimulus("ecg", 1)[:, 3 * 256:4 * 256], rtol=1e-6)
    np.testing.assert_allclose(ws.windows(2, "eeg", 1.0)[1, 3],
                               rec.stimulus("eeg", 1)[:, 3 * 128:4 * 128], rtol=1e-6)


def test_to_sklearn_ids_route_through_scikit_learn_cross_validation(windows):
    import sklearn
    from sklearn.model_selection import GroupKFold, cross_validate

    from physiosync import PhysioSyncClassifier

    X, y, ids = windows.to_sklearn(5.0, target="valence")
    clf = PhysioSyncClassifier(n_eeg_channels=32, embed_dim=10, depth=1, n_heads=2, n_prompts=1,
                               projector_dims=(16, 16), batch_slots=4, group_size=1,
                               pretrain_steps=2, epochs=1, val_size=0, random_state=0)
    with sklearn.config_context(enable_metadata_routing=True):
        clf.set_fit_request(subject=True, session=True, trial=True, window=True)
        out = cross_validate(clf, X, y, cv=GroupKFold(n_splits=3), return_estimator=True,
                             params={**ids, "groups": ids["subject"]}, error_score="raise")
    # each fold's model got the ids of its own training windows (2 subjects), and
    # pre-trained on them
    for est in out["estimator"]:
        assert set(est.history_) == {"pretrain_long", "pretrain_short", "finetune"}


def test_fit_refuses_trial_ids_that_restart_in_every_session():
    from physiosync import PhysioSyncClassifier

    X = np.zeros((4, 2, 64), dtype=np.float32)
    ids = {"subject": [1, 1, 1, 1], "session": ["1", "1", "2", "2"], "trial": [0, 0, 0, 0],
           "window": [0, 1, 0, 1]}
    with pytest.raises(PhysioSyncError, match="subject 1 trial 0 has windows of several "
                                              "sessions; number the trials across"):
        PhysioSyncClassifier(n_eeg_channels=1).fit(X, [0, 1, 0, 1], **ids)

"""Fine-tuning: the fusion network, its ablations, epoch selection, resume, learning."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from _numerics import above_chance

import physiosync.training.finetune as finetune_mod
from physiosync import PhysioSyncError
from physiosync.exceptions import TrainingDivergedError
from physiosync.training.checkpoints import CheckpointError, load_checkpoint, read_checkpoint
from physiosync.training.finetune import (
    FinetuneConfig, PhysioSyncNet, evaluate_cells, finetune, predict_proba,
)
from physiosync.params import PretrainConfig
from physiosync.models.physiosync import PretrainModel
from physiosync.training.sampling import SlotData
from physiosync._utils import derive_seed

N_CHANS = {"eeg": 32, "gsr": 1}
N_TIMES = {"eeg": 640, "gsr": 640}


def enc(**kw) -> PretrainConfig:
    """Tiny encoder sizes."""
    base = dict(embed_dim=8, depth=1, n_heads=2, n_prompts=1, projector_dims=(16, 16),
                cmca_dim=8)
    base.update(kw)
    return PretrainConfig(**base)


def ft(**kw) -> FinetuneConfig:
    base = dict(hidden=(16, 8), epochs=3, batch_size=16, seed=0)
    base.update(kw)
    return FinetuneConfig(**base)


def cells_of(data: SlotData, trials) -> np.ndarray:
    s, t, w = np.nonzero(data.valid)
    keep = np.isin(t, list(trials))
    return np.column_stack([s[keep], t[keep], w[keep]])


@pytest.fixture(scope="module")
def split(strong_deap_slots):
    """Training trials 0-3, validation trial 4 (from the training side), test trial 5."""
    data = strong_deap_slots
    return data, cells_of(data, range(4)), cells_of(data, [4]), cells_of(data, [5])


def state_equal(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# --------------------------------------------------------------------- the network
def test_forward_shapes_deap():
    torch.manual_seed(0)
    net = PhysioSyncNet(N_CHANS, N_TIMES, 5, 2, ft(), enc(), enc(embed_dim=4))
    x = {"eeg": torch.randn(3, 32, 640), "gsr": torch.randn(3, 1, 640)}
    net.eval()
    logits = net(x)
    assert logits.shape == (3, 2) and torch.isfinite(logits).all()
    long_feats, short_feats = net.features(x)
    assert [f.shape for f in long_feats] == [(3, 32), (3, 32)]  # 4 * embed_dim 8
    assert [f.shape for f in short_feats] == [(3, 5, 16), (3, 5, 16)]  # 4 * embed_dim 4
    assert net.embed(x).shape == (3, 2 * (32 + 5 * 16))
    assert net.head.in_features == 2 * (32 + 5 * 16)
    assert net.long["eeg"].n_times == 640 and net.short["eeg"].n_times == 128
    assert net.short["gsr"].n_chans == 1
    enc_dict = net.encoders()
    assert set(enc_dict) == {"long", "short"} and set(enc_dict["short"]) == {"eeg", "gsr"}
    # The short features of sub-window k are the short encoder applied to that second.
    k = 3
    direct = net.short["eeg"](x["eeg"][:, :, 128 * k:128 * (k + 1)])
    torch.testing.assert_close(short_feats[0][:, k], direct)
    assert PhysioSyncNet(N_CHANS, N_TIMES, 5, 4, ft(), enc())(x).shape == (3, 4)


@pytest.mark.parametrize("variant", ["eeg-only", "long-only", "short-only", "no-gate"])
def test_ablation_networks(variant):
    cfg = {"eeg-only": ft(modalities=("eeg",)), "long-only": ft(use_short=False),
           "short-only": ft(use_long=False), "no-gate": ft(gate=False)}[variant]
    net = PhysioSyncNet(N_CHANS, N_TIMES, 5, 2, cfg, enc()).eval()
    x = {"eeg": torch.randn(2, 32, 640), "gsr": torch.randn(2, 1, 640)}
    assert net(x).shape == (2, 2)
    n_mod = 1 if variant == "eeg-only" else 2
    per_mod = (32 if variant != "short-only" else 0) + (5 * 32 if variant != "long-only" else 0)
    assert net.head.in_features == n_mod * per_mod == net.embed(x).shape[1]
    if variant == "eeg-only":
        assert net.modalities == ("eeg",) and set(net.long) == {"eeg"}
        assert net({"eeg": x["eeg"]}).shape == (2, 2)  # no GSR needed
    if variant == "long-only":
        assert net.short is None and net.head.short_probe is None
    if variant == "short-only":
        assert net.long is None and net.head.long_probe is None
    if variant == "no-gate":
        assert net.head.long_probe is None and net.head.short_probe is None


def test_input_shape_errors_state_the_expected_shape():
    net = PhysioSyncNet(N_CHANS, N_TIMES, 5, 2, ft(), enc()).eval()
    good = {"eeg": torch.randn(2, 32, 640), "gsr": torch.randn(2, 1, 640)}
    for bad, pattern in (
            ({**good, "eeg": torch.randn(2, 32, 600)},
             r"eeg input has shape \(2, 32, 600\); expected \(batch, 32, 640\)"),
            ({**good, "gsr": torch.randn(2, 2, 640)}, r"expected \(batch, 1, 640\)"),
            ({**good, "eeg": torch.randn(32, 640)}, r"expected \(batch, 32, 640\)"),
            ({"eeg": good["eeg"]}, "missing input for modality 'gsr'")):
        with pytest.raises(PhysioSyncError, match=pattern):
            net(bad)
    with pytest.raises(PhysioSyncError, match="do not split into 3"):
        PhysioSyncNet(N_CHANS, N_TIMES, 3, 2, ft(), enc())
    with pytest.raises(PhysioSyncError, match=r"modalities \['ecg'\]"):
        PhysioSyncNet(N_CHANS, N_TIMES, 5, 2, ft(modalities=("eeg", "ecg")), enc())
    with pytest.raises(PhysioSyncError, match="use_long and use_short"):
        FinetuneConfig(use_long=False, use_short=False)
    with pytest.raises(PhysioSyncError, match="select"):
        FinetuneConfig(select="test_accuracy")


def test_long_only_network_accepts_any_window_length():
    net = PhysioSyncNet({"eeg": 4}, {"eeg": 642}, 5, 2, ft(use_short=False), enc()).eval()
    assert net({"eeg": torch.randn(2, 4, 642)}).shape == (2, 2)


def test_load_pretrained_copies_encoder_weights():
    torch.manual_seed(1)
    long = PretrainModel(N_CHANS, N_TIMES, enc())
    short = PretrainModel(N_CHANS, {"eeg": 128, "gsr": 128}, enc(embed_dim=4))
    torch.manual_seed(2)
    net = PhysioSyncNet(N_CHANS, N_TIMES, 5, 2, ft(), enc(), enc(embed_dim=4))
    assert not state_equal(net.long["eeg"].state_dict(), long.encoders["eeg"].state_dict())
    net.load_pretrained(long, short)
    for m in ("eeg", "gsr"):
        assert state_equal(net.long[m].state_dict(), long.encoders[m].state_dict())
        assert state_equal(net.short[m].state_dict(), short.encoders[m].state_dict())
        assert net.long[m].embed.value.weight.data_ptr() != \
            long.encoders[m].embed.value.weight.data_ptr()  # copied, not shared
    eeg_only = PretrainModel({"eeg": 32}, {"eeg": 640}, enc())
    with pytest.raises(PhysioSyncError, match=r"the pre-trained long encoders do not fit this "
                       r"model: modalities \['eeg'\] \(pre-trained\) vs \['eeg', 'gsr'\]"):
        net.load_pretrained(long=eeg_only)
    # another embedding size is named before load_state_dict could fail on it
    with pytest.raises(PhysioSyncError, match=r"short encoders do not fit this model: "
                       r"embed_dim 8 \(pre-trained\) vs 4 \(this run\)\.$"):
        net.load_pretrained(short=PretrainModel(N_CHANS, {"eeg": 128, "gsr": 128},
                                                enc(embed_dim=8)))


# -------------------------------------------------------------------- fine-tuning
@pytest.mark.parametrize("variant", ["full", "eeg-only", "long-only", "short-only", "no-gate"])
def test_finetune_variants_run(split, variant):
    data, train, val, test = split
    cfg = {"full": ft(), "eeg-only": ft(modalities=("eeg",)), "long-only": ft(use_short=False),
           "short-only": ft(use_long=False), "no-gate": ft(gate=False)}[variant]
    model, history = finetune(data, train, val_cells=val, config=cfg, long_config=enc(),
                              device="cpu", verbose=False)
    assert not model.training
    assert [h["epoch"] for h in history] == [0, 1, 2]
    for h in history:
        assert np.isfinite(h["train_loss"]) and np.isfinite(h["val_loss"])
        assert 0 <= h["val_balanced_accuracy"] <= 1
    proba = predict_proba(model, data, test)
    assert proba.shape == (len(test), 2)
    np.testing.assert_allclose(proba.sum(1), 1, rtol=1e-5)
    # Cosine warm restarts with T_0 = epochs // 3 = 1: the lr is the base lr every epoch.
    assert [h["lr"] for h in history] == [cfg.lr] * 3


def test_freeze_encoders_trains_the_head_only(split):
    data, train, val, _ = split
    torch.manual_seed(5)
    pre = {"long": PretrainModel(N_CHANS, N_TIMES, enc()),
           "short": PretrainModel(N_CHANS, {"eeg": 128, "gsr": 128}, enc())}
    before = {k: {n: v.clone() for n, v in m.state_dict().items()} for k, m in pre.items()}
    cfg = ft(freeze_encoders=True, lr=1e-2)
    model, _ = finetune(data, train, val_cells=val, config=cfg, pretrained=pre, device="cpu",
                        verbose=False)
    for branch, name in ((model.long, "long"), (model.short, "short")):
        for m in ("eeg", "gsr"):
            want = {k[len(f"encoders.{m}."):]: v for k, v in before[name].items()
                    if k.startswith(f"encoders.{m}.")}
            # Parameters *and* BatchNorm statistics are untouched.
            assert state_equal(branch[m].state_dict(), want), (name, m)
            assert not any(p.requires_grad for p in branch[m].parameters())
    # The head was trained: it differs from its initialisation.
    torch.manual_seed(derive_seed(cfg.seed, "finetune-init"))
    init = PhysioSyncNet(N_CHANS, N_TIMES, 5, 2, cfg, enc(), enc())
    assert not state_equal(model.head.state_dict(), init.head.state_dict())
    # The pre-trained models passed in are not modified either.
    for k, m in pre.items():
        assert state_equal(m.state_dict(), before[k])


def test_encoders_are_fine_tuned_by_default(split):
    data, train, _, _ = split
    torch.manual_seed(5)
    pre = {"long": PretrainModel(N_CHANS, N_TIMES, enc()),
           "short": PretrainModel(N_CHANS, {"eeg": 128, "gsr": 128}, enc())}
    model, _ = finetune(data, train, config=ft(epochs=1), pretrained=pre, device="cpu",
                        verbose=False)
    w_before = pre["long"].encoders["eeg"].embed.value.weight
    assert not torch.equal(model.long["eeg"].embed.value.weight, w_before)


def test_no_pretraining_uses_the_given_encoder_sizes(split):
    data, train, _, _ = split
    model, history = finetune(data, train, config=ft(epochs=1), pretrained=None,
                              long_config=enc(embed_dim=4), short_config=enc(embed_dim=2),
                              device="cpu", verbose=False)
    assert model.long["eeg"].embed_dim == 4 and model.short["eeg"].embed_dim == 2
    assert "val_loss" not in history[0]  # no validation cells: no validation metrics


def test_epoch_selection_uses_validation_cells_only(split, monkeypatch):
    data, train, val, test = split
    seen = []
    real = finetune_mod.evaluate_cells

    def spy(model, data_, cells, labels, **kw):
        seen.append(np.asarray(cells).copy())
        return real(model, data_, cells, labels, **kw)

    monkeypatch.setattr(finetune_mod, "evaluate_cells", spy)
    cfg = ft(epochs=6, lr=3e-3, scheduler="none")
    model, history = finetune(data, train, val_cells=val, config=cfg, long_config=enc(),
                              device="cpu", verbose=False)
    assert len(seen) == cfg.epochs
    test_set = {tuple(c) for c in test}
    for cells in seen:
        np.testing.assert_array_equal(cells, val)
        assert not {tuple(c) for c in cells} & test_set
    monkeypatch.undo()
    # The kept weights are those of the epoch with the lowest validation loss.
    losses = [h["val_loss"] for h in history]
    best = int(np.argmin(losses))
    selected = [h["epoch"] for h in history if h.get("selected")]
    assert selected[-1] == best and selected[0] == 0
    assert all(losses[b] < losses[a] for a, b in zip(selected, selected[1:]))
    y_val = data.labels[val[:, 0], val[:, 1]]
    final = evaluate_cells(model, data, val, y_val)
    assert final["loss"] == pytest.approx(losses[best], rel=1e-4, abs=1e-6)


@pytest.mark.parametrize("select", ["val_balanced_accuracy", "last"])
def test_other_selection_rules(split, select):
    data, train, val, _ = split
    cfg = ft(epochs=4, lr=3e-3, select=select, scheduler="none")
    model, history = finetune(data, train, val_cells=val, config=cfg, long_config=enc(),
                              device="cpu", verbose=False)
    y_val = data.labels[val[:, 0], val[:, 1]]
    final = evaluate_cells(model, data, val, y_val)
    if select == "last":
        assert not any(h.get("selected") for h in history)
        assert final["loss"] == pytest.approx(history[-1]["val_loss"], rel=1e-4, abs=1e-6)
    else:
        bacc = [h["val_balanced_accuracy"] for h in history]
        assert final["balanced_accuracy"] == pytest.approx(max(bacc))
        first_best = int(np.argmax(bacc))
        assert final["loss"] == pytest.approx(history[first_best]["val_loss"], rel=1e-4,
                                              abs=1e-6)


def test_label_errors(split):
    data, train, val, _ = split
    one_class = train[data.labels[train[:, 0], train[:, 1]] == 1]
    with pytest.raises(PhysioSyncError, match="one class only"):
        finetune(data, one_class, config=ft(), long_config=enc(), device="cpu")
    with pytest.raises(PhysioSyncError, match="one class only"):
        finetune(data, train, train_labels=np.zeros(len(train), int), config=ft(),
                 long_config=enc(), device="cpu")
    with pytest.raises(PhysioSyncError, match="training labels for"):
        finetune(data, train, train_labels=np.zeros(3, int), config=ft(), long_config=enc(),
                 device="cpu")
    with pytest.raises(PhysioSyncError, match="no label"):
        finetune(data, train, train_labels=np.r_[-1, np.ones(len(train) - 1, int)],
                 config=ft(), long_config=enc(), device="cpu")
    unlabelled = SlotData(data.x, data.valid, data.subjects, data.trials)
    with pytest.raises(PhysioSyncError, match="needs labels"):
        finetune(unlabelled, train, config=ft(), long_config=enc(), device="cpu")


# ---------------------------------------------------------------- checkpoint/resume
def test_resume_after_interruption_matches_an_uninterrupted_run(split, tmp_path, monkeypatch):
    data, train, val, _ = split
    cfg = ft(epochs=4, lr=3e-3)  # cosine restarts with T_0 = 1
    kw = dict(val_cells=val, config=cfg, long_config=enc(), device="cpu", verbose=False)
    full, h_full = finetune(data, train, checkpoint=tmp_path / "full.pt", **kw)

    real_seed = finetune_mod.derive_seed

    def interrupt(*parts):
        if parts[1:] == ("finetune-epoch", 2):
            raise KeyboardInterrupt
        return real_seed(*parts)

    ckpt = tmp_path / "run.pt"
    monkeypatch.setattr(finetune_mod, "derive_seed", interrupt)
    with pytest.raises(KeyboardInterrupt):
        finetune(data, train, checkpoint=ckpt, **kw)
    monkeypatch.undo()
    assert read_checkpoint(ckpt)["epoch"] == 2
    resumed, h_res = finetune(data, train, checkpoint=ckpt, **kw)
    assert state_equal(resumed.state_dict(), full.state_dict())
    strip = lambda h: [{k: v for k, v in e.items() if k != "seconds"} for e in h]  # noqa: E731
    assert strip(h_res) == strip(h_full)

    models, config, meta = load_checkpoint(ckpt)
    assert isinstance(models["finetune"], PhysioSyncNet)
    assert meta["kind"] == "finetune" and meta["epoch"] == 4 and config["n_sub"] == 5
    # The checkpoint holds the last epoch's weights; the selected ones are kept apart.
    assert "best_state" in meta
    assert state_equal(meta["best_state"], resumed.state_dict())

    with pytest.raises(CheckpointError, match="different fine-tuning configuration"):
        finetune(data, train, checkpoint=ckpt, val_cells=val, config=ft(epochs=4, lr=1e-4),
                 long_config=enc(), device="cpu", verbose=False)


def test_checkpoint_of_another_fold_is_refused_by_finetune(split, tmp_path):
    data, train, val, test = split
    ckpt = tmp_path / "fold.pt"
    kw = dict(config=ft(epochs=2), long_config=enc(), checkpoint=ckpt, device="cpu",
              verbose=False)
    finetune(data, train[:len(train) // 2], **kw)
    with pytest.raises(CheckpointError):
        finetune(data, np.concatenate([train[len(train) // 2:], test]), **kw)


def test_config_refusal_names_what_differs(split, tmp_path):
    data, train, _, _ = split
    kw = dict(long_config=enc(), checkpoint=tmp_path / "c.pt", device="cpu",
              verbose=False)
    finetune(data, train, config=ft(epochs=1), **kw)
    with pytest.raises(CheckpointError, match=r"different fine-tuning configuration "
                                              r"\(differs in finetune.lr\); delete it"):
        finetune(data, train, config=ft(epochs=1, lr=1e-4), **kw)


def test_nan_loss_raises_and_keeps_the_last_good_checkpoint(split, tmp_path, monkeypatch):
    # Every window of epoch 2 comes back as NaN, so its first loss is NaN.
    data, train, val, _ = split
    current = {"epoch": None}
    real_seed, real_gather = finetune_mod.derive_seed, finetune_mod._gather

    def seed(*parts):
        if parts[1:2] == ("finetune-epoch",):
            current["epoch"] = parts[2]
        return real_seed(*parts)

    def gather(*args):
        out = real_gather(*args)
        return {m: v * float("nan") for m, v in out.items()} if current["epoch"] == 2 else out

    monkeypatch.setattr(finetune_mod, "derive_seed", seed)
    monkeypatch.setattr(finetune_mod, "_gather", gather)
    ckpt = tmp_path / "nan.pt"
    with pytest.raises(TrainingDivergedError,
                       match=rf"^fine-tuning loss became nan in epoch 2; the last good "
                             rf"checkpoint \({re.escape(str(ckpt))}\) is kept\.$"):
        finetune(data, train, val_cells=val, config=ft(epochs=4), long_config=enc(),
                 checkpoint=ckpt, device="cpu", verbose=False)
    state = read_checkpoint(ckpt)
    assert state["epoch"] == 2 and len(state["history"]) == 2
    assert all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())


def test_non_finite_weights_are_never_checkpointed_by_finetune(split, tmp_path, monkeypatch):
    # The weights turn into NaN during epoch 1 while every training loss was finite (here:
    # in its validation pass): its checkpoint is refused and epoch 0's is kept.
    data, train, val, _ = split
    real, calls = finetune_mod.evaluate_cells, {"n": 0}

    def poison(model, *args, **kw):
        calls["n"] += 1
        if calls["n"] == 2:
            with torch.no_grad():
                next(model.parameters()).fill_(float("nan"))
        return real(model, *args, **kw)

    monkeypatch.setattr(finetune_mod, "evaluate_cells", poison)
    ckpt = tmp_path / "w.pt"
    with pytest.raises(TrainingDivergedError, match=r"^fine-tuning weights became NaN or "
                                                    r"infinite in epoch 1; the last good "
                                                    r"checkpoint .*w\.pt\) is kept\.$"):
        finetune(data, train, val_cells=val, config=ft(epochs=3), long_config=enc(),
                 checkpoint=ckpt, device="cpu", verbose=False)
    state = read_checkpoint(ckpt)
    assert state["epoch"] == 1 and len(state["history"]) == 1
    assert all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())
    # Resuming from the kept checkpoint finishes the run as if nothing had happened.
    monkeypatch.undo()
    kw = dict(val_cells=val, config=ft(epochs=3), long_config=enc(), device="cpu",
              verbose=False)
    resumed, h_res = finetune(data, train, checkpoint=ckpt, **kw)
    full, h_full = finetune(data, train, **kw)
    assert state_equal(resumed.state_dict(), full.state_dict())


# ------------------------------------------------------------------------ learning
@pytest.fixture(scope="module")
def twelve_trials(tmp_path_factory):
    """Strong-effect synthetic DEAP: 4 subjects x 12 trials x 10 s, 5 s windows."""
    from physiosync.datasets import DEAP
    from physiosync.synthetic import make_deap
    from physiosync.preprocessing.cache import prepare
    from physiosync.preprocessing.windows import make_windows

    folder = make_deap(tmp_path_factory.mktemp("deap12") / "d", n_subjects=4, n_trials=12,
                       seconds=10.0, effect=3.0, seed=0)
    return make_windows(prepare(DEAP(folder), cache_dir=False), lengths=(5.0,))


@pytest.fixture(scope="module")
def twelve_long_trials(tmp_path_factory):
    """The same with 20 s trials (128 training windows) and stimulus-locked synchrony."""
    from physiosync.datasets import DEAP
    from physiosync.synthetic import make_deap
    from physiosync.preprocessing.cache import prepare
    from physiosync.preprocessing.windows import make_windows

    folder = make_deap(tmp_path_factory.mktemp("deap12l") / "d", n_subjects=4, n_trials=12,
                       seconds=20.0, effect=3.0, seed=0)
    return make_windows(prepare(DEAP(folder), cache_dir=False), lengths=(5.0,))


def _trial_split(data):
    """8 training trials, 1 validation trial (training side), 3 held-out test trials."""
    return cells_of(data, range(8)), cells_of(data, [8]), cells_of(data, [9, 10, 11])


def test_learns_a_stimulus_locked_effect_on_held_out_trials(twelve_trials):
    # A label-dependent, stimulus-locked 2 Hz wave on four EEG channels (one z-unit) on
    # top of the synthetic EEG: a linear effect that the raw-signal encoders can reach.
    from sklearn.metrics import balanced_accuracy_score

    data = SlotData.from_windows(twelve_trials, 5.0, target="valence")
    t = torch.arange(640) / 128.0
    wave = torch.sin(2 * np.pi * 2.0 * t)
    labels = torch.from_numpy(data.labels).float()
    data.x["eeg"][:, :, :, :4] += labels[:, :, None, None, None] * wave
    train, val, test = _trial_split(data)
    cfg = FinetuneConfig(epochs=8, batch_size=16, lr=1e-3, hidden=(32, 16), seed=0)
    model, _ = finetune(data, train, val_cells=val, config=cfg, n_sub=5,
                        long_config=enc(embed_dim=16, n_prompts=0, embedding="factorised"),
                        device="cpu", verbose=False)
    y = data.labels[test[:, 0], test[:, 1]]
    pred = predict_proba(model, data, test).argmax(1)
    assert len(set(y)) == 2
    # 3 held-out trials x 4 subjects: 12 independent units (tests/_numerics.py)
    assert balanced_accuracy_score(y, pred) > above_chance(len(np.unique(test[:, :2], axis=0)))


def test_spectral_embedding_learns_the_synthetic_emotion_effect(twelve_long_trials):
    # Frontal alpha asymmetry is a power difference between channels with independent
    # phases; the spectral embedding (per-channel log energy before channel mixing) learns
    # it from 128 training windows, where the linear embeddings memorise (docs/model.md).
    # (64 windows of 10 s trials gave 0.5-0.8 over seeds once the stimulus-locked
    # fluctuations were added to the simulator: too few to average them out.)
    from sklearn.metrics import balanced_accuracy_score

    data = SlotData.from_windows(twelve_long_trials, 5.0, target="valence")
    train, val, test = _trial_split(data)
    y = data.labels[test[:, 0], test[:, 1]]
    assert len(set(y)) == 2
    cfg = FinetuneConfig(epochs=30, batch_size=16, hidden=(32, 16), seed=0, select="last")
    model, _ = finetune(data, train, val_cells=val, config=cfg, n_sub=5,
                        long_config=enc(embed_dim=32, n_prompts=0, embedding="spectral"),
                        device="cpu", verbose=False)
    units = len(np.unique(test[:, :2], axis=0))  # 12 held-out trials (tests/_numerics.py)
    assert balanced_accuracy_score(y, predict_proba(model, data, test).argmax(1)) > \
        above_chance(units)


@pytest.fixture(scope="module")
def frozen_encoder_scores(tmp_path_factory):
    """Held-out balanced accuracy of heads on frozen pre-trained and frozen random encoders.

    The data of ``twelve_trials`` (4 subjects x 12 trials x 10 s, effect 3, data seed 0,
    5 s windows, ``_trial_split``) written with ``affect="dynamics"`` and with its paired
    control ``control="shuffled"`` (same random streams; each subject's shared course
    comes from another video at a random time). For seeds 0-2: LS-TCL pre-training of the
    5 s and 1 s encoders (spectral, D = 16, 100 steps) on trials 0-8 only, and the random
    encoders it starts from (:func:`~physiosync.training.pretrain.initial_model`, same
    seed); a head fine-tuned on each, encoders frozen, for valence and arousal.

    Returns ``{(condition, kind, target): [score per seed]}``.
    """
    from sklearn.metrics import balanced_accuracy_score

    from physiosync.datasets import DEAP
    from physiosync.preprocessing.cache import prepare
    from physiosync.preprocessing.windows import make_windows
    from physiosync.synthetic import make_deap
    from physiosync.training.pretrain import initial_model, pretrain_encoders

    scores = {}
    for condition in ("dynamics", "shuffled"):
        control = "none" if condition == "dynamics" else condition
        folder = make_deap(tmp_path_factory.mktemp(condition) / "d", n_subjects=4,
                           n_trials=12, seconds=10.0, effect=3.0, seed=0, affect="dynamics",
                           control=control, verbose=False)
        windows = make_windows(prepare(DEAP(folder), cache_dir=False), lengths=(5.0,))
        data = {t: SlotData.from_windows(windows, 5.0, target=t) for t in ("valence", "arousal")}
        train, val, test = _trial_split(data["valence"])
        allowed = data["valence"].valid.copy()
        allowed[:, 9:] = False  # pre-training never sees the test trials
        for seed in range(3):
            pc = enc(embed_dim=16, n_prompts=0, projector_dims=(32, 32), cmca_dim=16,
                     steps=100, seed=seed, embedding="spectral")
            runs = pretrain_encoders(data["valence"], pc, allowed=allowed, device="cpu")
            kinds = {"pretrained": {name: model for name, (model, _) in runs.items()},
                     "random": {name: initial_model(data["valence"], pc, n_sub=n).eval()
                                for name, n in (("long", 1), ("short", 5))}}
            cfg = FinetuneConfig(epochs=15, batch_size=16, hidden=(32, 16), seed=seed,
                                 freeze_encoders=True)
            for target, d in data.items():
                y = d.labels[test[:, 0], test[:, 1]]
                assert len(set(y)) == 2
                for kind, encoders in kinds.items():
                    model, _ = finetune(d, train, val_cells=val, config=cfg,
                                        pretrained=encoders, device="cpu", verbose=False)
                    pred = predict_proba(model, d, test).argmax(1)
                    scores.setdefault((condition, kind, target), []).append(
                        balanced_accuracy_score(y, pred))
    return scores


def _gain(scores: dict, condition: str) -> float:
    """Mean over seeds and both targets of frozen pre-trained minus frozen random."""
    return float(np.mean([np.subtract(scores[condition, "pretrained", t],
                                      scores[condition, "random", t])
                          for t in ("valence", "arousal")]))


@pytest.mark.integration
def test_frozen_encoders_read_arousal_and_pretraining_changes_little_at_this_size(
        frozen_encoder_scores):
    """What holds at a size CI affords: frozen encoders carry arousal, pre-trained or not.

    Expected before measuring (docs/model.md): frozen pre-trained encoders beat the frozen
    random encoders they start from in ``affect="dynamics"`` (the emotion is what viewers
    share moment by moment, what LS-TCL pulls together) and not in the paired ``shuffled``
    control (viewers of a video share nothing). Measured (balanced accuracy on the 3
    held-out trials of 4 subjects, seeds 0-2; the data of ``frozen_encoder_scores``):

    ============  ==========  ===================  ===================  ==============
    condition     encoders    valence              arousal              mean gain
    ============  ==========  ===================  ===================  ==============
    dynamics      pretrained  0.63 0.35 0.49       0.81 0.94 0.89       +0.04
    dynamics      random      0.40 0.54 0.64       0.75 0.89 0.64
    shuffled      pretrained  0.63 0.55 0.66       0.95 0.88 0.88       +0.07
    shuffled      random      0.71 0.53 0.58       0.85 0.80 0.65
    ============  ==========  ===================  ===================  ==============

    At this size the expectation cannot be tested: the gain is within the noise of 12
    held-out trials, and its sign follows the numerical stack. On 2026-12-08's packages
    (numpy 2.4.6, scipy 1.17.1, scikit-learn 1.9.1, torch 2.13.0) the same seeds gave
    +0.08 in dynamics and +0.02 in shuffled, so the strict expected failure that stood here
    passed; a test that flips with a dependency's rounding tests nothing, and was removed.
    The claim is tested where it can be, on more data with its controls: the
    label-efficiency study (docs/model.md). What holds here, and is asserted: heads on frozen encoders read *arousal*
    on held-out trials (mean >= 0.7 in both conditions, for both kinds of encoder;
    valence stays near chance), and pre-training changes the mean balanced accuracy by
    less than 0.15 either way. A model that memorises its training trials, or a
    pre-training that collapses the encoders, scores about 0.5 and fails.
    """
    s = frozen_encoder_scores
    for condition in ("dynamics", "shuffled"):
        for kind in ("pretrained", "random"):
            # 12 held-out trials (the seeds share them: the mean's error is no larger)
            assert np.mean(s[condition, kind, "arousal"]) > above_chance(12), (condition,
                                                                                kind, s)
        assert abs(_gain(s, condition)) <= 0.15, (condition, s)


def test_finished_checkpoint_loads_the_selected_model(split, tmp_path):
    data, train, val, _ = split
    ckpt = tmp_path / "ft.pt"
    model, history = finetune(data, train, val_cells=val,
                              config=ft(epochs=4, lr=3e-2, scheduler="none"),
                              long_config=enc(), checkpoint=ckpt, device="cpu",
                              verbose=False)
    losses = [h["val_loss"] for h in history]
    assert int(np.argmin(losses)) != len(losses) - 1  # the selected epoch is not the last
    models, _, _ = load_checkpoint(ckpt)
    assert state_equal(models["finetune"].state_dict(), model.state_dict())


def test_an_init_cache_gives_the_same_models_and_builds_once(monkeypatch):
    """The per-subject models of a fold start alike: built once, copied, bit for bit."""
    from physiosync.training.pretrain import pretrain_encoders

    module = finetune_mod
    g = np.random.default_rng(0)
    x = {"eeg": g.standard_normal((3, 6, 3, 4, 64)).astype("float32"),
         "gsr": g.standard_normal((3, 6, 3, 1, 64)).astype("float32")}
    data = SlotData(x, np.ones((3, 6, 3), bool), range(3), range(6),
                    np.tile([0, 1], (3, 3)))
    pc = PretrainConfig(embed_dim=16, depth=1, n_heads=2, projector_dims=(32,), cmca_dim=16,
                        batch_slots=4, group_size=1, steps=2)
    pre = {k: v[0] for k, v in pretrain_encoders(data, pc, n_sub=2, device="cpu",
                                                  verbose=False).items()}
    kw = dict(config=FinetuneConfig(epochs=2, batch_size=8), pretrained=pre, n_sub=2,
              long_config=pc, short_config=pc, device="cpu", verbose=False)

    def subject(s):
        cells = np.argwhere(data.valid[s:s + 1])
        cells[:, 0] = s
        return cells

    plain = [finetune(data, subject(s), **kw) for s in range(3)]
    built = []
    real = module.PhysioSyncNet

    def counting(*args, **kwargs):
        built.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(module, "PhysioSyncNet", counting)
    cache = {}
    cached = [finetune(data, subject(s), init_cache=cache, **kw) for s in range(3)]
    assert len(built) == 1 and len(cache) == 1
    for (m1, h1), (m2, h2) in zip(plain, cached):
        assert [r["train_loss"] for r in h1] == [r["train_loss"] for r in h2]
        for a, b in zip(m1.state_dict().values(), m2.state_dict().values()):
            assert torch.equal(a, b)

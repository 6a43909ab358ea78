"""Contrastive pre-training: learning, determinism, resume, divergence, checkpoints."""

from __future__ import annotations

import pickle
from dataclasses import replace

import numpy as np
import pytest
import torch

from physiosync import PhysioSyncError
from physiosync.training.checkpoints import CheckpointError, load_checkpoint, read_checkpoint
from physiosync.training.pretrain import (
    PretrainConfig, PretrainModel, TrainingDivergedError, initial_model, pretrain,
    pretrain_encoders,
)
from physiosync.training.sampling import SlotData

TERMS = ("loss", "temporal_eeg", "temporal_pps", "cmca")  # unweighted terms, as documented


def tiny(**kw) -> PretrainConfig:
    """A pre-training configuration small enough for CPU tests."""
    base = dict(embed_dim=16, depth=1, n_heads=2, n_prompts=1, projector_dims=(32, 32),
                cmca_dim=16, batch_slots=4, group_size=2, lr=1e-3, steps=6, seed=0)
    base.update(kw)
    return PretrainConfig(**base)


def huge_lr(config: PretrainConfig) -> PretrainConfig:
    """*config* with lr = 1e12, past its declared range (set after validation), to diverge."""
    config.lr = 1e12
    return config


def assert_same_weights(a: torch.nn.Module, b: torch.nn.Module):
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k


def weights_differ(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return any(not torch.equal(sa[k], sb[k]) for k in sa if sa[k].is_floating_point())


def strip(history):
    """History entries without wall-clock fields."""
    return [{k: v for k, v in e.items() if k != "seconds"} for e in history]


# ------------------------------------------------------------------------ learning
@pytest.mark.parametrize("n_sub", [1, 5], ids=["5s", "1s"])
def test_loss_falls(strong_deap_slots, n_sub):
    cfg = tiny(steps=30)
    model, history = pretrain(strong_deap_slots, cfg, n_sub=n_sub, device="cpu",
                              verbose=False)
    assert [e["step"] for e in history] == list(range(30))
    for e in history:
        assert set(TERMS) <= set(e)
        assert all(np.isfinite(e[k]) for k in TERMS)
        w_eeg, w_pps, w_cm = cfg.loss_weights
        assert e["loss"] == pytest.approx(
            w_eeg * e["temporal_eeg"] + w_pps * e["temporal_pps"] + w_cm * e["cmca"], rel=1e-5)
    first = np.mean([e["loss"] for e in history[:5]])
    last = np.mean([e["loss"] for e in history[-5:]])
    assert last < first, (first, last)
    assert not model.training  # returned in eval mode
    assert model.encoders["eeg"].n_times == 640 // n_sub
    assert model.encoders["gsr"].n_times == 640 // n_sub


def test_loss_weights_are_respected(strong_deap_slots):
    _, history = pretrain(strong_deap_slots, tiny(steps=3, loss_weights=(1, 0, 0)),
                          device="cpu", verbose=False)
    for e in history:
        assert e["loss"] == pytest.approx(e["temporal_eeg"], rel=1e-6)
        # Terms with weight 0 may be skipped; if reported, they must not leak into the loss.
        assert e.get("temporal_pps", 0.0) != pytest.approx(e["temporal_eeg"])
    _, history = pretrain(strong_deap_slots, tiny(steps=3, loss_weights=(0, 2, 0.5)),
                          device="cpu", verbose=False)
    for e in history:
        assert e["loss"] == pytest.approx(2 * e["temporal_pps"] + 0.5 * e["cmca"], rel=1e-5)
        assert e["loss"] != pytest.approx(e["temporal_pps"] + e["cmca"], rel=1e-3)


def test_config_validation():
    with pytest.raises(PhysioSyncError, match="cmca_variant"):
        PretrainConfig(cmca_variant="both")
    with pytest.raises(PhysioSyncError, match="optimizer"):
        PretrainConfig(optimizer="sgd")
    with pytest.raises(PhysioSyncError, match="loss_weights"):
        PretrainConfig(loss_weights=(1, 1))
    with pytest.raises(PhysioSyncError, match="temperature"):
        PretrainConfig(temperature=0)
    cfg = PretrainConfig.from_dict({"lr": 0.5, "n_chans": {"eeg": 3}, "projector_dims": [8, 4]})
    assert cfg.lr == 0.5 and cfg.projector_dims == (8, 4)


def test_too_many_modalities_rejected(strong_deap_slots):
    data = strong_deap_slots
    three = SlotData({"eeg": data.x["eeg"], "gsr": data.x["gsr"], "ecg": data.x["gsr"]},
                     data.valid, data.subjects, data.trials)
    with pytest.raises(PhysioSyncError, match="at most one peripheral"):
        pretrain(three, tiny(steps=1), device="cpu", verbose=False)


# --------------------------------------------------------------------- determinism
def test_cpu_runs_are_deterministic(strong_deap_slots):
    kw = dict(n_sub=5, device="cpu", verbose=False)
    a, ha = pretrain(strong_deap_slots, tiny(steps=5, seed=3), **kw)
    b, hb = pretrain(strong_deap_slots, tiny(steps=5, seed=3), **kw)
    c, _ = pretrain(strong_deap_slots, tiny(steps=5, seed=4), **kw)
    assert_same_weights(a, b)
    assert strip(ha) == strip(hb)
    assert weights_differ(a, c)


def test_initial_model_is_the_random_encoder_pretraining_starts_from(strong_deap_slots):
    """Frozen pre-trained encoders are compared with it (tests/training/test_finetune.py)."""
    import copy

    kw = dict(n_sub=5, device="cpu", verbose=False)
    start = initial_model(strong_deap_slots, tiny(steps=3, seed=3), n_sub=5)
    assert_same_weights(start, initial_model(strong_deap_slots, tiny(seed=3), n_sub=5))
    assert weights_differ(start, initial_model(strong_deap_slots, tiny(seed=4), n_sub=5))
    assert start.encoders["eeg"].n_times == 128  # the 1 s encoder of 5 s windows
    trained, _ = pretrain(strong_deap_slots, tiny(steps=3, seed=3), **kw)
    given, _ = pretrain(strong_deap_slots, tiny(steps=3, seed=3), model=copy.deepcopy(start),
                        **kw)
    assert_same_weights(trained, given)
    assert weights_differ(trained, start)


# -------------------------------------------------------------------------- resume
def test_resume_gives_the_uninterrupted_weights(strong_deap_slots, tmp_path):
    k = 8
    kw = dict(n_sub=5, device="cpu", verbose=False)
    full, h_full = pretrain(strong_deap_slots, tiny(steps=k), checkpoint=tmp_path / "a.pt", **kw)
    ckpt = tmp_path / "b.pt"
    half, _ = pretrain(strong_deap_slots, tiny(steps=k // 2, checkpoint_every=2),
                       checkpoint=ckpt, **kw)
    assert read_checkpoint(ckpt)["step"] == k // 2
    assert weights_differ(half, full)
    resumed, h_res = pretrain(strong_deap_slots, tiny(steps=k, checkpoint_every=2),
                              checkpoint=ckpt, resume=True, **kw)
    assert_same_weights(resumed, full)
    assert strip(h_res) == strip(h_full)
    assert read_checkpoint(ckpt)["step"] == k
    # Resuming a finished run does no further steps and keeps the weights.
    again, h_again = pretrain(strong_deap_slots, tiny(steps=k), checkpoint=ckpt, **kw)
    assert_same_weights(again, full)
    assert len(h_again) == k
    # resume=False starts over (and overwrites the checkpoint).
    fresh, h_fresh = pretrain(strong_deap_slots, tiny(steps=2), checkpoint=ckpt, resume=False,
                              **kw)
    assert len(h_fresh) == 2 and read_checkpoint(ckpt)["step"] == 2


def test_checkpoint_of_another_configuration_is_refused(strong_deap_slots, tmp_path):
    ckpt = tmp_path / "run.pt"
    kw = dict(n_sub=5, device="cpu", verbose=False, checkpoint=ckpt)
    pretrain(strong_deap_slots, tiny(steps=2), **kw)
    with pytest.raises(CheckpointError, match="different pre-training configuration"):
        pretrain(strong_deap_slots, tiny(steps=4, lr=5e-4), **kw)
    with pytest.raises(CheckpointError, match="different pre-training configuration"):
        pretrain(strong_deap_slots, tiny(steps=4), checkpoint=ckpt, n_sub=1, device="cpu",
                 verbose=False)


def test_checkpoint_of_another_fold_is_refused(strong_deap_slots, tmp_path):
    ckpt = tmp_path / "fold.pt"
    kw = dict(n_sub=5, device="cpu", verbose=False, checkpoint=ckpt)
    fold0 = strong_deap_slots.valid.copy()
    fold0[0] = False
    fold1 = strong_deap_slots.valid.copy()
    fold1[1] = False  # this fold holds subject 1 out, which fold 0 trained on
    pretrain(strong_deap_slots, tiny(steps=2), allowed=fold0, **kw)
    with pytest.raises(CheckpointError):
        pretrain(strong_deap_slots, tiny(steps=4), allowed=fold1, **kw)


# ---------------------------------------------------------------------- divergence
def test_nan_loss_raises_and_keeps_the_last_good_checkpoint(strong_deap_slots, tmp_path,
                                                           monkeypatch):
    # Step 5's windows come back as NaN, so its loss is NaN.
    import physiosync.training.engine as module

    bad_step = 5
    real = module.draw_inputs

    def draw_inputs(source, plan, step, *args, **kw):
        out = real(source, plan, step, *args, **kw)
        return {m: x * float("nan") for m, x in out.items()} if step == bad_step else out

    monkeypatch.setattr(module, "draw_inputs", draw_inputs)
    ckpt = tmp_path / "nan.pt"
    with pytest.raises(TrainingDivergedError, match=rf"nan at step {bad_step}\b") as info:
        pretrain(strong_deap_slots, tiny(steps=10, checkpoint_every=2), n_sub=5,
                 checkpoint=ckpt, device="cpu", verbose=False)
    assert str(ckpt) in str(info.value)  # says the last good checkpoint is kept
    assert isinstance(info.value, PhysioSyncError) and isinstance(info.value, FloatingPointError)
    state = read_checkpoint(ckpt)
    assert state["step"] == 4  # last multiple of checkpoint_every before step 5
    assert len(state["history"]) == 4
    assert all(np.isfinite(e["loss"]) for e in state["history"])
    raw = torch.load(ckpt, weights_only=True)
    assert raw["step"] == 4
    assert all(torch.isfinite(v).all() for v in raw["model"].values() if v.is_floating_point())
    # Resuming from the kept checkpoint (with the data repaired) finishes the run.
    monkeypatch.undo()
    _, history = pretrain(strong_deap_slots, tiny(steps=10, checkpoint_every=2), n_sub=5,
                          checkpoint=ckpt, device="cpu", verbose=False)
    assert [e["step"] for e in history] == list(range(10))


def test_huge_learning_rate_diverges_cleanly(strong_deap_slots, tmp_path):
    # Without monkeypatching: one Adam step at this learning rate wrecks the weights.
    ckpt = tmp_path / "lr.pt"
    with pytest.raises(TrainingDivergedError, match=r"at step 1 .*lower lr"):
        pretrain(strong_deap_slots, huge_lr(tiny(steps=40, checkpoint_every=1)), n_sub=5,
                 checkpoint=ckpt, device="cpu", verbose=False)
    # The weights after step 0's update gave a NaN loss: the checkpoint kept is the
    # last state whose weights and loss were finite, the initial one.
    state = read_checkpoint(ckpt)
    assert state["step"] == 0 and state["history"] == []
    assert all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())
    assert max(float(v.abs().max()) for v in state["model"].values()
               if v.is_floating_point() and v.numel()) < 100


def test_diverged_run_resumes_with_a_lower_learning_rate(strong_deap_slots, tmp_path):
    ckpt = tmp_path / "lr.pt"
    kw = dict(n_sub=5, checkpoint=ckpt, device="cpu", verbose=False)
    with pytest.raises(TrainingDivergedError, match=r"\(.*lr.pt, step 0\) is kept.*resume_with"):
        pretrain(strong_deap_slots, huge_lr(tiny(steps=4, checkpoint_every=1)), **kw)
    # The same configuration without resume_with is refused, and says how to proceed.
    with pytest.raises(CheckpointError, match=r"differs in lr\b.*resume_with"):
        pretrain(strong_deap_slots, tiny(steps=4, lr=1e-3, checkpoint_every=1), **kw)
    model, history = pretrain(strong_deap_slots, huge_lr(tiny(steps=4, checkpoint_every=1)),
                              resume_with={"lr": 1e-3}, **kw)
    assert [e["step"] for e in history] == [0, 1, 2, 3]
    assert all(np.isfinite(e["loss"]) for e in history)
    assert history[0]["resumed_with"] == {"lr": {"from": 1e12, "to": 1e-3}}
    assert all("resumed_with" not in e for e in history[1:])
    state = read_checkpoint(ckpt)
    assert state["step"] == 4 and state["config"]["lr"] == 1e-3
    assert state["history"][0]["resumed_with"]["lr"]["to"] == 1e-3
    assert all(g["lr"] == 1e-3 for g in state["optimizer"]["param_groups"])
    # Resuming with a lower lr ends where a run at that lr from the kept state ends.
    ref, ref_hist = pretrain(strong_deap_slots, tiny(steps=4, lr=1e-3), n_sub=5, device="cpu",
                             verbose=False)
    assert_same_weights(model, ref)
    assert [e["loss"] for e in history] == [e["loss"] for e in ref_hist]


def test_resume_with_rejects_other_settings(strong_deap_slots):
    for bad in ({"depth": 2}, {"lr": 0}, {"lr": float("nan")}, {"weight_decay": "x"}):
        with pytest.raises(PhysioSyncError, match="resume_with"):
            pretrain(strong_deap_slots, tiny(steps=1), n_sub=5, device="cpu",
                     verbose=False, resume_with=bad)


def test_non_finite_weights_are_never_checkpointed(strong_deap_slots, tmp_path, monkeypatch):
    # The update of the last step (3) turns the weights into NaN while every loss was
    # finite: the final checkpoint is refused and step 2's is kept.
    import physiosync.training.engine as pre_mod

    real = pre_mod.make_optimizer

    def poisoned(params, *args, **kw):
        params = list(params)
        opt = real(params, *args, **kw)
        step, calls = opt.step, {"n": 0}

        def bad_step(*a, **k):
            out = step(*a, **k)
            calls["n"] += 1
            if calls["n"] == 4:
                with torch.no_grad():
                    params[0].fill_(float("nan"))
            return out

        opt.step = bad_step
        return opt

    monkeypatch.setattr(pre_mod, "make_optimizer", poisoned)
    ckpt = tmp_path / "w.pt"
    with pytest.raises(TrainingDivergedError,
                       match=r"weights became NaN.*step 4.*step 2\) is kept"):
        pretrain(strong_deap_slots, tiny(steps=4, checkpoint_every=2), n_sub=5, checkpoint=ckpt,
                 device="cpu", verbose=False)
    state = read_checkpoint(ckpt)
    assert state["step"] == 2 and len(state["history"]) == 2
    assert all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())


def test_divergence_in_cross_validation_names_pipeline_and_fold(strong_deap_slots, tmp_path):
    from physiosync.evaluation.runner import cross_validate, run_fold
    from physiosync.params import FinetuneConfig
    from physiosync.evaluation.protocols import make_folds

    data = strong_deap_slots
    s, t = np.nonzero(data.valid.any(axis=2))
    units = np.column_stack([np.asarray(data.subjects)[s], np.asarray(data.trials)[t]])
    folds = make_folds(units, "loso")
    kw = dict(long_config=huge_lr(tiny(steps=3)), short_config=huge_lr(tiny(steps=3)),
              finetune_config=FinetuneConfig(epochs=1, batch_size=8), per_subject=False,
              device="cpu")
    with pytest.raises(TrainingDivergedError, match=r"^fold 1, long-window pre-training: "
                                                    r"pre-training loss became nan at step 1"):
        run_fold(data, folds[1], **kw)
    with pytest.raises(TrainingDivergedError,
                       match=r"^pipeline 'physiosync', fold 0, long-window pre-training: "):
        cross_validate(data, folds, tmp_path, settings={"pipeline": "physiosync"}, **kw)


# ---------------------------------------------------------------- checkpoint files
def test_load_checkpoint_rebuilds_the_model(strong_deap_slots, tmp_path):
    ckpt = tmp_path / "pre.pt"
    model, history = pretrain(strong_deap_slots, tiny(steps=3), n_sub=5, checkpoint=ckpt,
                              device="cpu", verbose=False)
    models, config, meta = load_checkpoint(ckpt)
    assert set(models) == {"pretrain"}
    loaded = models["pretrain"]
    assert isinstance(loaded, PretrainModel) and not loaded.training
    assert_same_weights(loaded, model)
    assert config["n_times"] == {"eeg": 128, "gsr": 128} and config["embed_dim"] == 16
    assert config["modalities"] == ["eeg", "gsr"]
    assert meta["kind"] == "pretrain" and meta["step"] == 3
    from physiosync import __version__

    assert meta["version"] == __version__
    assert strip(meta["history"]) == strip(history)
    assert "model" not in meta and "optimizer" not in meta
    # The rebuilt model computes the same features.
    x = strong_deap_slots.x["eeg"][:2, 0, 0, :, :128]
    model.eval()
    torch.testing.assert_close(loaded.encoder("eeg")(x), model.encoder("eeg")(x))


class _Payload:
    """Unpickling this object would create a marker file."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


class _Plain:
    def __init__(self):
        self.x = 1


def test_unsafe_or_broken_checkpoints_are_refused(strong_deap_slots, tmp_path):
    good = tmp_path / "good.pt"
    pretrain(strong_deap_slots, tiny(steps=1), n_sub=5, checkpoint=good, device="cpu",
             verbose=False)
    blob = good.read_bytes()
    cases = {}
    cases["truncated"] = blob[:len(blob) // 2]
    cases["garbage"] = np.random.default_rng(0).bytes(4096)
    cases["empty"] = b""
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pt"
    torch.save({"format": "physiosync-checkpoint/1", "kind": "pretrain",
                "payload": _Payload(marker)}, evil)
    plain = tmp_path / "plain.pt"
    with open(plain, "wb") as f:
        pickle.dump({"format": "physiosync-checkpoint/1", "obj": _Payload(marker)}, f,
                    protocol=2)
    custom = tmp_path / "custom.pt"
    torch.save({"format": "physiosync-checkpoint/1", "obj": _Plain()}, custom)
    for name, content in cases.items():
        path = tmp_path / f"{name}.pt"
        path.write_bytes(content)
        with pytest.raises(CheckpointError, match="cannot be read"):
            load_checkpoint(path)
    for path in (evil, plain, custom):
        with pytest.raises(CheckpointError, match="cannot be read"):
            load_checkpoint(path)
        with pytest.raises(CheckpointError):
            read_checkpoint(path)
    assert not marker.exists()  # nothing in the files was executed
    foreign = tmp_path / "foreign.pt"
    torch.save({"model": {}}, foreign)
    with pytest.raises(CheckpointError, match="not a physiosync checkpoint"):
        load_checkpoint(foreign)
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.pt")
    # A resumable path holding a corrupt file is refused too, not silently overwritten.
    (tmp_path / "corrupt.pt").write_bytes(cases["truncated"])
    with pytest.raises(CheckpointError):
        pretrain(strong_deap_slots, tiny(steps=1), n_sub=5, checkpoint=tmp_path / "corrupt.pt",
                 device="cpu", verbose=False)


def test_checkpoint_with_mismatched_weights_is_refused(strong_deap_slots, tmp_path):
    ckpt = tmp_path / "pre.pt"
    pretrain(strong_deap_slots, tiny(steps=1), n_sub=5, checkpoint=ckpt, device="cpu",
             verbose=False)
    state = torch.load(ckpt, weights_only=True)
    state["config"]["embed_dim"] = 32  # no longer matches the stored weights
    torch.save(state, ckpt)
    with pytest.raises(CheckpointError, match="does not match its configuration"):
        load_checkpoint(ckpt)


# -------------------------------------------------------------------- held-out data
def test_allowed_mask_is_honoured(strong_deap_slots, monkeypatch):
    data = strong_deap_slots
    requested = []
    real_gather = SlotData.gather

    def spy(self, modality, s_idx, t_idx, w_idx, n_sub=1, sub=None):
        requested.append((s_idx.clone(), t_idx.clone()))
        return real_gather(self, modality, s_idx, t_idx, w_idx, n_sub, sub)

    monkeypatch.setattr(SlotData, "gather", spy)
    allowed = data.valid.copy()
    allowed[0] = False  # held-out subject
    allowed[:, 5] = False  # held-out trial
    pretrain(data, tiny(steps=12), allowed=allowed, n_sub=5, device="cpu", verbose=False)
    assert len(requested) == 12 * 2
    subjects = torch.cat([s for s, _ in requested])
    trials = torch.cat([t for _, t in requested])
    assert subjects.numel() == 12 * 2 * 4 * 2 * 2
    assert 0 not in subjects.tolist()
    assert 5 not in trials.tolist()
    assert set(subjects.tolist()) == {1, 2, 3, 4, 5}


# ---------------------------------------------------------------- LS-TCL, variants
def test_pretrain_encoders(strong_deap_slots, tmp_path, caplog):
    runs = pretrain_encoders(strong_deap_slots, tiny(steps=2), tiny(steps=3, embed_dim=8),
                             n_sub=5, checkpoint_dir=tmp_path, device="cpu", verbose="debug")
    assert list(runs) == ["long", "short"]
    models = {k: m for k, (m, _) in runs.items()}
    histories = {k: h for k, (_, h) in runs.items()}
    assert len(histories["long"]) == 2 and len(histories["short"]) == 3
    for m in ("eeg", "gsr"):
        assert models["long"].encoders[m].n_times == 640
        assert models["short"].encoders[m].n_times == 128
    assert models["long"].embed_dim == 16 and models["short"].embed_dim == 8
    assert models["long"].encoders["eeg"].n_chans == 32
    assert models["long"].encoders["gsr"].n_chans == 1
    for name in ("long", "short"):
        assert read_checkpoint(tmp_path / f"pretrain_{name}.pt")["step"] == len(histories[name])
    out = caplog.text
    assert f"pre-training the short encoders -> {tmp_path / 'pretrain_short.pt'}" in out
    assert "short encoders: 3 steps, loss " in out
    # Each run is the plain pretrain() of its window length, alone or not.
    alone, hist = pretrain(strong_deap_slots, tiny(steps=3, embed_dim=8), n_sub=5,
                           device="cpu", verbose=False)
    assert_same_weights(alone, models["short"])
    assert strip(hist) == strip(histories["short"])


def test_pretrain_encoders_subset_cache_and_context(strong_deap_slots, monkeypatch):
    import physiosync.training.engine as pre_mod

    cache = {}
    kw = dict(n_sub=5, which=("short",), device="cpu", verbose=False, cache=cache)
    first = pretrain_encoders(strong_deap_slots, tiny(steps=2), **kw)
    assert list(first) == ["short"] and len(cache) == 1
    again = pretrain_encoders(strong_deap_slots, tiny(steps=2), **kw)
    assert again["short"][0] is first["short"][0]  # from the cache, not retrained
    with pytest.raises(PhysioSyncError, match="which may hold 'long' and 'short', got 'mid'"):
        pretrain_encoders(strong_deap_slots, tiny(steps=2), which=("mid",))
    real_loss = pre_mod.pretrain_loss

    def nan_loss(*args):
        total, terms = real_loss(*args)
        return total * float("nan"), terms

    monkeypatch.setattr(pre_mod, "pretrain_loss", nan_loss)
    with pytest.raises(TrainingDivergedError, match=r"^fold 2, long-window pre-training: "
                                                    r"pre-training loss became nan at step 0"):
        pretrain_encoders(strong_deap_slots, tiny(steps=3), n_sub=5, which=("long",),
                          device="cpu", verbose=False, context="fold 2")


@pytest.mark.parametrize("variant", ["same-subject", "none"])
def test_cmca_variants(strong_deap_slots, variant):
    model, history = pretrain(strong_deap_slots, tiny(steps=3, cmca_variant=variant), n_sub=5,
                              device="cpu", verbose=False)
    if variant == "none":
        assert model.cmca_head is None
        assert all("cmca" not in e for e in history)
        for e in history:
            assert e["loss"] == pytest.approx(0.5 * e["temporal_eeg"] + 0.5 * e["temporal_pps"],
                                              rel=1e-5)
    else:
        assert model.cmca_head is not None
        assert all(np.isfinite(e["cmca"]) for e in history)


def test_eeg_only_pretraining(strong_deap_slots):
    model, history = pretrain(strong_deap_slots, tiny(steps=3), modalities=("eeg",), n_sub=5,
                              device="cpu", verbose=False)
    assert model.modalities == ("eeg",) and model.cmca_head is None
    assert set(model.encoders) == {"eeg"} and set(model.projectors) == {"eeg"}
    for e in history:
        assert set(e) - {"step", "seconds"} == {"loss", "temporal_eeg"}
        assert e["loss"] == pytest.approx(0.5 * e["temporal_eeg"], rel=1e-6)


def test_augment_pairing_options(strong_deap_slots, monkeypatch):
    # "shared": every window of a slot (both subject groups) gets the slot's kind;
    # "independent" (the default): a kind is drawn per window.
    import physiosync.training.engine as pretrain_mod

    with pytest.raises(PhysioSyncError, match="augment_pairing"):
        tiny(augment_pairing="same")
    assert tiny().augment_pairing == "independent"
    real = pretrain_mod.augment

    def kinds_drawn(cfg):
        calls = []

        def spy(x, kind, **kw):
            calls.append(kind.clone())
            return real(x, kind, **kw)

        monkeypatch.setattr(pretrain_mod, "augment", spy)
        pretrain(strong_deap_slots, cfg, n_sub=5, device="cpu", verbose=False)
        n_mod = len(calls) // cfg.steps
        assert len(calls) == cfg.steps * n_mod and n_mod >= 1
        for step in range(cfg.steps):  # every modality of a window: the same kind
            assert all(torch.equal(calls[step * n_mod], c)
                       for c in calls[step * n_mod:(step + 1) * n_mod])
        # rows are group-major: (2 groups, B slots, N subjects), see SlotBatch.flat_index
        return torch.stack([calls[step * n_mod].view(2, cfg.batch_slots, cfg.group_size)
                            for step in range(cfg.steps)])

    shared = kinds_drawn(tiny(steps=4, augment_pairing="shared"))
    assert (shared == shared[:, :1, :, :1]).all()  # one kind per slot, both groups
    assert len(torch.unique(shared[:, 0, :, 0])) > 1  # drawn per slot, not per batch
    indep = kinds_drawn(tiny(steps=4))
    assert ((indep >= 0) & (indep < pretrain_mod.N_KINDS)).all()
    # 4 steps x 4 slots x 4 windows: the groups of some slot differ in kind
    assert not (indep == indep[:, :1, :, :1]).all()
    assert (indep[:, 0] != indep[:, 1]).any()


def test_resume_from_an_intermediate_checkpoint_is_exact(strong_deap_slots, tmp_path,
                                                         monkeypatch):
    # A checkpoint is written after the forward pass of its step (once that loss is
    # known to be finite); the batch-norm statistics it holds must be those from
    # before that pass, which the resumed run repeats.
    import physiosync.training.engine as module

    kw = dict(n_sub=5, device="cpu", verbose=False)
    full, h_full = pretrain(strong_deap_slots, tiny(steps=6), **kw)
    real = module.draw_inputs

    def interrupted(source, plan, step, *args, **k):
        if step == 5:
            raise KeyboardInterrupt
        return real(source, plan, step, *args, **k)

    monkeypatch.setattr(module, "draw_inputs", interrupted)
    ckpt = tmp_path / "i.pt"
    with pytest.raises(KeyboardInterrupt):
        pretrain(strong_deap_slots, tiny(steps=6, checkpoint_every=2), checkpoint=ckpt, **kw)
    assert read_checkpoint(ckpt)["step"] == 4
    monkeypatch.undo()
    resumed, h_res = pretrain(strong_deap_slots, tiny(steps=6, checkpoint_every=2),
                              checkpoint=ckpt, **kw)
    assert_same_weights(resumed, full)
    assert strip(h_res) == strip(h_full)


def test_cli_pretrain_resume_with(tmp_path, capsys, monkeypatch):
    import physiosync.training.engine as pre_mod
    from physiosync.cli import main
    from physiosync.synthetic import make_deap

    root = make_deap(tmp_path / "d", n_subjects=3, n_trials=6, seconds=10, effect=2, seed=2)
    # --no-estimate: the steps timed for the estimate would count among the calls below
    common = ["pretrain", "--dataset", "deap", "--data-root", str(root), "--config", "tiny",
              "-q", "--cache-dir", str(tmp_path / "cache"), "--out", str(tmp_path / "ck"),
              "--no-estimate"]
    real_loss, calls = pre_mod.pretrain_loss, {"n": 0}

    def nan_from_step_1(*args):
        calls["n"] += 1
        total, terms = real_loss(*args)
        return (total * float("nan"), terms) if calls["n"] > 1 else (total, terms)

    monkeypatch.setattr(pre_mod, "pretrain_loss", nan_from_step_1)
    assert main(common) != 0
    err = capsys.readouterr().err
    assert "loss became nan at step 1" in err and "--resume-with" in err
    ckpt = tmp_path / "ck" / "pretrain_long.pt"
    assert read_checkpoint(ckpt)["step"] == 0
    old_lr = read_checkpoint(ckpt)["config"]["lr"]
    monkeypatch.undo()
    assert main(common + ["--resume-with", "lr=1e-5"]) == 0
    state = read_checkpoint(ckpt)
    assert state["history"][0]["resumed_with"] == {"lr": {"from": old_lr, "to": 1e-5}}
    assert state["config"]["lr"] == 1e-5
    assert all(np.isfinite(e["loss"]) for e in state["history"])
    assert main(common + ["--resume-with", "lr"]) == 2
    assert "--resume-with 'lr': expected KEY=NUMBER" in capsys.readouterr().err


def test_bf16_autocast_runs_on_the_cpu_close_to_float32(strong_deap_slots):
    from physiosync.training.engine import TrainingRun

    cpu = torch.device("cpu")
    run = TrainingRun("pretrain", None, resume=False, device=cpu, amp="bf16", config={},
                      data_identity=())
    assert run.amp_dtype == torch.bfloat16 and not run.scaler.is_enabled()
    with run.autocast():
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.bfloat16
    # float16 (amp=True) stays a CUDA option: float32 on the CPU, as before
    assert TrainingRun("pretrain", None, resume=False, device=cpu, amp=True, config={},
                       data_identity=()).amp_dtype is None
    _, fp32 = pretrain(strong_deap_slots, tiny(steps=3), device="cpu", verbose=False)
    _, bf16 = pretrain(strong_deap_slots, tiny(steps=3, amp="bf16"), device="cpu",
                       verbose=False)
    a, b = (np.array([e["loss"] for e in h]) for h in (fp32, bf16))
    assert np.isfinite(b).all() and not np.array_equal(a, b)
    np.testing.assert_allclose(b, a, rtol=0.05)
    with pytest.raises(PhysioSyncError, match="Invalid amp 'fp8'"):
        tiny(amp="fp8")


# ------------------------------------------------------------------ held-out diagnostic
def _held_split(shape):
    """Subjects 0-3 train, 4-5 held out (group_size 1: two held-out subjects per slot)."""
    held = np.zeros(shape, dtype=bool)
    held[4:] = True
    return ~held, held


def test_held_out_diagnostic_leaves_the_training_bit_identical(tmp_path):
    from _tiny import tiny_slots

    data = tiny_slots()
    allowed, held = _held_split(data.shape)
    cfg = tiny(steps=7, group_size=1, eeg_dropout=0.2, projector_dropout=0.2)
    plain, h_plain = pretrain(data, cfg, allowed=allowed, device="cpu", verbose=False)
    diag, h_diag = pretrain(data, cfg, allowed=allowed, held_out=held, held_out_every=3,
                            device="cpu", verbose=False)
    assert_same_weights(plain, diag)  # running statistics of batch norm included
    assert strip(h_plain) == [{k: v for k, v in e.items() if k != "held_out"}
                              for e in strip(h_diag)]
    assert [e["step"] for e in h_diag if "held_out" in e] == [0, 3, 6]
    point = h_diag[0]["held_out"]
    assert list(point) == ["loss", *TERMS[1:], *(f"retrieval_{t}" for t in TERMS[1:])]
    assert point["loss"] == pytest.approx(0.5 * point["temporal_eeg"]
                                          + 0.5 * point["temporal_pps"] + point["cmca"],
                                          rel=1e-5)
    assert all(0 <= point[f"retrieval_{t}"] <= 1 for t in TERMS[1:])
    # the held-out points of a resumed run are those of the uninterrupted one
    ckpt = tmp_path / "held.pt"
    pretrain(data, tiny(steps=4, group_size=1, eeg_dropout=0.2, projector_dropout=0.2,
                        checkpoint_every=2), allowed=allowed, held_out=held, held_out_every=3,
             checkpoint=ckpt, device="cpu", verbose=False)
    resumed, h_res = pretrain(data, replace(cfg, checkpoint_every=2), allowed=allowed,
                              held_out=held, held_out_every=3, checkpoint=ckpt, device="cpu",
                              verbose=False)
    assert_same_weights(resumed, diag)
    assert strip(h_res) == strip(h_diag)
    # a checkpoint written with other held-out cells is not resumed as this run's
    with pytest.raises(CheckpointError):
        pretrain(data, replace(cfg, checkpoint_every=2), allowed=allowed, held_out=None,
                 checkpoint=ckpt, device="cpu", verbose=False)


def test_held_out_cells_never_include_training_cells_and_key_the_cache():
    from _tiny import tiny_slots

    data = tiny_slots()
    allowed, held = _held_split(data.shape)
    cfg = tiny(group_size=1)
    # every cell "held out": the training ones are dropped, the rest still fill a batch
    _, hist = pretrain(data, cfg, allowed=allowed, held_out=np.ones(data.shape, bool),
                       device="cpu", verbose=False)
    _, ref = pretrain(data, cfg, allowed=allowed, held_out=held, device="cpu", verbose=False)
    assert hist[0]["held_out"] == ref[0]["held_out"]
    with pytest.raises(PhysioSyncError, match="held-out cells cannot fill"):
        pretrain(data, cfg, allowed=allowed, held_out=allowed, device="cpu", verbose=False)
    cache = {}
    pretrain_encoders(data, cfg, which=("long",), allowed=allowed, cache=cache, device="cpu")
    pretrain_encoders(data, cfg, which=("long",), allowed=allowed, held_out=held, cache=cache,
                      device="cpu")
    assert len(cache) == 2  # the held-out cells change the stored history


def test_retrieval_accuracy_levels():
    from physiosync.models.losses import retrieval_accuracy, retrieval_chance

    g = torch.Generator().manual_seed(0)
    a = torch.randn(6, 8, generator=g)
    assert retrieval_accuracy(a, a + 0.01 * torch.randn(6, 8, generator=g)).item() == 1.0
    assert retrieval_accuracy(torch.ones(6, 8), torch.ones(6, 8)).item() == 0.0  # ties miss
    rand = [retrieval_accuracy(torch.randn(6, 8, generator=g), torch.randn(6, 8, generator=g))
            for _ in range(400)]
    assert float(torch.stack(rand).mean()) == pytest.approx(retrieval_chance(6, "cmca"),
                                                            abs=0.02)
    assert retrieval_chance(6, "cmca", "same-subject") == 1 / 23

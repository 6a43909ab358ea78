"""The EEG-only SimCLR baseline: its objective, its sampler and its pipeline kind."""

from __future__ import annotations

import json
import math
import os
import shlex
import subprocess
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

import physiosync.evaluation.fold_loop as fold_loop
import physiosync.evaluation.runner as cv
import physiosync.training.pretrain as pretrain_module
from physiosync import PhysioSyncError
from physiosync.cli import build_parser
from physiosync.config import PIPELINES, load_config, pipeline_config
from physiosync.evaluation.pipelines import PIPELINE_KINDS, SimCLRKind
from physiosync.evaluation.protocols import Fold, make_folds
from physiosync.experiment import run_experiment
from physiosync.models.losses import collapsed_loss, nt_xent
from physiosync.synthetic import make_deap
from physiosync.training.checkpoints import CheckpointError
from physiosync.training.pretrain import PretrainConfig, make_sampler, pretrain
from physiosync.training.sampling import SlotData, SynchronySampler, WindowSampler


def tiny(**kw) -> PretrainConfig:
    """A pre-training configuration small enough for CPU tests."""
    base = dict(embed_dim=16, depth=1, n_heads=2, n_prompts=1, projector_dims=(32, 32),
                cmca_dim=16, batch_slots=6, group_size=2, lr=1e-3, steps=6, seed=0)
    base.update(kw)
    return PretrainConfig(**base)


def strip(history):
    """History entries without wall-clock fields."""
    return [{k: v for k, v in e.items() if k != "seconds"} for e in history]


def spy_gather(monkeypatch) -> list:
    """Record ``(modality, s, t, w, sub)`` of every :meth:`SlotData.gather` call."""
    calls = []
    real = SlotData.gather

    def spy(self, modality, s_idx, t_idx, w_idx, n_sub=1, sub=None):
        calls.append((modality, s_idx.clone(), t_idx.clone(), w_idx.clone(),
                      None if sub is None else sub.clone()))
        return real(self, modality, s_idx, t_idx, w_idx, n_sub, sub)

    monkeypatch.setattr(SlotData, "gather", spy)
    return calls


# ------------------------------------------------------------------------- sampler
def test_window_sampler_draws_each_allowed_window_once_per_epoch():
    allowed = np.zeros((3, 4, 2), dtype=bool)
    allowed[1:, :3] = True  # subject row 0 and trial column 3 held out
    sampler = WindowSampler(allowed, batch_size=4, n_sub=5, seed=3)
    assert sampler.n_cells == 2 * 3 * 2 * 5 and sampler.steps_per_pass() == 15
    # An epoch counts stimulus slots, as the synchrony sampler's does: 3 x 2 x 5 / 4.
    assert sampler.steps_per_epoch() == 7
    assert sampler.steps_per_epoch() == SynchronySampler(
        allowed, batch_slots=4, group_size=1, n_sub=5).steps_per_epoch()
    drawn = []
    for step in range(sampler.steps_per_pass()):
        batch = sampler.batch(step)
        s, t, w, sub = batch.flat_index
        b = batch.trial.numel()
        # The two "groups" are the same window: no pairing across subjects.
        for v in (s, t, w, sub):
            assert torch.equal(v[:b], v[b:])
        drawn += list(zip(s[:b].tolist(), t[:b].tolist(), w[:b].tolist(), sub[:b].tolist()))
    assert len(drawn) == len(set(drawn)) == sampler.n_cells  # each once, none held out
    assert {(s, t, w) for s, t, w, _ in drawn} == set(map(tuple, np.argwhere(allowed).tolist()))
    # A pure function of (seed, step).
    again = WindowSampler(allowed, batch_size=4, n_sub=5, seed=3).batch(7).flat_index
    for a, b in zip(sampler.batch(7).flat_index, again):
        assert torch.equal(a, b)
    with pytest.raises(PhysioSyncError, match="Only 2 allowed windows"):
        WindowSampler(allowed[:, :1, :1], batch_size=4)


def test_make_sampler_picks_the_objective_sampler():
    allowed = np.ones((4, 3, 2), dtype=bool)
    cfg = tiny(batch_slots=4, group_size=2)
    assert isinstance(make_sampler(allowed, cfg), SynchronySampler)
    assert isinstance(make_sampler(allowed, cfg, objective="simclr"), WindowSampler)
    # One subject is enough for SimCLR, never for the synchrony sampler.
    with pytest.raises(PhysioSyncError, match="allowed subjects"):
        make_sampler(allowed[:1], cfg)
    assert make_sampler(allowed[:1], cfg, objective="simclr").n_cells == 6
    with pytest.raises(PhysioSyncError, match="objective"):
        make_sampler(allowed, cfg, objective="byol")


# ----------------------------------------------------------------------- objective
def test_collapsed_level_is_the_loss_of_identical_embeddings():
    b = 6
    z = torch.ones(2 * b, 8)  # a collapsed encoder: every view embedded the same
    expected = 0.5 * float(nt_xent(z[:b], z[b:], temperature=0.1))
    assert collapsed_loss(b, objective="simclr") == pytest.approx(expected, rel=1e-6)
    assert expected == pytest.approx(0.5 * 2 * math.log(2 * b - 1))
    # Neither the peripheral modality nor CM-CA enters SimCLR's reference level.
    assert collapsed_loss(b, objective="simclr") == collapsed_loss(b, has_pps=False)
    assert collapsed_loss(b, objective="simclr", loss_weights=(1, 0, 0)) == pytest.approx(
        2 * math.log(11))


@pytest.mark.parametrize("n_sub", [1, 5], ids=["5s", "1s"])
def test_simclr_trains_below_the_collapsed_level(strong_deap_slots, n_sub):
    cfg = tiny(steps=30)
    model, history = pretrain(strong_deap_slots, cfg, n_sub=n_sub, device="cpu",
                              objective="simclr", verbose=False)
    collapsed = collapsed_loss(cfg.batch_slots, objective="simclr")
    assert [e["step"] for e in history] == list(range(30))
    for e in history:
        assert set(e) == {"step", "loss", "simclr", "seconds"}
        assert e["loss"] == pytest.approx(cfg.loss_weights[0] * e["simclr"], rel=1e-6)
    # Telling windows apart is easy on this data: a random encoder starts below the
    # collapsed level already (single batches can exceed it), and training goes on down.
    first = np.mean([e["loss"] for e in history[:10]])
    last = np.mean([e["loss"] for e in history[-10:]])
    assert last < first and last < 0.5 * collapsed, (first, last, collapsed)
    assert not model.training
    assert model.encoders["eeg"].n_times == 640 // n_sub


def test_simclr_sees_eeg_alone_and_pairs_a_window_with_itself(strong_deap_slots, monkeypatch):
    calls = spy_gather(monkeypatch)
    cfg = tiny(steps=4)
    model, _ = pretrain(strong_deap_slots, cfg, n_sub=5, device="cpu", objective="simclr",
                        verbose=False)
    assert model.modalities == ("eeg",) and set(model.encoders) == {"eeg"}
    assert set(model.projectors) == {"eeg"} and model.cmca_head is None
    assert [c[0] for c in calls] == ["eeg"] * 4  # the data holds gsr too: never read
    b = cfg.batch_slots
    for _, s, t, w, sub in calls:
        assert s.numel() == 2 * b
        for v in (s, t, w, sub):  # row i and row B + i: two views of one window
            assert torch.equal(v[:b], v[b:])
        assert len(set(zip(s[:b].tolist(), t[:b].tolist(), w[:b].tolist(),
                           sub[:b].tolist()))) == b  # the negatives are other windows
    with pytest.raises(PhysioSyncError, match="EEG encoder alone"):
        pretrain(strong_deap_slots, cfg, modalities=("eeg", "gsr"), objective="simclr")


def test_simclr_respects_the_allowed_mask(strong_deap_slots, monkeypatch):
    calls = spy_gather(monkeypatch)
    allowed = strong_deap_slots.valid.copy()
    allowed[0] = False  # held-out subject
    allowed[:, 5] = False  # held-out stimulus
    pretrain(strong_deap_slots, tiny(steps=12), allowed=allowed, n_sub=5, device="cpu",
             objective="simclr", verbose=False)
    subjects = torch.cat([c[1] for c in calls]).tolist()
    trials = torch.cat([c[2] for c in calls]).tolist()
    assert len(calls) == 12 and len(subjects) == 12 * 2 * 6
    assert 0 not in subjects and 5 not in trials
    assert set(subjects) == {1, 2, 3, 4, 5}


def test_simclr_is_deterministic_for_a_seed(strong_deap_slots):
    runs = [pretrain(strong_deap_slots, tiny(steps=3, seed=seed), n_sub=5, device="cpu",
                     objective="simclr", verbose=False) for seed in (4, 4, 5)]
    (a, ha), (b, hb), (c, hc) = runs
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert strip(ha) == strip(hb)
    assert strip(ha) != strip(hc)
    assert any(not torch.equal(sa[k], sc[k]) for k in sa if sa[k].is_floating_point())


@pytest.mark.parametrize("change, match", [
    (dict(augment=False), "identical"), (dict(augment_pairing="shared"), "identical"),
    (dict(loss_weights=(0, 1, 1)), "w_eeg")])
def test_simclr_refuses_settings_without_a_task(strong_deap_slots, change, match):
    with pytest.raises(PhysioSyncError, match=match):
        pretrain(strong_deap_slots, tiny(**change), objective="simclr", verbose=False)


def test_a_checkpoint_of_one_objective_is_not_resumed_by_the_other(strong_deap_slots,
                                                                    tmp_path):
    ckpt = tmp_path / "pre.pt"
    kw = dict(modalities=("eeg",), n_sub=5, device="cpu", checkpoint=ckpt, verbose=False)
    pretrain(strong_deap_slots, tiny(steps=2), objective="simclr", **kw)
    with pytest.raises(CheckpointError, match="objective"):
        pretrain(strong_deap_slots, tiny(steps=3), **kw)
    _, resumed = pretrain(strong_deap_slots, tiny(steps=3), objective="simclr", **kw)
    assert [e["step"] for e in resumed] == [0, 1, 2]  # steps 0-1 from the checkpoint


# ------------------------------------------------------------------ pipeline kind
def _tiny_slots():
    """3 subjects x 4 trials x 2 windows of noise, labelled; only their units matter."""
    rng = np.random.default_rng(0)
    subject = np.repeat([1, 2, 3], 8)
    trial = np.tile(np.repeat([1, 2, 3, 4], 2), 3)
    data, _ = SlotData.from_arrays({"eeg": rng.standard_normal((24, 2, 8)).astype("float32")},
                                   subject, trial)
    data.labels = np.array([[0, 1, 0, 1]] * 3)
    return data


def _fold_key(name: str, tmp_path, *overrides) -> str:
    """The fold key ``cross_validate`` gives pipeline *name* (default config and
    *overrides*, fixed fold)."""
    data = _tiny_slots()
    units = data.description[["subject", "trial"]].to_numpy()
    test = units[:, 1] == 4
    fold = Fold(0, units[~test], units[:0], units[test], units[~test], held_out=("trial",))

    def no_training(d, f, **kw):
        _, _, cells = cv.fold_cells(d, f)
        return fold_loop._prediction_frame(d, cells, np.full((len(cells), 2), 0.5), False), {}

    spec = {"name": name, **PIPELINES[name]}
    pc = pipeline_config(load_config(overrides=list(overrides) or None), spec)
    kind = PIPELINE_KINDS[spec["kind"]]
    settings = {"pipeline": name, "kind": spec["kind"], "protocol": "within-trial-kfold"}
    [result] = cv.cross_validate(data, [fold], tmp_path / name, settings=settings,
                                 runner=no_training, **kind.fold_kwargs(pc, None),
                                 per_subject=True, one_class="error", val_size=0.1, seed=0,
                                 verbose=False)
    return result["key"]


def test_existing_fold_keys_are_unchanged_and_simclr_has_its_own(tmp_path):
    # Fixed values: a change of the fold keys of existing pipelines must be deliberate.
    # They changed once, when pre-training began to keep each fold's validation units out
    # for its held-out diagnostic (pretrain.held_out, a fold argument since then; before,
    # physiosync 5e0e7859..., eeg-only 5ed1300d...).
    assert _fold_key("physiosync", tmp_path) == (
        "8cb7faa9c9f3a176bdb091ba6a72f9c8684ed50f0441649b724a3720138560ac")
    assert _fold_key("eeg-only", tmp_path) == (
        "259fe1f5522b32c67cd7c4139dd3e9a51a11a9a43d906b30c61cf85149dfc92a")
    unused = "pretrain.held_out=unused"  # pre-training on validation units: its own key
    assert _fold_key("physiosync", tmp_path / "u", unused) != _fold_key("physiosync", tmp_path)
    assert cv.PhysioSyncRunner().hyperparameters() == cv.PhysioSyncRunner(
        objective="ls-tcl").hyperparameters()
    assert "objective" not in cv.PhysioSyncRunner().hyperparameters()
    assert cv.PhysioSyncRunner(objective="simclr").hyperparameters()["objective"] == "simclr"
    # simclr is eeg-only's configuration with another objective: the key must differ.
    assert _fold_key("simclr", tmp_path) != _fold_key("eeg-only", tmp_path)
    cfg = load_config()
    pc = pipeline_config(cfg, {"name": "simclr", **PIPELINES["simclr"]})
    eeg_only = pipeline_config(cfg, {"name": "eeg-only", **PIPELINES["eeg-only"]})
    assert PIPELINE_KINDS["simclr"].fold_kwargs(pc, None) == {
        **PIPELINE_KINDS["physiosync"].fold_kwargs(eeg_only, None), "objective": "simclr"}


def test_simclr_is_registered_and_described():
    assert isinstance(PIPELINE_KINDS["simclr"], SimCLRKind)
    assert PIPELINES["simclr"]["kind"] == "simclr"
    cfg = load_config(["tiny"], pipelines=["physiosync", "simclr"])
    spec = cfg.pipelines[1]
    assert spec == {"name": "simclr", "kind": "simclr", "set": {"finetune.modalities": ["eeg"]}}
    pc = pipeline_config(cfg, spec)
    text = PIPELINE_KINDS["simclr"].describe(pc)["text"]
    assert text.startswith("EEG-only SimCLR") and "pre-trained" in text


@pytest.fixture(scope="module")
def deap_root(tmp_path_factory):
    return make_deap(tmp_path_factory.mktemp("simclr") / "deap", n_subjects=4, n_trials=6,
                     seconds=10, effect=3.0, seed=11)


@pytest.mark.parametrize("protocol", ["within-trial-kfold", "subject-kfold"])
def test_simclr_pipeline_runs_end_to_end(deap_root, tmp_path, monkeypatch, protocol):
    objectives = []
    real = pretrain_module.pretrain

    def spy(*args, objective="ls-tcl", **kw):
        objectives.append((objective, kw.get("modalities")))
        return real(*args, objective=objective, **kw)

    monkeypatch.setattr(pretrain_module, "pretrain", spy)
    cfg = load_config(["tiny"], [f"protocol.name={protocol}", "protocol.n_splits=2",
                                 "protocol.one_class=constant", "pretrain.batch_slots=3"],
                      data={"name": "deap", "root": str(deap_root),
                            "cache_dir": str(tmp_path / "cache")},
                      pipelines=["simclr"])
    run_experiment(cfg, tmp_path / "run", verbose=False)
    # 2 folds x (long, short) runs, every one SimCLR on EEG alone.
    assert objectives == [("simclr", ("eeg",))] * 4
    doc = json.loads((tmp_path / "run" / "report.json").read_text())
    assert list(doc["pipelines"]) == ["simclr"]
    folds = sorted((tmp_path / "run" / "folds" / "simclr").glob("fold_*.json"))
    assert len(folds) == 2
    for path in folds:
        fold = json.loads(path.read_text())
        curves = fold["curves"]["pretrain"]
        assert set(curves) == {"long", "short"}
        for curve in curves.values():
            assert curve["collapsed"] == pytest.approx(collapsed_loss(3, objective="simclr"))
            assert len(curve["loss"]) == 2
        assert {p["subject"] for p in fold["predictions"]}


def test_an_epoch_buys_simclr_the_steps_of_ls_tcl(strong_deap_slots):
    cfg = tiny(steps=None, epochs=1, batch_slots=4, group_size=1)
    _, simclr = pretrain(strong_deap_slots, cfg, n_sub=5, device="cpu", objective="simclr",
                         verbose=False)
    sampler = SynchronySampler(strong_deap_slots.valid, batch_slots=4, group_size=1, n_sub=5)
    assert len(simclr) == sampler.steps_per_epoch() == 6 * 2 * 5 // 4


def test_the_ablation_recipe_runs_the_whole_table_in_one_run_per_target():
    recipe = Path(__file__).resolve().parents[2] / "pipelines" / "ablations.sh"
    proc = subprocess.run(["bash", str(recipe), "DEAP", "OUT"], capture_output=True, text=True,
                          check=True, env={**os.environ, "DRY_RUN": "1", "TARGETS": "valence"})
    [command] = [shlex.split(line) for line in proc.stdout.splitlines() if line.strip()]
    args = build_parser().parse_args(command[1:])
    cfg = load_config(args.config, args.set, data={"name": args.dataset})
    names = [p["name"] for p in cfg.pipelines]
    assert names[0] == "physiosync" and len(names) == len(set(names))
    ablations = {"no-cmca", "short-only", "long-only", "eeg-only", "no-pretrain", "frozen"}
    assert ablations | {"simclr", "bandpower"} <= set(names)
    assert cfg.protocol.name == "within-trial-kfold"


def test_simclr_preflight_names_the_pipeline(strong_deap_slots):
    data = SimpleNamespace(slots=strong_deap_slots)
    units = strong_deap_slots.description[["subject", "trial"]].to_numpy()
    folds = make_folds(units, "loso")
    kind = PIPELINE_KINDS["simclr"]
    cfg = load_config(["tiny"], pipelines=["simclr"])
    both = pipeline_config(cfg, {"name": "mine", "kind": "simclr",
                                 "set": {"finetune.modalities": ["eeg", "gsr"]}})
    with pytest.raises(PhysioSyncError, match=r"pipeline 'mine' \(kind simclr\).*\[eeg\]"):
        kind.preflight(both, data, folds, pipeline="mine")
    # One training subject is enough for SimCLR, never for LS-TCL's synchrony batches.
    alone = pipeline_config(cfg, {"name": "simclr", **PIPELINES["simclr"]})
    first, second = (units[units[:, 0] == s] for s in strong_deap_slots.subjects[:2])
    few = [Fold(0, first, units[:0], second, first, held_out=("subject",))]
    kind.preflight(alone, data, few, pipeline="simclr")
    with pytest.raises(PhysioSyncError, match="pipeline 'eeg-only', fold 0, long"):
        PIPELINE_KINDS["physiosync"].preflight(alone, data, few, pipeline="eeg-only")

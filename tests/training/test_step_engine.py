"""The pre-training step near the hardware, checked on the CPU.

What a GPU step does differently is built so that it can be run here: batches drawn for
many steps at once and indexed on the device, augmentation drawn on the device's
generator, the loss read every few steps instead of every step, windows resident on the
device, and a compiled step. Each must give the results of the plain loop.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

import physiosync.training.engine as engine
from _numerics import assert_trained_alike
from _tiny import tiny_pretrain, tiny_slots
from physiosync import PhysioSyncError
from physiosync.exceptions import TrainingDivergedError
from physiosync.training.engine import TrainingRun
from physiosync.training.augment import augment
from physiosync.training.checkpoints import read_checkpoint
from physiosync.training.engine import LossChecks, StepPlan, compile_step
from physiosync.training.pretrain import make_sampler, pretrain


def _strip(history):
    return [{k: v for k, v in h.items() if k != "seconds"} for h in history]


def test_a_plan_holds_the_samplers_batches_for_its_steps():
    data = tiny_slots()
    sampler = make_sampler(data.valid, tiny_pretrain(), n_sub=2)
    plan = StepPlan(sampler, range(3, 7), torch.device("cpu"))
    assert 3 in plan and 6 in plan and 7 not in plan and 2 not in plan
    for step in range(3, 7):
        batch = sampler.batch(step, 6)
        s, t, w, sub, shared = plan.rows(step)
        for a, b in zip((s, t, w, sub), batch.flat_index):
            assert torch.equal(a, b)
        n = batch.groups.shape[2]
        assert torch.equal(shared, batch.aug.view(1, -1, 1).expand(2, -1, n).reshape(-1))
    assert plan.global_rows == 2 * 4 * 1 and plan.shard_rows is None


def test_augmentation_draws_on_the_generators_device_and_matches_the_host_draws():
    x = torch.randn(12, 3, 50)
    kind = torch.arange(12) % 6
    a = augment(x, kind, generator=torch.Generator().manual_seed(5))
    b = augment(x, kind, generator=torch.Generator(device="cpu").manual_seed(5))
    assert torch.equal(a, b)
    assert torch.equal(a[0], x[0])  # kind 0: identity
    ratio = (a[1] / x[1]).flatten()  # kind 1: one scale in [0.7, 0.8]
    assert torch.allclose(ratio, ratio[0].expand_as(ratio)) and 0.7 <= ratio[0] <= 0.8


def test_resident_windows_stay_put_off_cuda():
    data = tiny_slots()
    assert data.resident("cpu") is data and data.device == torch.device("cpu")
    assert data.resident(torch.device("cpu"), ("eeg",)) is data


@pytest.mark.gpu
def test_resident_windows_are_copied_once_to_cuda():
    data = tiny_slots()
    on = data.resident("cuda", ("eeg",))
    assert on is not data and on.device.type == "cuda" and on.modalities == ("eeg",)
    assert data.resident("cuda", ("eeg",)) is on  # memoised
    assert torch.equal(on.x["eeg"].cpu(), data.x["eeg"])
    assert data.resident("cuda", ("eeg",), max_fraction=1e-12) is on  # the copy is kept


def test_reading_the_loss_every_few_steps_changes_nothing(monkeypatch):
    data, cfg = tiny_slots(), tiny_pretrain(steps=9)
    every_step = pretrain(data, cfg, n_sub=2, device="cpu", verbose=False)
    monkeypatch.setattr(engine, "sync_every", lambda device: 4)
    batched = pretrain(data, cfg, n_sub=2, device="cpu", verbose=False)
    assert _strip(batched[1]) == _strip(every_step[1])
    for a, b in zip(batched[0].state_dict().values(), every_step[0].state_dict().values()):
        assert torch.equal(a, b)


def test_a_deferred_read_still_names_the_step_and_keeps_the_last_good_checkpoint(
        tmp_path, monkeypatch):
    monkeypatch.setattr(engine, "sync_every", lambda device: 4)
    real = engine.draw_inputs

    def nan_at_5(source, plan, step, *args, **kw):
        out = real(source, plan, step, *args, **kw)
        return {m: x * float("nan") for m, x in out.items()} if step == 5 else out

    monkeypatch.setattr(engine, "draw_inputs", nan_at_5)
    ckpt = tmp_path / "p.pt"
    with pytest.raises(TrainingDivergedError, match=r"nan at step 5\b"):
        pretrain(tiny_slots(), tiny_pretrain(steps=12, checkpoint_every=2), checkpoint=ckpt, device="cpu",
                 verbose=False)
    state = read_checkpoint(ckpt)
    assert state["step"] == 4 and [h["step"] for h in state["history"]] == [0, 1, 2, 3]


def test_loss_checks_charge_the_wait_to_the_last_step_read():
    run = TrainingRun("pretrain", None, resume=False, device=torch.device("cpu"), amp=False,
                      config={}, data_identity=())
    history = []
    checks = LossChecks(run, history, every=3)
    for step in range(2):
        checks.add(step, {"a": torch.tensor(1.0), "total": torch.tensor(2.0)}, 0.5)
    assert history == []  # queued
    checks.flush()
    assert [h["step"] for h in history] == [0, 1] and history[0]["seconds"] == 0.5
    assert history[1]["seconds"] >= 0.5 and history[0] == {"step": 0, "loss": 2.0, "a": 1.0,
                                                             "seconds": 0.5}
    checks.add(2, {"total": torch.tensor(float("inf"))}, 0.1)
    with pytest.raises(TrainingDivergedError, match="loss became inf at step 2"):
        checks.flush()


def test_compile_modes_are_checked():
    module = torch.nn.Linear(2, 2)
    assert compile_step(module, None) is module
    with pytest.raises(PhysioSyncError, match="Invalid compile 'fast'"):
        compile_step(module, "fast")


def test_a_compiled_step_gives_the_eager_losses():
    """torch.compile (inductor on the CPU); dropout off, as compiled dropout draws other
    masks from the same seed."""
    data = tiny_slots()
    cfg = tiny_pretrain(steps=3, eeg_dropout=0.0, projector_dropout=0.0)
    eager = pretrain(data, cfg, device="cpu", verbose=False)
    compiled = pretrain(data, cfg, device="cpu", compile="default", verbose=False)
    np.testing.assert_allclose([h["loss"] for h in compiled[1]],
                               [h["loss"] for h in eager[1]], rtol=1e-4)
    initial = pretrain(data, replace(cfg, steps=1, lr=1e-30), device="cpu",
                       verbose=False)[0].state_dict()
    assert_trained_alike(compiled[0].state_dict(), eager[0].state_dict(), initial)


@pytest.mark.gpu
def test_the_cuda_step_queues_steps_and_still_names_a_bad_one(monkeypatch):
    """On CUDA the loss is read every 32 steps: 40 steps give 40 entries, and a NaN at
    step 35 (read with the last, partial batch of reads) is named."""
    data = tiny_slots()
    model, history = pretrain(data, tiny_pretrain(steps=40), device="cuda", verbose=False)
    assert [h["step"] for h in history] == list(range(40))
    assert np.isfinite([h["loss"] for h in history]).all()
    assert next(model.parameters()).device.type == "cuda"
    real = engine.draw_inputs

    def nan_at_35(source, plan, step, *args, **kw):
        out = real(source, plan, step, *args, **kw)
        assert all(x.device.type == "cuda" for x in out.values())  # drawn on the device
        return {m: x * float("nan") for m, x in out.items()} if step == 35 else out

    monkeypatch.setattr(engine, "draw_inputs", nan_at_35)
    with pytest.raises(TrainingDivergedError, match=r"nan at step 35\b"):
        pretrain(data, tiny_pretrain(steps=40), device="cuda", verbose=False)


@pytest.mark.gpu
def test_a_cuda_graph_step_gives_the_eager_losses_on_cuda():
    data = tiny_slots()
    cfg = tiny_pretrain(steps=3, eeg_dropout=0.0, projector_dropout=0.0)
    eager = pretrain(data, cfg, device="cuda", verbose=False)[1]
    graphs = pretrain(data, cfg, device="cuda", compile="reduce-overhead", verbose=False)[1]
    np.testing.assert_allclose([h["loss"] for h in graphs], [h["loss"] for h in eager],
                               rtol=1e-3)


def _compiled_graphs_per_fold(n_folds: int, runs) -> list:
    """Dynamo's count of distinct graphs after each of *n_folds* folds, each fold running
    ``runs(allowed)`` on its own training cells, from a fresh Dynamo cache."""
    import torch._dynamo
    from torch._dynamo.utils import counters

    torch._dynamo.reset()
    counters.clear()
    data, graphs = tiny_slots(), []
    for fold in range(n_folds):
        allowed = data.valid.copy()
        allowed[fold % 6, fold % 5] = False  # ten distinct folds
        runs(data, allowed)
        graphs.append((counters["stats"]["unique_graphs"], counters["frames"]["total"]))
    return graphs


def test_a_compiled_step_is_compiled_once_and_reused_by_every_fold():
    """compile="default" (inductor): each fold builds a new model and a new compiled step;
    the first fold compiles one graph, the nine others replay it (no recompilation). The
    step is that of the test above (dropout off), whose compiled graph inductor's cache holds."""
    cfg = tiny_pretrain(steps=1, eeg_dropout=0.0, projector_dropout=0.0)
    graphs = _compiled_graphs_per_fold(10, lambda data, allowed: pretrain(
        data, cfg, allowed=allowed, device="cpu", compile="default", verbose=False))
    assert graphs == [(1, 1)] * 10


@pytest.mark.slow
def test_compiled_long_and_short_encoders_take_two_graphs_for_every_fold():
    """The long and short encoders of a fold are two structures (two input lengths): two
    graphs for the first fold, none for the nine others."""
    from physiosync.training.pretrain import pretrain_encoders

    cfg = tiny_pretrain(steps=1)
    graphs = _compiled_graphs_per_fold(10, lambda data, allowed: pretrain_encoders(
        data, cfg, n_sub=2, allowed=allowed, device="cpu", compile="default", verbose=False))
    assert graphs == [(2, 2)] * 10


def test_compiled_structures_raise_dynamos_entry_limit(monkeypatch):
    import torch._dynamo

    monkeypatch.setattr(engine, "_STRUCTURES", {})
    monkeypatch.setattr(torch._dynamo.config, "recompile_limit", 8)
    module = torch.nn.Linear(2, 2)
    for i in range(6):  # six configurations, each up to two entries of the step's cache
        engine.compile_step(module, "default", structure=("cfg", i))
    engine.compile_step(module, "default", structure=("cfg", 0))  # seen: nothing changes
    assert len(engine._STRUCTURES) == 6 and torch._dynamo.config.recompile_limit == 14


@pytest.mark.parametrize("pairing, n_sub, augmented", [("independent", 1, True),
                                                        ("shared", 2, True),
                                                        ("independent", 2, False)])
def test_fold_inputs_drawn_together_equal_each_folds_draw_bit_for_bit(pairing, n_sub,
                                                                      augmented):
    data = tiny_slots()
    cfg = tiny_pretrain(augment_pairing=pairing, augment=augmented)
    masks = [data.valid.copy() for _ in range(3)]
    for k, m in enumerate(masks):
        m[k] = False
    plans = [engine.StepPlans(make_sampler(m, cfg, n_sub=n_sub), 4, torch.device("cpu"))
             for m in masks]
    gen = torch.Generator()
    for step in range(4):
        together = engine.draw_fold_inputs(data, [p.at(step) for p in plans], step, gen, cfg,
                                           ("eeg", "gsr"), n_sub, torch.device("cpu"))
        for k, p in enumerate(plans):
            alone = engine.draw_inputs(data, p.at(step), step, gen, cfg, ("eeg", "gsr"), n_sub,
                                       torch.device("cpu"))
            for m in ("eeg", "gsr"):
                assert torch.equal(together[m][k], alone[m])


def test_epoch_losses_are_read_once_and_name_the_first_bad_one():
    losses = engine.EpochLosses()
    for v in (1.0, 2.0, float("nan"), float("inf")):
        losses.add(torch.tensor(v, requires_grad=True) * 1)
    assert len(losses) == 4
    values = losses.read()
    assert values[:2] == [1.0, 2.0] and len(losses) == 0 and losses.read() == []
    index, value = engine.EpochLosses.first_bad(values)
    assert index == 2 and np.isnan(value)
    assert engine.EpochLosses.first_bad([1.0, 2.0]) is None


def test_fine_tuning_reads_its_losses_once_per_epoch(monkeypatch):
    from physiosync.params import FinetuneConfig
    from physiosync.training.finetune import finetune

    data = tiny_slots()
    data.labels = np.tile(np.arange(5) % 2, (6, 1))
    cells = np.argwhere(data.valid)
    reads = []
    real = engine.EpochLosses.read

    def counted(self):
        values = real(self)
        reads.append(values)
        return values

    monkeypatch.setattr(engine.EpochLosses, "read", counted)
    _, history = finetune(data, cells, config=FinetuneConfig(epochs=3, batch_size=32),
                          long_config=tiny_pretrain(), n_sub=2, device="cpu", verbose=False)
    assert len(reads) == 3 and [len(r) for r in reads] == [h["steps"] for h in history]
    assert [h["train_loss"] for h in history] == [float(np.mean(r)) for r in reads]


def test_device_rows_share_host_arrays_off_cuda():
    x = np.arange(24, dtype=np.float32).reshape(6, 4)
    y = np.arange(6)
    rows = engine.DeviceRows([x, y], torch.device("cpu"))
    assert rows.where == torch.device("cpu") and rows.arrays[0].data_ptr() == x.ctypes.data
    xb, yb = rows.take(rows.index([4, 1]))
    assert torch.equal(xb, torch.from_numpy(x[[4, 1]])) and yb.tolist() == [4, 1]
    assert torch.equal(rows.take(slice(2, 4))[0], torch.from_numpy(x[2:4]))

"""Fold-batched pre-training gives the K separate runs' results (pretrain.batch_folds)."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from _numerics import assert_trained_alike
from _tiny import tiny_pretrain, tiny_slots, tiny_study
from physiosync import PhysioSyncError
from physiosync.config import ConfigError, load_config
from physiosync.evaluation.protocols import Fold
from physiosync.execution import ProcessExecutor, SerialExecutor, Unit
from physiosync.experiment import run_experiment
from physiosync.params import PretrainConfig
from physiosync.training.fold_batch import pretrain_folds
from physiosync.training.pretrain import pretrain

def _masks(shape, k):
    """K folds, fold k without trial k."""
    out = []
    for i in range(k):
        a = np.ones(shape, bool)
        a[:, i] = False
        out.append(a)
    return out


@pytest.mark.parametrize("n_sub, kw", [(1, {}), (2, {}),
                                       (1, {"augment_pairing": "shared"})])
def test_batched_folds_give_the_separate_runs(n_sub, kw):
    torch.set_num_threads(1)
    data, cfg = tiny_slots(), tiny_pretrain(**kw)
    masks = _masks(data.shape, 3)
    batched = pretrain_folds(data, cfg, allowed=masks, n_sub=n_sub, device="cpu")
    initial = pretrain(data, replace(cfg, steps=1, lr=1e-30), allowed=masks[0],
                       n_sub=n_sub, device="cpu")[0].state_dict()  # (the shared start)
    separate = [pretrain(data, cfg, allowed=m, n_sub=n_sub, device="cpu") for m in masks]
    probe = data.x["eeg"][0, :, 0][:, :, :64 // n_sub]  # one window per trial, all folds
    for (mb, hb), (ms, hs) in zip(batched, separate):
        assert [h["step"] for h in hb] == [h["step"] for h in hs] == list(range(6))
        np.testing.assert_allclose([h["loss"] for h in hb], [h["loss"] for h in hs],
                                   rtol=1e-5)
        assert set(hb[0]) == set(hs[0])
        # measured: at most 0.4 % of how far training moved a tensor (1 % allowed)
        assert_trained_alike(mb.state_dict(), ms.state_dict(), initial)
        assert not mb.training and not mb.encoders["eeg"].blocks[0].attn.explicit_softmax
        with torch.no_grad():
            torch.testing.assert_close(mb.encoders["eeg"](probe), ms.encoders["eeg"](probe),
                                       rtol=1e-4, atol=1e-4)
    # the folds did train apart, each on its own cells
    assert [h["loss"] for h in batched[0][1]] != [h["loss"] for h in batched[1][1]]


def test_folds_with_other_step_counts_are_batched_apart_and_kept_in_order():
    data = tiny_slots()
    cfg = PretrainConfig(embed_dim=16, depth=1, n_heads=2, projector_dims=(32,), cmca_dim=16,
                         batch_slots=4, group_size=1, epochs=1)
    small = np.ones(data.shape, bool)
    small[:, 2:] = False  # 2 trials x 4 windows = 8 slots: 2 steps an epoch
    masks = [np.ones(data.shape, bool), small, np.ones(data.shape, bool)]
    runs = pretrain_folds(data, cfg, allowed=masks, device="cpu", labels=["a", "b", "c"])
    assert [len(h) for _, h in runs] == [5, 2, 5]
    alone = pretrain(data, cfg, allowed=small, device="cpu")[1]
    np.testing.assert_allclose([h["loss"] for h in runs[1][1]], [h["loss"] for h in alone],
                               rtol=1e-5)


def test_a_diverging_fold_is_named():
    data = tiny_slots()
    data.x["eeg"][0, 1] = float("nan")  # trial 1 of subject 0: only fold 0 may draw it
    masks = _masks(data.shape, 2)
    masks = [masks[1], masks[0]]  # the first fold excludes trial 1, the second draws it
    with pytest.raises(PhysioSyncError, match=r"^second: pre-training loss became nan at "
                                              r"step \d"):
        pretrain_folds(data, tiny_pretrain(), allowed=masks, device="cpu", labels=["first", "second"])


def test_batch_folds_is_refused_under_torchrun(monkeypatch):
    import physiosync.training.fold_batch as fb

    monkeypatch.setattr(fb, "distributed_context", lambda: object())
    with pytest.raises(PhysioSyncError, match="runs in one process; launch it without torchrun"):
        pretrain_folds(tiny_slots(), tiny_pretrain(), allowed=_masks((6, 5, 4), 2), device="cpu")


# ---------------------------------------------------------------------------- studies
def _study(root, cache, *extra):
    return tiny_study(root, cache, *extra, n_splits=3)


def _probabilities(run) -> dict:
    out = {}
    for path in sorted(run.glob("folds/*/fold_*.json")):
        rows = json.loads(path.read_text())["predictions"]
        out[str(path.relative_to(run))] = np.array([[v for k, v in r.items()
                                                     if k.startswith("p")] for r in rows])
    return out


def test_a_study_with_batched_folds_matches_one_by_one(study_root, tmp_path):
    cache = tmp_path / "cache"
    one = run_experiment(_study(study_root, cache), tmp_path / "one", verbose=False,
                         html=False, executor=SerialExecutor(threads=1))
    two = run_experiment(_study(study_root, cache, "pretrain.batch_folds=2"),
                         tmp_path / "two", verbose=False, html=False,
                         executor=SerialExecutor(threads=1))
    # folds 0 and 1 pre-trained together (both encoders), then fold 2 alone, as usual
    log = (tmp_path / "two" / "run.log").read_text()
    assert log.count("fold-batched pre-training: 2 folds") == 2
    assert "fold-batched pre-training: 1 folds" not in log
    a, b = _probabilities(tmp_path / "one"), _probabilities(tmp_path / "two")
    assert list(a) == list(b) and len(a) == 6
    for name in a:
        np.testing.assert_allclose(b[name], a[name], atol=2e-3, err_msg=name)
    sa = one["report"]["pipelines"]["physiosync"]["summary"]
    sb = two["report"]["pipelines"]["physiosync"]["summary"]
    assert sa.keys() == sb.keys()
    # an execution setting: the same run folder resumes with or without it
    again = run_experiment(_study(study_root, cache), tmp_path / "two", verbose=False,
                           html=False, executor=SerialExecutor(threads=1))
    assert again["report"]["pipelines"] == two["report"]["pipelines"]  # every fold reused
    assert again["report"]["config"]["pretrain"]["batch_folds"] == 1
    assert two["report"]["config"]["pretrain"]["batch_folds"] == 2


def test_batched_fold_groups_are_units_of_the_parallel_executors(study_root, tmp_path):
    cfg = _study(study_root, tmp_path / "cache", "pretrain.batch_folds=2")
    from physiosync.experiment import plan_experiment
    from physiosync.experiment.study import _run_units

    seen = []

    class Record(SerialExecutor):
        name = "record"

        def run(self, function, args, units):
            seen.extend(units)
            return super().run(function, args, units)

    plans = plan_experiment(cfg, verbose=False)["pipelines"]
    _run_units(cfg, plans, tmp_path / "run", Record(threads=1), resume=True)
    assert seen == [Unit("physiosync", (0, 1)), Unit("physiosync", (2,)),
                    Unit("bandpower", 0), Unit("bandpower", 1), Unit("bandpower", 2)]
    assert str(seen[0]) == "pipeline 'physiosync', folds 0, 1"
    assert len(list((tmp_path / "run").glob("folds/*/fold_*.json"))) == 6
    # a process pool runs the same groups, to the same bytes (one thread per unit in both)
    run_experiment(cfg, tmp_path / "pool", executor=ProcessExecutor(2, threads=1),
                   verbose=False, html=False)
    for path in sorted((tmp_path / "run").glob("folds/*/fold_*.json")):
        assert (tmp_path / "pool" / path.relative_to(tmp_path / "run")).read_bytes() == \
            path.read_bytes()


def test_batch_folds_and_compile_are_validated(tmp_path):
    with pytest.raises(ConfigError, match="'pretrain.batch_folds' must be an integer from 1"):
        load_config("tiny", ["pretrain.batch_folds=0"])
    with pytest.raises(ConfigError, match="'pretrain.compile' must be null or one of"):
        load_config("tiny", ["pretrain.compile=fast"])
    cfg = load_config("tiny", ["pretrain.batch_folds=4", "pretrain.compile=reduce-overhead"])
    assert cfg.pretrain_batch_folds == 4 and cfg.pretrain_compile == "reduce-overhead"


@pytest.mark.slow
def test_a_compiled_fold_batched_step_gives_the_eager_losses():
    """torch.compile over the vmapped step (48 s of compilation here: slow, not in CI)."""
    data = tiny_slots()
    cfg = tiny_pretrain(eeg_dropout=0.0, projector_dropout=0.0)
    masks = _masks(data.shape, 3)
    eager = pretrain_folds(data, cfg, allowed=masks, device="cpu")
    compiled = pretrain_folds(data, cfg, allowed=masks, device="cpu", compile="default")
    for (_, he), (_, hc) in zip(eager, compiled):
        np.testing.assert_allclose([h["loss"] for h in hc], [h["loss"] for h in he],
                                   rtol=1e-5)


@pytest.mark.gpu
def test_batched_folds_on_cuda_give_the_separate_runs():
    data, cfg = tiny_slots(), tiny_pretrain()
    masks = _masks(data.shape, 3)
    batched = pretrain_folds(data, cfg, allowed=masks, device="cuda")
    separate = [pretrain(data, cfg, allowed=m, device="cuda") for m in masks]
    for (_, hb), (_, hs) in zip(batched, separate):
        np.testing.assert_allclose([h["loss"] for h in hb], [h["loss"] for h in hs],
                                   rtol=1e-4)


def test_batched_folds_record_the_held_out_diagnostic_of_the_separate_runs():
    torch.set_num_threads(1)
    data, cfg = tiny_slots(), tiny_pretrain()
    masks = _masks(data.shape, 2)
    held = [~m for m in masks]  # each fold's own missing trial
    batched = pretrain_folds(data, cfg, allowed=masks, device="cpu", held_out=held,
                             held_out_every=2)
    plain = pretrain_folds(data, cfg, allowed=masks, device="cpu")
    for (mb, hb), (mp, hp), m, h in zip(batched, plain, masks, held):
        _, hs = pretrain(data, cfg, allowed=m, held_out=h, held_out_every=2, device="cpu")
        points = [e for e in hb if "held_out" in e]
        assert [e["step"] for e in points] == [0, 2, 4, 5]
        assert hb[0]["held_out"] == pytest.approx(hs[0]["held_out"], rel=1e-5)  # same start
        for eb, es in zip(points, [e for e in hs if "held_out" in e]):
            assert eb["held_out"]["loss"] == pytest.approx(es["held_out"]["loss"], rel=1e-2)
        # the diagnostic leaves the batched training untouched
        assert [e["loss"] for e in hb] == [e["loss"] for e in hp]
        for k, v in mb.state_dict().items():
            assert torch.equal(v, mp.state_dict()[k]), k


@pytest.mark.parametrize("failure, falls_back", [
    ("diverged", True),        # the group's other folds must still finish
    ("out of memory", True),   # one fold needs about 1/K of a group's memory
    ("compiler", False),       # would fail again fold by fold, or hide the cause
])
def test_only_divergence_and_memory_make_a_group_run_fold_by_fold(monkeypatch, caplog,
                                                                  failure, falls_back):
    import logging

    import physiosync.evaluation.runner as runner
    from physiosync.config import load_config
    from physiosync.evaluation.pipelines import PIPELINE_KINDS
    from physiosync.exceptions import TrainingDivergedError

    errors = {"diverged": TrainingDivergedError("fold 1: the loss became nan at step 3"),
              "out of memory": torch.OutOfMemoryError("CUDA out of memory. Tried 2 GiB\nmore"),
              "compiler": RuntimeError("BackendCompilerFailed: inductor raised")}

    class Failing:
        def __init__(self, **kwargs):
            self.cache = kwargs["pretrain_cache"]

        def pretrain_folds(self, slots, group):
            self.cache["fold 0"] = "encoders"  # half done when it fails
            raise errors[failure]

    monkeypatch.setattr(runner, "PhysioSyncRunner", Failing)
    group = [Fold(0, [], [], [], []), Fold(1, [], [], [], [])]
    cache = {}
    data = type("Data", (), {"slots": None})()
    cfg = load_config("tiny", ["pretrain.batch_folds=2"])
    kind = PIPELINE_KINDS["physiosync"]
    assert kind.fold_batch(cfg) == 2  # the hook the orchestrator groups pending folds by
    caplog.set_level(logging.WARNING, logger="physiosync")
    if not falls_back:
        with pytest.raises(RuntimeError, match="BackendCompilerFailed"):
            kind.prepare_folds(cfg, data, group, cache=cache)
        return
    kind.prepare_folds(cfg, data, group, cache=cache)
    assert cache == {}  # each fold pre-trains on its own
    [record] = [r for r in caplog.records if r.levelno == logging.WARNING]
    message = record.getMessage()
    assert "folds [0, 1] together" in message and "one at a time" in message
    assert ("the loss became nan" if failure == "diverged" else
            "CUDA out of memory. Tried 2 GiB)") in message

"""TrainingRun: the resume guard, data fingerprint, mixed precision and divergence check
shared by pre-training and fine-tuning."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from physiosync.exceptions import CheckpointError, TrainingDivergedError
from physiosync.training.engine import TrainingRun, state_is_finite
from physiosync.training.checkpoints import read_checkpoint

CPU = torch.device("cpu")
CONFIG = {"lr": 1e-3, "depth": 2, "steps": 10}


def make_run(kind="pretrain", checkpoint=None, *, config=CONFIG, data=(np.ones(3), 1),
             **kw) -> TrainingRun:
    kw.setdefault("resume", True)
    return TrainingRun(kind, checkpoint, device=CPU, amp=True, config=dict(config),
                       data_identity=data, **kw)


def model_and_optimizer():
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    model(torch.ones(4, 3)).sum().backward()
    opt.step()  # the optimiser now holds state
    return model, opt


def write(run: TrainingRun, at: int, model, opt) -> None:
    run.save(at, {"model": model.state_dict(), "optimizer": opt.state_dict(), "history": []},
             opt, where=f"before step {at}")


def test_mixed_precision_is_off_on_the_cpu():
    run = make_run()
    assert run.use_amp is False and not run.scaler.is_enabled()
    model, opt = model_and_optimizer()
    before = model.weight.detach().clone()
    with run.autocast():
        loss = model(torch.ones(4, 3)).sum()
    assert loss.dtype == torch.float32
    run.backward_step(opt, loss)
    assert not torch.equal(before, model.weight)


def test_unknown_kind_is_refused():
    with pytest.raises(ValueError, match="kind must be one of"):
        make_run("distill")


def test_nothing_to_resume(tmp_path):
    assert make_run().resume_state(10) is None  # no checkpoint
    assert make_run(checkpoint=tmp_path / "none.pt").resume_state(10) is None  # no file
    model, opt = model_and_optimizer()
    write(make_run(checkpoint=tmp_path / "c.pt"), 4, model, opt)
    run = make_run(checkpoint=tmp_path / "c.pt", resume=False)
    assert run.resume_state(10) is None and run.saved is None


def test_resume_round_trip_and_the_stored_fields(tmp_path):
    ckpt = tmp_path / "c.pt"
    model, opt = model_and_optimizer()
    write(make_run(checkpoint=ckpt), 4, model, opt)
    raw = read_checkpoint(ckpt)
    assert list(raw)[:4] == ["kind", "config", "step", "data_key"]
    assert raw["kind"] == "pretrain" and raw["step"] == 4 and raw["config"] == CONFIG
    run = make_run(checkpoint=ckpt)
    state = run.resume_state(10)
    assert run.saved == 4 and state["data_key"] == run.data_key
    for k, v in model.state_dict().items():
        assert torch.equal(state["model"][k], v)


@pytest.mark.parametrize("kind,unit", [("pretrain", "step"), ("finetune", "epoch")])
def test_resume_guard_refuses_other_settings_data_and_budgets(tmp_path, kind, unit):
    ckpt = tmp_path / "c.pt"
    model, opt = model_and_optimizer()
    make_run(kind, ckpt).save(4, {"model": model.state_dict()}, opt, where="")
    what = {"pretrain": "pre-training", "finetune": "fine-tuning"}[kind]
    # another configuration: the message names the keys that differ
    with pytest.raises(CheckpointError, match=rf"different {what} configuration \(differs in "
                                              rf"depth, lr\); delete it"):
        make_run(kind, ckpt, config={**CONFIG, "lr": 1.0, "depth": 3}).resume_state(10)
    # ... unless the caller lets those keys change
    assert make_run(kind, ckpt, config={**CONFIG, "lr": 1.0},
                    ignore=("lr",)).resume_state(10) is not None
    # another kind of run
    other = {"pretrain": "finetune", "finetune": "pretrain"}[kind]
    with pytest.raises(CheckpointError, match=r"differs in kind"):
        make_run(other, ckpt).resume_state(10)
    # other data (another fold)
    with pytest.raises(CheckpointError, match="written for different .*another fold"):
        make_run(kind, ckpt, data=(np.zeros(3), 1)).resume_state(10)
    # more steps (epochs) already done than asked for
    with pytest.raises(CheckpointError, match=rf"already holds 4 {unit}s, more than the 3 "
                                              rf"requested; raise {unit}s"):
        make_run(kind, ckpt).resume_state(3)


def test_the_refusal_says_how_to_change_resumable_settings(tmp_path):
    ckpt = tmp_path / "c.pt"
    model, opt = model_and_optimizer()
    write(make_run(checkpoint=ckpt), 2, model, opt)
    with pytest.raises(CheckpointError, match=r"differs in lr\).*To change lr or weight_decay "
                                              r"on resume, pass resume_with"):
        make_run(checkpoint=ckpt, config={**CONFIG, "lr": 1.0},
                 resumable=("lr", "weight_decay")).resume_state(10)


def test_check_loss_names_the_last_good_checkpoint(tmp_path):
    run = make_run()
    assert run.check_loss(0.5, "at step 0") == 0.5
    with pytest.raises(TrainingDivergedError,
                       match=r"^pre-training loss became inf at step 3 \(x=1\)\. Try a lower lr"):
        run.check_loss(float("inf"), "at step 3", " (x=1)")
    ckpt = tmp_path / "c.pt"
    run = make_run(checkpoint=ckpt)
    model, opt = model_and_optimizer()
    write(run, 2, model, opt)
    with pytest.raises(TrainingDivergedError, match=r"nan at step 3; the last good checkpoint "
                                                    r"\(.*c\.pt, step 2\) is kept\. Resume it"):
        run.check_loss(float("nan"), "at step 3")


def test_non_finite_state_is_never_saved(tmp_path):
    ckpt = tmp_path / "c.pt"
    run = make_run("finetune", ckpt)
    model, opt = model_and_optimizer()
    run.save(1, {"model": model.state_dict()}, opt, where="in epoch 0")
    good = read_checkpoint(ckpt)
    with torch.no_grad():
        model.bias.fill_(float("nan"))
    with pytest.raises(TrainingDivergedError, match=r"^fine-tuning weights became NaN or "
                                                    r"infinite in epoch 1; the last good "
                                                    r"checkpoint \(.*c\.pt\) is kept\.$"):
        run.save(2, {"model": model.state_dict()}, opt, where="in epoch 1")
    assert run.saved == 1
    kept = read_checkpoint(ckpt)
    assert kept["epoch"] == 1 and torch.equal(kept["model"]["bias"], good["model"]["bias"])
    # The optimiser's state counts too.
    model, opt = model_and_optimizer()
    assert state_is_finite(model.state_dict(), opt)
    next(iter(opt.state.values()))["exp_avg"].fill_(float("inf"))
    assert not state_is_finite(model.state_dict(), opt)
    assert state_is_finite(model.state_dict())

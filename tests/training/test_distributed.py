"""Data-parallel pre-training under torchrun (gloo, two CPU processes)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from physiosync import load_checkpoint
from physiosync.cli import main
from physiosync.synthetic import make_deap

HERE = Path(__file__).resolve().parents[1]  # the helpers stay in tests/
#: Pre-training settings under which one process and two must agree: no augmentation
#: noise or dropout (drawn per rank), 8 slots shared 4 + 4.
SETTINGS = ["--set", "pretrain.steps=6", "--set", "pretrain.augment=false",
            "--set", "pretrain.eeg_dropout=0", "--set", "pretrain.projector_dropout=0",
            "--set", "pretrain.batch_slots=8", "--set", "pretrain.group_size=1",
            "--set", "pretrain.checkpoint_every=2"]


@pytest.fixture(scope="module")
def ddp_root(tmp_path_factory):
    return make_deap(tmp_path_factory.mktemp("ddp") / "d", n_subjects=3, n_trials=4,
                     seconds=10, effect=2.0, seed=6, verbose=False)


def _common(root, cache):
    return ["--dataset", "deap", "--data-root", str(root), "--config", "tiny", "-q",
            "--cache-dir", str(cache), *SETTINGS]


def _torchrun(*args, script=None, nproc=2):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    target = [str(script)] if script else ["-m", "physiosync"]
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                           f"--nproc-per-node={nproc}", *target, *args],
                          capture_output=True, text=True, env=env, timeout=240)


def test_two_processes_follow_the_loss_curve_of_one_with_the_same_global_batch(ddp_root,
                                                                              tmp_path):
    common = _common(ddp_root, tmp_path / "cache")
    assert main(["pretrain", *common, "--out", str(tmp_path / "one")]) == 0
    proc = _torchrun("pretrain", *common, "--out", str(tmp_path / "two"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "data-parallel pre-training on 2 processes" in proc.stdout
    assert proc.stdout.count("pre-training the long encoders") == 1  # rank 0 speaks
    for name in ("long", "short"):
        one, _, meta_one = load_checkpoint(tmp_path / "one" / f"pretrain_{name}.pt")
        two, _, meta_two = load_checkpoint(tmp_path / "two" / f"pretrain_{name}.pt")
        a = [h["loss"] for h in meta_one["history"]]
        b = [h["loss"] for h in meta_two["history"]]
        assert len(a) == len(b) == 6
        np.testing.assert_allclose(b, a, rtol=1e-5)
        assert a[0] != a[-1]  # the curve moves: the match is not of a constant
        # The same function. Not every weight: a bias that feeds a batch norm has a zero
        # gradient in exact arithmetic, so Adam (which divides by the gradient's RMS)
        # turns its rounding noise into steps of up to lr, which the batch norm cancels.
        a, b = one["pretrain"].train(), two["pretrain"].train()  # batch statistics
        gen = torch.Generator().manual_seed(0)
        for m in a.modalities:
            x = torch.randn(8, a.n_chans[m], a.n_times[m], generator=gen)
            with torch.no_grad():
                za = a.projectors[m](a.encoders[m](x))
                zb = b.projectors[m](b.encoders[m](x))
            torch.testing.assert_close(zb, za, rtol=1e-3, atol=1e-4)


def test_a_global_batch_the_ranks_cannot_share_is_refused_in_one_line(ddp_root, tmp_path):
    proc = _torchrun("pretrain", *_common(ddp_root, tmp_path / "cache"), "--set",
                     "pretrain.batch_slots=5", "--out", str(tmp_path / "x"))
    assert proc.returncode != 0
    assert ("physiosync: error: pretrain.batch_slots = 5 stimulus slots cannot be shared by "
            "2 processes; use a multiple of 2") in proc.stderr
    assert not (tmp_path / "x" / "pretrain_long.pt").exists()


def test_a_rank_that_dies_ends_the_run_and_leaves_the_checkpoint_intact(ddp_root, tmp_path):
    common = _common(ddp_root, tmp_path / "cache")
    proc = _torchrun("pretrain", *common, "--out", str(tmp_path / "run"),
                     script=HERE / "_ddp_crash.py")
    assert proc.returncode != 0
    _, _, meta = load_checkpoint(tmp_path / "run" / "pretrain_long.pt")
    assert meta["step"] == 2  # the last one written before rank 1 died at step 3
    assert [h["step"] for h in meta["history"]] == [0, 1]
    # the same command resumes it, here in one process: the global batch is the same
    assert main(["pretrain", *common, "--out", str(tmp_path / "run")]) == 0
    _, _, meta = load_checkpoint(tmp_path / "run" / "pretrain_long.pt")
    assert [h["step"] for h in meta["history"]] == list(range(6))


@pytest.mark.slow
def test_a_compiled_step_under_torchrun_follows_one_process(ddp_root, tmp_path):
    """torch.compile of the DistributedDataParallel step (34 s here, mostly compilation)."""
    common = _common(ddp_root, tmp_path / "cache")
    assert main(["pretrain", *common, "--out", str(tmp_path / "one")]) == 0
    proc = _torchrun("pretrain", *common, "--set", "pretrain.compile=default",
                     "--out", str(tmp_path / "two"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    for name in ("long", "short"):
        a = [h["loss"] for h in load_checkpoint(tmp_path / "one" / f"pretrain_{name}.pt")[2]
             ["history"]]
        b = [h["loss"] for h in load_checkpoint(tmp_path / "two" / f"pretrain_{name}.pt")[2]
             ["history"]]
        np.testing.assert_allclose(b, a, rtol=1e-5)  # measured: 3.5e-7


def test_held_out_diagnostics_under_torchrun_match_one_process(tmp_path):
    """The held-out loss and retrieval of two ranks are those of one process: every rank
    evaluates all held-out rows with the same weights.

    At step 0 (the random encoder) they are equal. Later, the held-out evaluation runs in
    eval mode, where batch norm uses its running statistics: a bias that feeds a batch
    norm has a zero gradient in exact arithmetic, Adam turns rounding-level gradients
    into full steps of different sign on each side (see the test above), and the running
    mean follows that bias with a lag, so the evaluated function differs slightly
    (measured: at most 0.4 % relative on the loss and its terms, the same retrievals),
    while the held-out loss itself moves by about 25 % over the run.
    """
    root = make_deap(tmp_path / "d", n_subjects=3, n_trials=8, seconds=10, effect=2.0,
                     seed=6, verbose=False)  # 4 videos to train on, 4 held out
    common = _common(root, tmp_path / "cache")
    script = HERE / "_ddp_held_out.py"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    one = subprocess.run([sys.executable, str(script), "pretrain", *common, "--out",
                          str(tmp_path / "one")], capture_output=True, text=True, env=env,
                         timeout=240)
    assert one.returncode == 0, one.stderr[-3000:]
    two = _torchrun("pretrain", *common, "--out", str(tmp_path / "two"), script=script)
    assert two.returncode == 0, two.stderr[-3000:]
    for name in ("long", "short"):
        _, _, meta_one = load_checkpoint(tmp_path / "one" / f"pretrain_{name}.pt")
        _, _, meta_two = load_checkpoint(tmp_path / "two" / f"pretrain_{name}.pt")
        a = [h["held_out"] for h in meta_one["history"] if "held_out" in h]
        b = [h["held_out"] for h in meta_two["history"] if "held_out" in h]
        assert len(a) == len(b) >= 2  # step 0 (the random encoder) and the last step
        assert a[0] == b[0]
        assert a[0]["loss"] != a[-1]["loss"]  # measured, not a constant
        for x, y in zip(a, b):
            assert set(x) == set(y)
            for key in x:
                if key.startswith("retrieval"):  # a fraction of 128 held-out rows
                    assert abs(y[key] - x[key]) <= 2 / 128, (name, key, x[key], y[key])
                else:
                    np.testing.assert_allclose(y[key], x[key], rtol=1e-2,
                                               err_msg=f"{name} held-out {key}")


@pytest.mark.parametrize("mode, device, refused", [
    ("default", "cuda", True), ("reduce-overhead", "cuda:1", True),
    ("default", "cpu", False), (None, "cuda", False), ("none", "cuda", False),
])
def test_compile_under_torchrun_on_cuda_is_refused_until_tested(mode, device, refused):
    from physiosync import PhysioSyncError
    from physiosync.training.pretrain import check_distributed_compile

    if refused:
        with pytest.raises(PhysioSyncError, match="pretrain.compile: none"):
            check_distributed_compile(mode, torch.device(device))
    else:
        check_distributed_compile(mode, torch.device(device))


def test_pretrain_refuses_a_compiled_step_under_torchrun_on_cuda_before_any_work(monkeypatch):
    import physiosync.training.pretrain as pretrain_module
    from physiosync import PhysioSyncError
    from _tiny import tiny_pretrain, tiny_slots

    class FakeRanks:
        local_rank = 0

        def check_batch(self, batch_slots):
            pass

    monkeypatch.setattr(pretrain_module, "distributed_context", lambda: FakeRanks())
    monkeypatch.setattr(pretrain_module, "resolve_device", lambda d: torch.device("cuda"))
    with pytest.raises(PhysioSyncError, match="under torchrun on CUDA is not tested"):
        pretrain_module.pretrain(tiny_slots(), tiny_pretrain(), compile="default")


def test_one_process_has_no_group_and_goes_first(monkeypatch):
    from physiosync.training.distributed import main_rank_first, process_group

    monkeypatch.delenv("WORLD_SIZE", raising=False)
    with process_group("cpu") as context, main_rank_first(context) as main_rank:
        assert context is None and main_rank is True


@pytest.mark.parametrize("batch, device, compile, match", [
    (5, "cpu", None, "batch_slots = 5 stimulus slots cannot be shared by 2 processes"),
    (4, "cuda", "default", "pretrain.compile: none"),
])
def test_check_pretraining_refuses_what_the_ranks_cannot_run(batch, device, compile, match,
                                                            monkeypatch):
    import physiosync._utils.device as device_module
    from physiosync import PhysioSyncError
    from physiosync.training.distributed import DistributedContext
    from _tiny import tiny_pretrain

    monkeypatch.setattr(device_module, "resolve_device", lambda d: torch.device(d))
    context = DistributedContext(rank=1, world_size=2, local_rank=1)
    configs = (tiny_pretrain(batch_slots=4), tiny_pretrain(batch_slots=batch))
    with pytest.raises(PhysioSyncError, match=match):
        context.check_pretraining(configs, compile=compile, device=device)
    context.check_pretraining(configs[:1], compile=None, device="cpu")  # shareable: passes

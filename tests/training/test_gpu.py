"""The training engine on CUDA: bf16 training, fold-batched steps, predictions' device.

Every test here is marked ``gpu`` and skipped without CUDA (tests/conftest.py);
``benchmarks/gpu_check.sh`` runs them with ``-m gpu`` on a CUDA machine. The CUDA tests
of the models, losses and step engine sit beside their CPU tests, with the same mark.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from _tiny import tiny_pretrain, tiny_slots
from physiosync.estimators import PhysioSyncClassifier
from physiosync.training.finetune import FinetuneConfig, finetune, predict_proba
from physiosync.training.fold_batch import pretrain_folds
from physiosync.training.pretrain import pretrain
from physiosync.training.sampling import SlotData

pytestmark = pytest.mark.gpu


def _labelled(seed: int = 0) -> SlotData:
    """tiny_slots with a label per (subject, trial) that the EEG carries (a mean shift)."""
    data = tiny_slots(seed)
    labels = np.tile(np.arange(data.shape[1]) % 2, (data.shape[0], 1))
    x = {m: v.numpy().copy() for m, v in data.x.items()}
    x["eeg"] += 0.5 * labels[:, :, None, None, None].astype("float32")
    return SlotData(x, data.valid, data.subjects, data.trials, labels=labels)


def _cells(data: SlotData, trials) -> np.ndarray:
    s, t, w = np.nonzero(data.valid)
    keep = np.isin(t, list(trials))
    return np.column_stack([s[keep], t[keep], w[keep]])


def _losses(history) -> np.ndarray:
    return np.array([h["loss"] for h in history])


def test_bf16_pretraining_on_cuda_follows_float32():
    # The CPU twin is tests/training/test_pretrain.py::test_bf16_autocast_runs_on_the_cpu_close_to_float32
    data = tiny_slots()
    model, fp32 = pretrain(data, tiny_pretrain(steps=8), device="cuda", verbose=False)
    _, bf16 = pretrain(data, tiny_pretrain(steps=8, amp="bf16"), device="cuda", verbose=False)
    assert next(model.parameters()).device.type == "cuda"
    a, b = _losses(fp32), _losses(bf16)
    assert np.isfinite(b).all() and not np.array_equal(a, b)
    np.testing.assert_allclose(b, a, rtol=0.05)


def test_a_bf16_fold_batched_step_on_cuda_gives_the_separate_bf16_runs():
    data, cfg = tiny_slots(), tiny_pretrain(amp="bf16")
    masks = []
    for k in range(3):  # fold k without trial k
        allowed = np.ones(data.shape, bool)
        allowed[:, k] = False
        masks.append(allowed)
    batched = pretrain_folds(data, cfg, allowed=masks, device="cuda")
    assert len(batched) == 3
    for (model, hb), m in zip(batched, masks):
        assert next(model.parameters()).device.type == "cuda"
        _, hs = pretrain(data, cfg, allowed=m, device="cuda", verbose=False)
        # bf16 rounds the batched (vmapped) and the plain matmuls differently: bf16's
        # tolerance, as against float32 above, not float32's 1e-4 of test_fold_batch
        np.testing.assert_allclose(_losses(hb), _losses(hs), rtol=0.05)


def test_bf16_finetuning_on_cuda_trains_and_predicts_on_the_host():
    data = _labelled()
    train, test = _cells(data, range(4)), _cells(data, [4])
    cfg = FinetuneConfig(hidden=(16, 8), epochs=2, batch_size=16, seed=0, amp="bf16",
                         use_short=False)
    model, history = finetune(data, train, config=cfg, long_config=tiny_pretrain(), n_sub=1,
                              device="cuda", verbose=False)
    assert next(model.parameters()).device.type == "cuda"
    assert all(np.isfinite(h["train_loss"]) for h in history)
    proba = predict_proba(model, data, test)
    assert isinstance(proba, np.ndarray) and proba.shape == (len(test), 2)
    np.testing.assert_allclose(proba.sum(1), 1, rtol=1e-3)


def test_predictions_run_on_the_device_asked_and_match_the_cpu():
    data = _labelled()
    train, test = _cells(data, range(4)), _cells(data, [4])
    cfg = FinetuneConfig(hidden=(16, 8), epochs=1, batch_size=16, seed=0, use_short=False)
    model, _ = finetune(data, train, config=cfg, long_config=tiny_pretrain(), n_sub=1,
                        device="cpu", verbose=False)
    on_cpu = predict_proba(model, data, test, device="cpu")
    on_cuda = predict_proba(model, data, test, device="cuda")
    assert next(model.parameters()).device.type == "cuda"  # moved where it was asked
    assert isinstance(on_cuda, np.ndarray)
    np.testing.assert_allclose(on_cuda, on_cpu, atol=1e-4)


def test_an_estimator_fitted_on_cuda_predicts_what_its_network_gives_on_the_cpu():
    data = _labelled()
    s, t, w = np.nonzero(data.valid)
    x = data.x["eeg"][s, t, w].numpy()
    y = data.labels[s, t]
    clf = PhysioSyncClassifier(n_sub=1, use_short=False, embed_dim=8, depth=1, n_heads=1,
                               n_prompts=0, projector_dims=(16, 16), epochs=2,
                               batch_size=16, val_size=0, random_state=0, pretrain=False,
                               device="cuda").fit(x, y)
    proba = clf.predict_proba(x)
    assert isinstance(proba, np.ndarray) and proba.shape == (len(x), 2)
    net = clf.model_.to("cpu").eval()  # the same network, run on the CPU
    with torch.no_grad():
        logits = net({"eeg": torch.from_numpy(x)})
    np.testing.assert_allclose(proba, torch.softmax(logits.float(), 1).numpy(), atol=1e-4)

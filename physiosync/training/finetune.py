"""Fine-tuning: the hierarchical fusion classifier over long and short encoders.

``PhysioSyncNet`` feeds each long (5 s) window to the long encoder of every
modality and each of its equal sub-windows (five 1 s windows) to the short encoder,
scales every feature by the confidence of a shared linear probe, concatenates and
classifies. Toggles give the usual ablations: EEG only, long or
short only, no gating, frozen encoders, no pre-training.

:func:`finetune` trains it. Epoch selection looks only at a validation set drawn
from the *training* data; the test data is never seen.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import time
import warnings

import numpy as np
import torch
from torch.nn import functional as F

from .._logging import (check_log_every, deprecated_show_progress, duration_text, logger,
                        progress, verbose)
from ..exceptions import PhysioSyncError
from ..models.physiosync import PhysioSyncNet
from ..params import FinetuneConfig
from .checkpoints import read_checkpoint, save_checkpoint
from .engine import EpochLosses, TrainingRun, make_optimizer, to_device
from .sampling import SlotData
from .._utils.docs import fill_doc
from .._utils import derive_seed, flush_denormals, resolve_device


def steps_per_epoch(n_windows: int, batch_size: int) -> int:
    """Optimisation steps of one fine-tuning epoch over *n_windows* training windows.

    A last batch of one window is skipped (batch normalisation needs two), as
    :func:`finetune` does.
    """
    full, rest = divmod(int(n_windows), int(batch_size))
    return full + (rest >= 2)

__all__ = ["finetune", "predict_proba", "evaluate_cells", "channel_importance",
           "steps_per_epoch", "time_finetune"]


def _gather(data: SlotData, mods, cells, device):
    """The windows at *cells* on *device*: read on the device when the windows are resident
    there (:meth:`SlotData.resident`), else read on the host and copied."""
    data = data.resident(device, mods)
    idx = to_device(torch.as_tensor(cells, dtype=torch.int64), data.device)
    return {m: to_device(data.gather(m, idx[:, 0], idx[:, 1], idx[:, 2]), device)
            for m in mods}


@torch.no_grad()
def predict_proba(model: PhysioSyncNet, data: SlotData, cells, *, batch_size: int = 256,
                  device=None) -> np.ndarray:
    """Class probabilities of the windows at grid *cells* ``(K, 3)`` = (subject, trial, window)."""
    dev = resolve_device(device) if device is not None else next(model.parameters()).device
    model.eval().to(dev)
    cells = np.asarray(cells, dtype=np.int64).reshape(-1, 3)
    out = []
    for i in range(0, len(cells), batch_size):
        logits = model(_gather(data, model.modalities, cells[i:i + batch_size], dev))
        out.append(torch.softmax(logits.float(), dim=1))
    # one copy back at the end: the host does not wait for the device batch by batch
    return torch.cat(out).cpu().numpy() if out else np.zeros((0, model.n_classes))


def channel_importance(model: PhysioSyncNet, data: SlotData, cells, *, modality: str = "eeg",
                       batch_size: int = 256, device=None) -> np.ndarray:
    """Per-channel attribution: mean ``|gradient x input|`` of the predicted class's logit.

    Parameters
    ----------
    model : PhysioSyncNet
        A fitted network.
    data : SlotData
        Windows.
    cells : ndarray of int, shape (K, 3)
        Windows to explain (any split: this reads the model, it does not select it).
    modality : str
        Modality whose channels are scored.
    batch_size : int
        Windows per forward/backward pass.
    device : str | None
        Torch device (default: the model's).

    Returns
    -------
    importance : ndarray, shape (n_channels,)
        Non-negative, summing to 1 (all zeros when the gradient vanishes).
    """
    cells = np.asarray(cells, dtype=np.int64).reshape(-1, 3)
    dev = next(model.parameters()).device if device is None else resolve_device(device)
    was_training = model.training
    model.eval()
    total = torch.zeros(data.n_chans(modality), dtype=torch.float64)
    for i in range(0, len(cells), batch_size):
        x = _gather(data, model.modalities, cells[i:i + batch_size], dev)
        x[modality].requires_grad_(True)
        logits = model(x)
        logits.gather(1, logits.argmax(1, keepdim=True)).sum().backward()
        attribution = (x[modality].grad * x[modality]).abs()
        total += attribution.sum(dim=(0, 2)).detach().to("cpu", torch.float64)
        model.zero_grad(set_to_none=True)
    model.train(was_training)
    s = float(total.sum())
    return (total / s).numpy() if s > 0 else total.numpy()


def evaluate_cells(model, data: SlotData, cells, labels, *, batch_size=256, device=None) -> dict:
    """Cross-entropy, accuracy and balanced accuracy of the windows at *cells*."""
    from sklearn.metrics import balanced_accuracy_score

    proba = predict_proba(model, data, cells, batch_size=batch_size, device=device)
    labels = np.asarray(labels)
    eps = 1e-12
    loss = float(-np.mean(np.log(proba[np.arange(len(labels)), labels] + eps)))
    pred = proba.argmax(1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a small validation set may hold one class
        balanced = float(balanced_accuracy_score(labels, pred))
    return {"loss": loss, "accuracy": float(np.mean(pred == labels)),
            "balanced_accuracy": balanced}


@flush_denormals()
@verbose
@deprecated_show_progress
def finetune(data: SlotData, train_cells, *, train_labels=None, val_cells=None, val_labels=None,
             config: FinetuneConfig | None = None,
             pretrained: dict | None = None, n_sub: int = 5, n_classes: int | None = None,
             long_config=None, short_config=None, device=None, checkpoint=None,
             resume: bool = True, init_cache: dict | None = None,
             log_every: int | None = None, verbose: bool | str | int | None = None):
    """Fine-tune a ``PhysioSyncNet`` on labelled windows.

    Parameters
    ----------
    data : SlotData
        Long windows with per-trial ``labels``.
    train_cells : ndarray of int, shape (K, 3)
        ``(subject, trial, window)`` grid positions to train on.
    train_labels : ndarray of int, shape (K,) | None
        Class of each training window, ``0..n_classes-1``; default: the per-trial
        ``data.labels``.
    val_cells : ndarray of int, shape (K_val, 3) | None
        Validation windows, from *training* subjects/trials only, for epoch selection.
    val_labels : ndarray of int, shape (K_val,) | None
        Their classes (default: from ``data.labels``).
    config : FinetuneConfig | None
        Hyper-parameters.
    pretrained : dict | None
        ``{"long": PretrainModel, "short": PretrainModel}`` to start from; ``None``
        trains from scratch (the "no pre-training" ablation).
    %(n_sub)s
    n_classes : int | None
        Number of classes (default: from the training labels).
    long_config, short_config : PretrainConfig | None
        Encoder sizes; default to those of the pre-trained models.
    device, checkpoint, resume, verbose
        As in :func:`physiosync.training.pretrain.pretrain`; the checkpoint is written after
        every epoch, and the progress bar counts epochs.
    init_cache : dict | None
        In-memory store of initial networks (pre-trained encoders loaded, head
        initialised), filled and read by this function. Calls with the same settings and
        the same *pretrained* objects start from identical weights, so the per-subject
        models of a fold can share one dict: the network is built once and copied on the
        device for the others (building a 90 M-parameter network initialises every
        weight first: 0.7 s on a 2-core CPU). Keyed by the identity of the pre-trained
        models: use one dict per set of them, and drop it with them.
    log_every : int | None
        Log a line at INFO every *log_every* epochs and after the last one: the
        epoch, its training loss, the validation loss and balanced accuracy (with
        validation windows), its seconds and the time left. ``None``: no such lines.

    Returns
    -------
    model : PhysioSyncNet
        With the selected epoch's weights, in eval mode.
    history : list of dict
        Per epoch: ``epoch``, ``lr``, ``train_loss`` and the validation metrics.

    Raises
    ------
    TrainingDivergedError
        If a training loss becomes NaN or infinite (naming the epoch), or the weights
        about to be checkpointed do.

    Notes
    -----
    The losses of an epoch's steps stay on the device and are read on the host once, at
    the end of the epoch (``EpochLosses``), before its
    validation, selection and checkpoint: on a GPU the host never waits for a step.
    """
    cfg = config or FinetuneConfig()
    check_log_every(log_every, "epochs")
    train_cells = np.asarray(train_cells, dtype=np.int64).reshape(-1, 3)
    val_cells = (np.asarray(val_cells, dtype=np.int64).reshape(-1, 3)
                 if val_cells is not None and len(val_cells) else None)
    y_train = _training_labels(data, train_cells, train_labels)
    n_classes = int(n_classes or max(int(y_train.max()) + 1, 2))
    dev = resolve_device(device)
    pretrained = pretrained or {}
    long_config = long_config or (pretrained["long"].config if "long" in pretrained else None)
    short_config = short_config or (pretrained["short"].config if "short" in pretrained
                                    else long_config)
    mods = tuple(cfg.modalities or data.modalities)
    model = _initial_network(data, cfg, mods, n_sub, n_classes, long_config, short_config,
                             dev, pretrained, init_cache)
    if cfg.freeze_encoders:
        for branch in (model.long, model.short):
            if branch is not None:
                branch.requires_grad_(False)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = make_optimizer(params, cfg.optimizer, cfg.lr, cfg.weight_decay)
    sched = (torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(
        opt, T_0=max(cfg.epochs // 3, 1), eta_min=0.0) if cfg.scheduler == "cosine-restarts"
        else None)
    y_val = _labels_of(data, val_cells, val_labels) if val_cells is not None else None
    # The fold (training and validation windows and labels) is part of what must match.
    run = TrainingRun("finetune", checkpoint, resume=resume, device=dev, amp=cfg.amp,
                      config=model.resolved_config(),
                      data_identity=(train_cells, y_train,
                                     val_cells if val_cells is not None else 0,
                                     y_val if y_val is not None else 0,
                                     data.subjects, data.trials))
    ckpt = run.checkpoint
    history, start = [], 0
    best_state, best_score = None, math.inf
    state = run.resume_state(cfg.epochs)
    if state is not None:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        if sched is not None:
            sched.load_state_dict(state["scheduler"])
        history, start = list(state["history"]), int(state["epoch"])
        best_state, best_score = state.get("best_state"), float(state.get("best_score", math.inf))
        logger.info("resuming fine-tuning from %s at epoch %d", ckpt, start)
    select = cfg.select if val_cells is not None else "last"
    # Copied once: a step then indexes them on the device (where the windows are, when
    # they fit there: SlotData.resident).
    train = (torch.from_numpy(train_cells).to(dev), torch.from_numpy(y_train).to(dev))
    for epoch in progress(range(start, cfg.epochs), desc="fine-tune", total=cfg.epochs - start):
        t_epoch = time.perf_counter()
        losses = _train_epoch(model, data, mods, cfg, run, opt, train, epoch, dev)
        record = {"epoch": epoch, "lr": opt.param_groups[0]["lr"],
                  "train_loss": float(np.mean(losses)) if losses else float("nan"),
                  "steps": len(losses), "seconds": time.perf_counter() - t_epoch}
        if sched is not None:
            sched.step()
        if val_cells is not None:
            metrics = evaluate_cells(model, data, val_cells, y_val, batch_size=cfg.batch_size)
            record.update({f"val_{k}": v for k, v in metrics.items()})
            score = (metrics["loss"] if select == "val_loss"
                     else -metrics["balanced_accuracy"] if select == "val_balanced_accuracy"
                     else 0.0)
            if select != "last" and score < best_score:
                best_score = score
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
                record["selected"] = True
        history.append(record)
        if log_every is not None and ((epoch + 1) % log_every == 0 or epoch == cfg.epochs - 1):
            _log_epoch(record, cfg.epochs, time.perf_counter() - t_epoch, val_cells is not None)
        if ckpt is not None:
            payload = {"model": model.state_dict(), "optimizer": opt.state_dict(),
                       "history": history, "best_score": best_score}
            if sched is not None:
                payload["scheduler"] = sched.state_dict()
            if best_state is not None:
                payload["best_state"] = best_state
            run.save(epoch + 1, payload, opt, where=f"in epoch {epoch}")
    if select != "last" and best_state is not None:
        model.load_state_dict(best_state)
        if ckpt is not None and start < cfg.epochs:
            # The finished checkpoint's "model" is the selected network, so that
            # load_checkpoint() returns exactly what this function returns.
            state = read_checkpoint(ckpt)
            state["model"] = model.state_dict()
            state["selected"] = True
            save_checkpoint(ckpt, state)
    return model.eval(), history


def _labels_of(data: SlotData, cells: np.ndarray, given) -> np.ndarray:
    """*given* as int64 labels, else the per-trial ``data.labels`` of *cells*."""
    if given is not None:
        return np.asarray(given, dtype=np.int64)
    if data.labels is None:
        raise PhysioSyncError("fine-tuning needs labels: pass them or set SlotData.labels.")
    return data.labels[cells[:, 0], cells[:, 1]]


def _training_labels(data: SlotData, cells: np.ndarray, given) -> np.ndarray:
    """The training windows' labels, refused in one line unless two classes can be fitted."""
    y = _labels_of(data, cells, given)
    if len(y) != len(cells):
        raise PhysioSyncError(f"{len(y)} training labels for {len(cells)} windows.")
    if len(cells) < 2:
        raise PhysioSyncError("fine-tuning needs at least 2 training windows.")
    if np.any(y < 0):
        raise PhysioSyncError("some training windows have no label.")
    classes = np.unique(y)
    if len(classes) < 2:
        raise PhysioSyncError(
            f"the training windows hold one class only ({int(classes[0])}); a classifier "
            "cannot be fitted. Use another split or target.")
    return y


def _initial_network(data: SlotData, cfg: FinetuneConfig, mods: tuple, n_sub: int,
                     n_classes: int, long_config, short_config, dev: torch.device,
                     pretrained: dict, init_cache: dict | None) -> PhysioSyncNet:
    """The network fine-tuning starts from, on *dev* (from *init_cache* when it holds it)."""
    sizes = ({m: data.n_chans(m) for m in mods}, {m: data.n_times(m) for m in mods})
    # Every model of a fold starts from the same weights (same seed, same encoders):
    # built once, then copied on the device (building initialises every weight first).
    key = (repr(sizes), n_sub, n_classes, repr(cfg), repr(long_config), repr(short_config),
           str(dev), id(pretrained.get("long")), id(pretrained.get("short")))
    if init_cache is not None and key in init_cache:
        return copy.deepcopy(init_cache[key])
    torch.manual_seed(derive_seed(cfg.seed, "finetune-init"))
    model = PhysioSyncNet(*sizes, n_sub, n_classes, cfg, long_config, short_config)
    model.load_pretrained(pretrained.get("long"), pretrained.get("short"))
    model.to(dev)
    if init_cache is not None:
        init_cache[key] = copy.deepcopy(model)
    return model


def _train_epoch(model: PhysioSyncNet, data: SlotData, mods: tuple, cfg: FinetuneConfig,
                 run: TrainingRun, opt, train: tuple, epoch: int, dev: torch.device) -> list:
    """One epoch of steps over the training windows; their losses, read once at the end.

    *train* holds the training cells and labels on *dev*. The losses stay on the device
    until the epoch ends (``EpochLosses``); a non-finite
    one then raises, naming the epoch.
    """
    cells, labels = train
    model.train()
    if cfg.freeze_encoders:
        for branch in (model.long, model.short):
            if branch is not None:
                branch.eval()
    n = len(cells)
    g = torch.Generator().manual_seed(derive_seed(cfg.seed, "finetune-epoch", epoch))
    order = torch.randperm(n, generator=g).to(dev)  # one copy an epoch
    losses = EpochLosses()
    for i in range(0, n, cfg.batch_size):
        rows = order[i:i + cfg.batch_size]
        if rows.numel() < 2:  # BatchNorm needs two samples
            continue
        torch.manual_seed(derive_seed(cfg.seed, "finetune-step", epoch, i))
        x = _gather(data, mods, cells[rows], dev)
        with run.autocast():
            loss = F.cross_entropy(model(x), labels[rows])
        losses.add(loss)
        run.backward_step(opt, loss)
    values = losses.read()
    bad = EpochLosses.first_bad(values)
    if bad is not None:
        run.check_loss(bad[1], f"in epoch {epoch}")
    return values


def _log_epoch(record: dict, epochs: int, seconds: float, validated: bool) -> None:
    """The INFO line of ``finetune(log_every=...)`` after an epoch (*seconds*: its time,
    the validation pass included)."""
    epoch = record["epoch"]
    logger.info(
        "fine-tuning epoch %d/%d: train loss %.4f%s (%.1f s, %s left)", epoch + 1, epochs,
        record["train_loss"],
        (f", val loss {record['val_loss']:.4f}, val balanced accuracy "
         f"{record['val_balanced_accuracy']:.3f}" if validated else ""),
        seconds, duration_text(seconds * (epochs - epoch - 1)))


def _balanced(cells: np.ndarray, labels: np.ndarray, n: int) -> np.ndarray:
    """*n* of *cells* taken in turn from each class (repeated if there are fewer)."""
    rank = np.empty(len(cells), dtype=np.int64)
    for c in np.unique(labels):
        where = np.nonzero(labels == c)[0]
        rank[where] = np.arange(len(where))
    order = np.lexsort((labels, rank))  # one of each class, then the next of each, ...
    return cells[np.resize(order, n)]


@fill_doc
def time_finetune(data: SlotData, train_cells, *, config: FinetuneConfig | None = None,
                  pretrained: dict | None = None, n_sub: int = 5, n_classes: int | None = None,
                  long_config=None, short_config=None, device=None, importance: bool = True,
                  steps: int = 3, warmup: int = 1) -> dict:
    """Time a few fine-tuning steps of full batches, as :func:`finetune` runs them.

    :func:`finetune` itself runs ``warmup + steps`` epochs of one batch each
    (``config.batch_size`` windows drawn in turn from each class of *train_cells*,
    repeated if there are fewer), so every epoch is one step; the first *warmup* are not
    counted. The trained network then times :func:`predict_proba` and, with
    *importance*, :func:`channel_importance` on the same windows.

    Parameters
    ----------
    data, config, pretrained, n_sub, n_classes, long_config, short_config, device
        As in :func:`finetune`.
    train_cells : ndarray of int, shape (K, 3)
        Labelled windows to draw the batch from (two classes at least).
    importance : bool
        Also time :func:`channel_importance`.
    %(timed_steps)s

    Returns
    -------
    timing : dict
        ``batch`` (windows per step), ``step`` (seconds of each timed step), ``setup``
        (seconds of :func:`finetune` outside its epochs: building the network and
        loading the encoders), ``predict_window`` and ``importance_window`` (seconds
        per window; the latter None without *importance*).
    """
    cfg = config or FinetuneConfig()
    cells = np.asarray(train_cells, dtype=np.int64).reshape(-1, 3)
    batch = _balanced(cells, data.labels[cells[:, 0], cells[:, 1]], cfg.batch_size)
    timed = dataclasses.replace(cfg, epochs=warmup + steps, scheduler="none", select="last")
    t0 = time.perf_counter()
    model, hist = finetune(data, batch, config=timed, pretrained=pretrained, n_sub=n_sub,
                           n_classes=n_classes, long_config=long_config,
                           short_config=short_config, device=device, verbose=False)
    wall = time.perf_counter() - t0
    out = {"batch": len(batch), "step": [h["seconds"] for h in hist[warmup:]],
           "setup": max(wall - sum(h["seconds"] for h in hist), 0.0),
           "importance_window": None}
    t0 = time.perf_counter()
    predict_proba(model, data, batch, batch_size=cfg.batch_size)
    out["predict_window"] = (time.perf_counter() - t0) / len(batch)
    if importance:
        eeg = "eeg" if "eeg" in (cfg.modalities or data.modalities) else None
        if eeg is not None:
            t0 = time.perf_counter()
            channel_importance(model, data, batch, modality=eeg, batch_size=cfg.batch_size)
            out["importance_window"] = (time.perf_counter() - t0) / len(batch)
    return out

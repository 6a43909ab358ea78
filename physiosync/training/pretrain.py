"""Contrastive pre-training: inter-subject temporal contrast plus CM-CA.

One :class:`PretrainModel` holds, for one window length, an encoder and a projector
per modality (EEG first, then one peripheral signal) and the shared CM-CA head.
:func:`pretrain` trains it with

    L = w_eeg * L_T(EEG) + w_pps * L_T(PPS) + w_cmca * L_CMCA

on batches from the :class:`~physiosync.training.sampling.SynchronySampler`. LS-TCL is two such
runs, one on 1 s and one on 5 s windows (:func:`pretrain_ls_tcl`).

Everything random in a step (the batch, the augmentation, dropout) is seeded from
``(seed, step)``, so a run resumed from a checkpoint ends at the same weights as an
uninterrupted one.
"""

from __future__ import annotations

import math
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from .._logging import logger, progress
from ..exceptions import PhysioSyncError, TrainingDivergedError
from ..models.losses import pretrain_loss
from ..models.physiosync import PretrainModel
from ..params import PretrainConfig
from .augment import N_KINDS, augment
from .checkpoints import CheckpointError, read_checkpoint, save_checkpoint
from .sampling import SlotData, SynchronySampler
from .._utils import derive_seed, fingerprint, flush_denormals, resolve_device

__all__ = ["pretrain", "pretrain_ls_tcl", "make_optimizer"]



#: Settings that ``pretrain(..., resume_with=...)`` may change when resuming.
RESUMABLE_SETTINGS = ("lr", "weight_decay")


def _state_is_finite(weights: dict, opt) -> bool:
    """Whether every floating-point weight, buffer and optimiser state is finite."""
    tensors = [*weights.values(),
               *(v for st in opt.state.values() for v in st.values()
                 if isinstance(v, torch.Tensor))]
    return all(bool(torch.isfinite(t).all()) for t in tensors
               if t.is_floating_point() and t.numel())


def _check_resume_with(resume_with) -> dict:
    resume_with = dict(resume_with or {})
    unknown = sorted(set(resume_with) - set(RESUMABLE_SETTINGS))
    if unknown:
        raise PhysioSyncError(f"resume_with may change {', '.join(RESUMABLE_SETTINGS)} only, "
                              f"got {', '.join(unknown)}.")
    for k, v in resume_with.items():
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) \
                or v < 0 or (k == "lr" and v == 0):
            raise PhysioSyncError(f"resume_with {k}={v!r}: expected a finite number "
                                  f"{'> 0' if k == 'lr' else '>= 0'}.")
        resume_with[k] = float(v)
    return resume_with


def make_optimizer(params, name: str, lr: float, weight_decay: float):
    """Adam (coupled L2, the reference's) or AdamW, fused where the device supports it.

    The fused kernels update all parameters in one pass; on the CPU that is about 8x
    faster than the default per-tensor loop (30 ms instead of 240 ms for the 26 M
    parameters of a 1 s pre-training run).
    """
    cls = torch.optim.AdamW if name == "adamw" else torch.optim.Adam
    params = list(params)
    try:
        return cls(params, lr=lr, weight_decay=weight_decay, fused=True)
    except (RuntimeError, ValueError, TypeError):  # a device without fused kernels
        return cls(params, lr=lr, weight_decay=weight_decay)


def _loss(model: PretrainModel, feats: dict, zs: dict, cfg: PretrainConfig):
    """Total loss and its named terms (floats) from pooled features and projections."""
    mods = model.modalities
    w_eeg, w_pps, w_cm = cfg.loss_weights
    pps = mods[1] if len(mods) > 1 else None
    e = p = None
    if model.cmca_head is not None and w_cm:
        e, p = model.cmca_head(feats[mods[0]], feats[pps])
    return pretrain_loss(zs[mods[0]], zs[pps] if pps else None, e, p,
                         weights=(w_eeg, w_pps if pps else 0.0, w_cm if e is not None else 0.0),
                         temperature=cfg.temperature, cmca_variant=cfg.cmca_variant)


def _config_fingerprint(d: dict, free=()) -> dict:
    # What must match for a checkpoint to be resumed (the step budget may grow, and
    # the settings in *free* are being changed on purpose).
    skip = {"steps", "epochs", "checkpoint_every", *free}
    return {k: v for k, v in d.items() if k not in skip}


@flush_denormals()
def pretrain(data: SlotData, config: PretrainConfig | None = None, *, allowed=None,
             n_sub: int = 1, modalities=None, device=None, checkpoint=None,
             resume: bool = True, model: PretrainModel | None = None, show_progress=None,
             resume_with: dict | None = None):
    """Pre-train encoders with inter-subject temporal contrast and CM-CA.

    Parameters
    ----------
    data : SlotData
        Windows of all subjects on the ``(subject, trial, window)`` grid.
    config : PretrainConfig | None
        Hyper-parameters (defaults to ``PretrainConfig()``).
    allowed : ndarray of bool, shape (n_subjects, n_trials, n_windows) | None
        Cells pre-training may use; default ``data.valid``. Pass the training
        subjects/trials only: held-out data must never be drawn.
    n_sub : int
        Split every window into *n_sub* equal sub-windows and pre-train on those
        (e.g. 1 s encoders from 5 s windows with ``n_sub=5``).
    modalities : sequence of str | None
        EEG first, then at most one peripheral modality; default all of *data*'s.
    device : str | torch.device | None
        ``None`` picks CUDA, then MPS, then the CPU.
    checkpoint : str | Path | None
        File to checkpoint to (atomically, every ``config.checkpoint_every`` steps and
        at the end). A checkpoint is written only once the weights it holds, and
        the loss they give on the next batch, are finite, so after a divergence the
        file holds the last good state. With *resume*, an existing checkpoint of the
        same configuration is continued from its step.
    model : PretrainModel | None
        Start from this model instead of a fresh one.
    show_progress : bool | None
        Progress bar; ``None`` follows the log level.
    resume_with : dict | None
        Optimiser settings to change when resuming, e.g. ``{"lr": 1e-4}`` after a
        divergence (keys: ``"lr"``, ``"weight_decay"``). They override *config*, the
        checkpoint is accepted although it was written with other values, and the
        change is recorded in the history entry of the first resumed step.

    Returns
    -------
    model : PretrainModel
        The trained model (in eval mode, on *device*).
    history : list of dict
        One entry per step: ``step``, ``loss``, the unweighted terms ``temporal_eeg``,
        ``temporal_pps`` and ``cmca`` (those computed), and ``seconds``. The first step
        after a resume that changed settings also holds ``resumed_with``:
        ``{setting: {"from": old, "to": new}}``.

    Raises
    ------
    TrainingDivergedError
        If the loss or the weights become NaN or infinite. The message gives the
        step, the last good checkpoint and how to resume from it.
    """
    cfg = config or PretrainConfig()
    resume_with = _check_resume_with(resume_with)
    if resume_with:
        cfg = replace(cfg, **resume_with)
    modalities = tuple(modalities or data.modalities)
    if not 1 <= len(modalities) <= 2:
        raise PhysioSyncError(f"pre-training takes EEG plus at most one peripheral modality, "
                              f"got {modalities}.")
    dev = resolve_device(device)
    allowed = data.valid if allowed is None else np.asarray(allowed, dtype=bool) & data.valid
    sampler = SynchronySampler(allowed, batch_slots=cfg.batch_slots,
                               group_size=cfg.group_size, n_sub=n_sub, seed=cfg.seed)
    n_steps = cfg.steps if cfg.steps is not None else cfg.epochs * sampler.steps_per_epoch()
    torch.manual_seed(derive_seed(cfg.seed, "init"))
    if model is None:
        model = PretrainModel({m: data.n_chans(m) for m in modalities},
                              {m: data.n_times(m) // n_sub for m in modalities}, cfg)
    model.to(dev)
    opt = make_optimizer(model.parameters(), cfg.optimizer, cfg.lr, cfg.weight_decay)
    use_amp = bool(cfg.amp and dev.type == "cuda")
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    resolved = model.resolved_config()
    # Which data the run may see: a checkpoint of another fold must never be resumed.
    data_key = fingerprint(allowed, data.subjects, data.trials, list(modalities), n_sub)
    history, start, changed = [], 0, {}
    ckpt = Path(checkpoint) if checkpoint is not None else None
    if ckpt is not None and resume and ckpt.exists():
        state = read_checkpoint(ckpt)
        if state.get("kind") != "pretrain" or _config_fingerprint(state["config"], resume_with) \
                != _config_fingerprint(resolved, resume_with):
            theirs, ours = _config_fingerprint(state.get("config") or {}, resume_with), \
                _config_fingerprint(resolved, resume_with)
            differ = sorted(k for k in set(theirs) | set(ours) if theirs.get(k) != ours.get(k))
            raise CheckpointError(
                f"{ckpt} was written by a different pre-training configuration (differs in "
                f"{', '.join(differ) or 'kind'}); delete it or choose another checkpoint "
                f"path. To change {' or '.join(RESUMABLE_SETTINGS)} on resume, pass "
                "resume_with (--resume-with on the command line).")
        if state.get("data_key") != data_key:
            raise CheckpointError(
                f"{ckpt} was written for different training data (another fold, subjects, "
                "trials or modalities); resuming it would leak held-out data. Delete it or "
                "choose another checkpoint path.")
        if int(state["step"]) > n_steps:
            raise CheckpointError(
                f"{ckpt} already holds {state['step']} steps, more than the {n_steps} "
                "requested; raise steps or choose another checkpoint path.")
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        history, start = list(state["history"]), int(state["step"])
        changed = {k: {"from": state["config"].get(k), "to": v} for k, v in resume_with.items()
                   if state["config"].get(k) != v}
        for group in opt.param_groups:  # load_state_dict restored the stored values
            group.update({k: v for k, v in resume_with.items()})
        logger.info("resuming pre-training from %s at step %d%s", ckpt, start,
                    "".join(f", {k} {c['from']} -> {c['to']}" for k, c in changed.items()))
    elif resume_with:
        logger.info("no checkpoint to resume; resume_with %s applies from step 0", resume_with)

    saved = {"step": start if ckpt is not None and ckpt.exists() and resume else None}

    def save(step, buffers=None):
        # *buffers*: the batch-norm statistics as they were before this step's forward
        # pass, which a resumed run repeats: they must be counted once.
        weights = {**model.state_dict(), **(buffers or {})}
        if not _state_is_finite(weights, opt):
            raise TrainingDivergedError(
                f"pre-training weights became NaN or infinite before step {step}"
                f"{_kept(ckpt, saved['step'])}. {_advice(ckpt, saved['step'])}")
        save_checkpoint(ckpt, {"kind": "pretrain", "config": resolved, "step": step,
                               "data_key": data_key, "model": weights,
                               "optimizer": opt.state_dict(), "history": history})
        saved["step"] = step

    model.train()
    t0 = time.perf_counter()
    for step in progress(range(start, n_steps), desc="pre-train", total=n_steps - start,
                         disable=None if show_progress is None else not show_progress):
        t_step = time.perf_counter()
        batch = sampler.batch(step, N_KINDS)
        s, t, w, sub = batch.flat_index
        gen = torch.Generator().manual_seed(derive_seed(cfg.seed, "augment", step))
        if cfg.augment_pairing == "shared":
            aug_rows = batch.aug.view(1, -1, 1).expand(2, -1, cfg.group_size).reshape(-1)
        else:
            aug_rows = torch.randint(0, N_KINDS, (s.numel(),), generator=gen)
        torch.manual_seed(derive_seed(cfg.seed, "dropout", step))
        due = ckpt is not None and step % cfg.checkpoint_every == 0 and (step > start
                                                                         or step == 0)
        buffers = ({k: v.detach().clone() for k, v in model.state_dict().items()
                    if k in dict(model.named_buffers())} if due else None)
        feats, zs = {}, {}
        with torch.autocast(dev.type, dtype=torch.float16, enabled=use_amp):
            for m in modalities:
                x = data.gather(m, s, t, w, n_sub, sub if n_sub > 1 else None)
                x = x.to(dev, non_blocking=True)
                if cfg.augment:
                    x = augment(x, aug_rows, snr_db=cfg.snr_db, generator=gen)
                h = model.encoders[m](x)
                feats[m] = batch.pool(h)
                zs[m] = batch.pool(model.projectors[m](h))
            total, terms = _loss(model, feats, zs, cfg)
        value = float(total.detach())
        if not math.isfinite(value):
            raise TrainingDivergedError(
                f"pre-training loss became {value} at step {step} "
                f"({', '.join(f'{k}={v:.4g}' for k, v in terms.items())})"
                f"{_kept(ckpt, saved['step'])}. {_advice(ckpt, saved['step'])}")
        # A checkpoint due at this step is written only now that the weights it holds
        # (those after the previous update) gave a finite loss: exploded but finite
        # weights show up here, one step before they turn into NaN.
        if due:
            save(step, buffers)
        opt.zero_grad(set_to_none=True)
        scaler.scale(total).backward()
        scaler.step(opt)
        scaler.update()
        history.append({"step": step, "loss": value,
                        **{k: v for k, v in terms.items() if k != "total"},
                        "seconds": time.perf_counter() - t_step})
        if changed and step == start:
            history[-1]["resumed_with"] = changed
    if ckpt is not None and (start < n_steps or not ckpt.exists()):
        save(n_steps)
    logger.info("pre-training: %d steps in %.1f s", n_steps - start, time.perf_counter() - t0)
    return model.eval(), history


def _kept(ckpt, step) -> str:
    if ckpt is None or step is None:
        return ""
    return f"; the last good checkpoint ({ckpt}, step {step}) is kept"


def _advice(ckpt, step) -> str:
    if ckpt is None or step is None:
        return "Try a lower lr, a higher temperature, or amp=False."
    return ("Resume it with a lower lr (resume_with={'lr': ...}, or --resume-with lr=... on "
            "the command line), or try a higher temperature or amp=False.")


def pretrain_ls_tcl(data: SlotData, *, long_sub: int = 5, config: PretrainConfig | None = None,
                    short_config: PretrainConfig | None = None, allowed=None, device=None,
                    checkpoint_dir=None, resume=True):
    """LS-TCL: two independent pre-trainings, on the long windows and on their sub-windows.

    Parameters
    ----------
    data : SlotData
        Long (e.g. 5 s) windows; short windows are their *long_sub* equal parts.
    long_sub : int
        Short windows per long window (5 for 5 s / 1 s).
    config, short_config : PretrainConfig | None
        Hyper-parameters of the long and short runs (*short_config* defaults to
        *config*).
    allowed : ndarray of bool | None
        Cells pre-training may use (see :func:`pretrain`).
    checkpoint_dir : str | Path | None
        Folder for ``pretrain_long.pt`` and ``pretrain_short.pt``.

    Returns
    -------
    models : dict
        ``{"long": PretrainModel, "short": PretrainModel}``.
    histories : dict
        ``{"long": [...], "short": [...]}``.
    """
    config = config or PretrainConfig()
    short_config = short_config or config
    models, histories = {}, {}
    for name, n_sub, cfg in (("short", long_sub, short_config), ("long", 1, config)):
        ckpt = Path(checkpoint_dir) / f"pretrain_{name}.pt" if checkpoint_dir else None
        models[name], histories[name] = pretrain(data, cfg, allowed=allowed, n_sub=n_sub,
                                                 device=device, checkpoint=ckpt, resume=resume)
    return models, histories

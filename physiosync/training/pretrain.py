"""Contrastive pre-training: inter-subject temporal contrast plus CM-CA.

One :class:`PretrainModel` holds, for one window length, an encoder and a projector
per modality (EEG first, then one peripheral signal) and the shared CM-CA head.
:func:`pretrain` trains it with

    L = w_eeg * L_T(EEG) + w_pps * L_T(PPS) + w_cmca * L_CMCA

on batches from the :class:`~physiosync.training.sampling.SynchronySampler`. LS-TCL is two such
runs, one on 1 s and one on 5 s windows (:func:`pretrain_encoders`).

``objective="simclr"`` is the EEG-only SimCLR baseline with the same encoders, projector,
augmentations and loop: batches of single EEG windows from the
:class:`~physiosync.training.sampling.WindowSampler`, each augmented twice independently,
with NT-Xent between the two views (no peripheral signal, no other subject).

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

from .._logging import deprecated_show_progress, logger, progress, verbose
from ..exceptions import PhysioSyncError, TrainingDivergedError
from ..models.losses import nt_xent, pretrain_loss
from ..models.physiosync import PretrainModel
from ..params import PRETRAIN_OBJECTIVES, PretrainConfig
from ._loop import TrainingRun
from .augment import N_KINDS, augment
from .distributed import distributed_context, synchronise_batch_norm
from .sampling import SlotData, SynchronySampler, WindowSampler
from .._utils import check_option, derive_seed, fingerprint, flush_denormals, resolve_device

__all__ = ["pretrain", "pretrain_encoders", "make_optimizer", "make_sampler"]



#: Settings that ``pretrain(..., resume_with=...)`` may change when resuming.
RESUMABLE_SETTINGS = ("lr", "weight_decay")


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
    from .._utils.checks import check_option
    from ..params import OPTIMIZERS

    check_option("optimizer", name, OPTIMIZERS)
    cls = torch.optim.AdamW if name == "adamw" else torch.optim.Adam
    params = list(params)
    try:
        return cls(params, lr=lr, weight_decay=weight_decay, fused=True)
    except (RuntimeError, ValueError, TypeError):  # a device without fused kernels
        return cls(params, lr=lr, weight_decay=weight_decay)


def make_sampler(allowed, config: PretrainConfig, *, n_sub: int = 1,
                 objective: str = "ls-tcl"):
    """The batch sampler of a pre-training run.

    Parameters
    ----------
    allowed : ndarray of bool, shape (n_subjects, n_trials, n_windows)
        Cells the run may draw.
    config : PretrainConfig
        Its ``batch_slots``, ``group_size`` and ``seed`` size and seed the sampler.
    n_sub : int
        Sub-windows per window.
    objective : {"ls-tcl", "simclr"}
        ``"ls-tcl"``: a :class:`~physiosync.training.sampling.SynchronySampler` (slots
        seen by two groups of ``group_size`` subjects). ``"simclr"``: a
        :class:`~physiosync.training.sampling.WindowSampler` of ``batch_slots`` single
        windows (``group_size`` unused).

    Returns
    -------
    sampler : SynchronySampler | WindowSampler

    Raises
    ------
    PhysioSyncError
        If *allowed* cannot fill a batch (the message says what to change).
    """
    check_option("objective", objective, PRETRAIN_OBJECTIVES)
    if objective == "simclr":
        return WindowSampler(allowed, batch_size=config.batch_slots, n_sub=n_sub,
                             seed=config.seed)
    return SynchronySampler(allowed, batch_slots=config.batch_slots,
                            group_size=config.group_size, n_sub=n_sub, seed=config.seed)


def _check_simclr(cfg: PretrainConfig, modalities: tuple) -> None:
    """Refuse settings under which SimCLR has no task (identical views, no EEG term)."""
    if len(modalities) != 1:
        raise PhysioSyncError(f"the simclr objective pre-trains the EEG encoder alone; got "
                              f"modalities {modalities}. Pass modalities=('eeg',) "
                              "(finetune.modalities: [eeg]).")
    if not cfg.augment or cfg.augment_pairing == "shared":
        raise PhysioSyncError(
            "the simclr objective contrasts two independently augmented views of a window; "
            f"augment={cfg.augment}, augment_pairing={cfg.augment_pairing!r} would make them "
            "identical. Set augment: true and augment_pairing: independent.")
    if not cfg.loss_weights[0]:
        raise PhysioSyncError(f"the simclr objective is weighted by w_eeg, the first of "
                              f"loss_weights {cfg.loss_weights}; it must be > 0.")


def _simclr_loss(z: torch.Tensor, cfg: PretrainConfig):
    """``w_eeg * nt_xent(view 1, view 2)`` and its unweighted term, as :func:`_loss` returns."""
    half = z.shape[0] // 2
    term = nt_xent(z[:half], z[half:], cfg.temperature)
    total = cfg.loss_weights[0] * term
    return total, {"simclr": float(term.detach()), "total": float(total.detach())}


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


class _Step(torch.nn.Module):
    """The forward pass and loss of one pre-training step, as one module.

    One module, so that :class:`~torch.nn.parallel.DistributedDataParallel` can wrap
    it (its gradient hooks are armed by the wrapper's forward). *gather* merges the
    pooled rows of every rank (identity in a single process).
    """

    def __init__(self, model: PretrainModel, cfg: PretrainConfig, modalities: tuple,
                 simclr: bool, gather=None):
        super().__init__()
        self.model, self.cfg, self.modalities, self.simclr = model, cfg, modalities, simclr
        self.gather = gather or (lambda x: x)

    def forward(self, inputs: dict, batch):
        feats, zs = {}, {}
        for m in self.modalities:
            h = self.model.encoders[m](inputs[m])
            feats[m] = self.gather(batch.pool(h))
            zs[m] = self.gather(batch.pool(self.model.projectors[m](h)))
        if self.simclr:
            return _simclr_loss(zs[self.modalities[0]], self.cfg)
        return _loss(self.model, feats, zs, self.cfg)


@flush_denormals()
@verbose
@deprecated_show_progress
def pretrain(data: SlotData, config: PretrainConfig | None = None, *, allowed=None,
             n_sub: int = 1, modalities=None, device=None, checkpoint=None,
             resume: bool = True, model: PretrainModel | None = None,
             resume_with: dict | None = None, objective: str = "ls-tcl",
             verbose: bool | str | int | None = None):
    """Pre-train encoders with inter-subject temporal contrast and CM-CA (or SimCLR).

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
        EEG first, then at most one peripheral modality; default all of *data*'s
        (for ``objective="simclr"``: EEG alone, the first of *data*'s).
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
    resume_with : dict | None
        Optimiser settings to change when resuming, e.g. ``{"lr": 1e-4}`` after a
        divergence (keys: ``"lr"``, ``"weight_decay"``). They override *config*, the
        checkpoint is accepted although it was written with other values, and the
        change is recorded in the history entry of the first resumed step.
    objective : {"ls-tcl", "simclr"}
        ``"ls-tcl"``: PhysioSync's inter-subject temporal contrast (and CM-CA with a
        peripheral modality). ``"simclr"``: batches of ``config.batch_slots`` single
        EEG windows (any allowed subject and slot, never paired across subjects), each
        augmented twice independently, loss ``w_eeg * NT-Xent`` between the two views
        (``group_size`` is unused; augmentation must be on and ``"independent"``). An
        epoch still counts ``batch_slots`` stimulus slots per step, so ``epochs`` gives
        both objectives the same number of steps. A checkpoint of one objective is
        never resumed by the other.
    %(verbose)s
        Replaces ``show_progress``, which still works for one release with a
        :class:`FutureWarning`.

    Returns
    -------
    model : PretrainModel
        The trained model (in eval mode, on *device*).
    history : list of dict
        One entry per step: ``step``, ``loss``, the unweighted terms ``temporal_eeg``,
        ``temporal_pps`` and ``cmca`` (those computed; ``simclr`` for that objective),
        and ``seconds``. The first step after a resume that changed settings also holds
        ``resumed_with``: ``{setting: {"from": old, "to": new}}``.

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
    check_option("objective", objective, PRETRAIN_OBJECTIVES)
    simclr = objective == "simclr"
    modalities = tuple(modalities or (data.modalities[:1] if simclr else data.modalities))
    if simclr:
        _check_simclr(cfg, modalities)
    if not 1 <= len(modalities) <= 2:
        raise PhysioSyncError(f"pre-training takes EEG plus at most one peripheral modality, "
                              f"got {modalities}.")
    dev = resolve_device(device)
    ddp = distributed_context()  # set when launched by torchrun (see .distributed)
    if ddp is not None:
        ddp.check_batch(cfg.batch_slots)
        if dev.type == "cuda" and dev.index is None:  # each rank on its own GPU
            dev = torch.device("cuda", ddp.local_rank)
    allowed = data.valid if allowed is None else np.asarray(allowed, dtype=bool) & data.valid
    sampler = make_sampler(allowed, cfg, n_sub=n_sub, objective=objective)
    n_steps = cfg.steps if cfg.steps is not None else cfg.epochs * sampler.steps_per_epoch()
    torch.manual_seed(derive_seed(cfg.seed, "init"))
    if model is None:
        model = PretrainModel({m: data.n_chans(m) for m in modalities},
                              {m: data.n_times(m) // n_sub for m in modalities}, cfg)
    model.to(dev)
    if ddp is not None:
        synchronise_batch_norm(model, dev.type)  # statistics of the global batch
    opt = make_optimizer(model.parameters(), cfg.optimizer, cfg.lr, cfg.weight_decay)
    # Which data the run may see: a checkpoint of another fold must never be resumed.
    # The objective is stored only when it is not LS-TCL, whose checkpoints stay as they were.
    run_config = {**model.resolved_config(), **({"objective": objective} if simclr else {})}
    run = TrainingRun("pretrain", checkpoint, resume=resume, device=dev, amp=cfg.amp,
                      config=run_config,
                      data_identity=(allowed, data.subjects, data.trials, list(modalities), n_sub),
                      ignore=("steps", "epochs", "checkpoint_every", *resume_with),
                      resumable=RESUMABLE_SETTINGS)
    ckpt = run.checkpoint
    history, start, changed = [], 0, {}
    state = run.resume_state(n_steps)
    if state is not None:
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

    def save(step, buffers=None):
        # *buffers*: the batch-norm statistics as they were before this step's forward
        # pass, which a resumed run repeats: they must be counted once.
        if ddp is not None and not ddp.is_main:
            return  # rank 0 alone writes; every rank holds the same weights
        run.save(step, {"model": {**model.state_dict(), **(buffers or {})},
                        "optimizer": opt.state_dict(), "history": history},
                 opt, where=f"before step {step}")

    step_module = _Step(model, cfg, modalities, simclr,
                        gather=ddp.gather_pooled if ddp is not None else None)
    if ddp is not None:
        from torch.nn.parallel import DistributedDataParallel

        # find_unused_parameters: a zero loss weight leaves its head without gradients
        step_module = DistributedDataParallel(
            step_module, device_ids=[dev.index] if dev.type == "cuda" else None,
            find_unused_parameters=True)
    model.train()
    t0 = time.perf_counter()
    for step in progress(range(start, n_steps), desc="pre-train", total=n_steps - start):
        t_step = time.perf_counter()
        batch = sampler.batch(step, N_KINDS)
        gen = torch.Generator().manual_seed(derive_seed(cfg.seed, "augment", step))
        if cfg.augment_pairing == "shared":  # never with simclr (_check_simclr)
            aug_rows = batch.aug.view(1, -1, 1).expand(2, -1, batch.groups.shape[2]
                                                       ).reshape(-1)
        else:
            aug_rows = torch.randint(0, N_KINDS, (batch.flat_index[0].numel(),),
                                     generator=gen)
        if ddp is not None:  # this rank's slots; the draws above are the global batch's
            batch, rows = ddp.shard(batch)
            aug_rows = aug_rows[rows]
            gen.manual_seed(derive_seed(cfg.seed, "augment", step, "rank", ddp.rank))
        s, t, w, sub = batch.flat_index
        torch.manual_seed(derive_seed(cfg.seed, "dropout", step,
                                      *(("rank", ddp.rank) if ddp is not None else ())))
        due = ckpt is not None and step % cfg.checkpoint_every == 0 and (step > start
                                                                         or step == 0)
        buffers = ({k: v.detach().clone() for k, v in model.state_dict().items()
                    if k in dict(model.named_buffers())} if due else None)
        inputs = {}
        with run.autocast():
            for m in modalities:
                x = data.gather(m, s, t, w, n_sub, sub if n_sub > 1 else None)
                x = x.to(dev, non_blocking=True)
                if cfg.augment:
                    x = augment(x, aug_rows, snr_db=cfg.snr_db, generator=gen)
                inputs[m] = x
            total, terms = step_module(inputs, batch)
        value = run.check_loss(float(total.detach()), f"at step {step}",
                               f" ({', '.join(f'{k}={v:.4g}' for k, v in terms.items())})")
        # A checkpoint due at this step is written only now that the weights it holds
        # (those after the previous update) gave a finite loss: exploded but finite
        # weights show up here, one step before they turn into NaN.
        if due:
            save(step, buffers)
        run.backward_step(opt, total)
        history.append({"step": step, "loss": value,
                        **{k: v for k, v in terms.items() if k != "total"},
                        "seconds": time.perf_counter() - t_step})
        if changed and step == start:
            history[-1]["resumed_with"] = changed
    if ckpt is not None and (start < n_steps or not ckpt.exists()):
        save(n_steps)
    logger.info("pre-training: %d steps in %.1f s", n_steps - start, time.perf_counter() - t0)
    return model.eval(), history


@verbose
@deprecated_show_progress
def pretrain_encoders(data: SlotData, long_config: PretrainConfig | None = None,
                      short_config: PretrainConfig | None = None, *, n_sub: int = 5,
                      which=("long", "short"), allowed=None, modalities=None, device=None,
                      checkpoint_dir=None, resume: bool = True, resume_with: dict | None = None,
                      context: str | None = None, cache: dict | None = None,
                      objective: str = "ls-tcl",
                      verbose: bool | str | int | None = None) -> dict:
    """Pre-train the long and short encoders (LS-TCL): one :func:`pretrain` run per length.

    The long encoders see the windows of *data* whole; the short ones see their *n_sub*
    equal sub-windows (e.g. 1 s windows cut from 5 s ones). The runs are independent
    and seeded by their own configuration, so each gives the same weights whether it
    runs alone or with the other.

    Parameters
    ----------
    data : SlotData
        Long windows of all subjects.
    long_config, short_config : PretrainConfig | None
        Hyper-parameters of the two runs (defaults: ``PretrainConfig()``; *short_config*
        defaults to *long_config*).
    n_sub : int
        Short windows per long window (5 for 5 s / 1 s).
    which : sequence of {"long", "short"}
        The encoders to pre-train (fine-tuning ablations use only one).
    allowed : ndarray of bool, shape (n_subjects, n_trials, n_windows) | None
        Cells pre-training may use (see :func:`pretrain`): never held-out data.
    modalities : sequence of str | None
        EEG first, then at most one peripheral modality; default all of *data*'s.
    device : str | torch.device | None
        ``None`` picks CUDA, then MPS, then the CPU.
    checkpoint_dir : str | Path | None
        Folder for ``pretrain_long.pt`` and ``pretrain_short.pt`` (none without it).
    resume, resume_with
        As in :func:`pretrain`, for both runs.
    context : str | None
        Prefix of the message of a :class:`TrainingDivergedError`, e.g. ``"fold 3"``:
        it becomes ``"fold 3, long-window pre-training: ..."``.
    cache : dict | None
        In-memory store of finished runs, filled and read by this function, keyed by
        the allowed cells, the encoder, its configuration, the modalities, the objective
        and the device (not by the windows: never share one dict between datasets).
        Pre-training uses no labels, so runs that differ only in their labels can share it.
    objective : {"ls-tcl", "simclr"}
        The objective of both runs (see :func:`pretrain`).
    %(verbose)s
        At ``"debug"``, a line before each run names it and its checkpoint, and one
        after it gives its number of steps and first and last loss.

    Returns
    -------
    encoders : dict
        ``{"long": (model, history), "short": (model, history)}`` (the runs in
        *which*, in that order): the :class:`PretrainModel` in eval mode on *device*
        and its per-step history (see :func:`pretrain`).

    Raises
    ------
    TrainingDivergedError
        If a run diverges; the message names the run (and *context*).
    """
    long_config = long_config or PretrainConfig()
    short_config = short_config or long_config
    runs = {"long": (1, long_config), "short": (n_sub, short_config)}
    unknown = [name for name in which if name not in runs]
    if unknown:
        raise PhysioSyncError(f"which may hold 'long' and 'short', got {unknown[0]!r}.")
    out = {}
    for name in which:
        sub, cfg = runs[name]
        key = (fingerprint(allowed, name, sub, repr(cfg), repr(modalities), str(device),
                           objective) if cache is not None else None)
        if key in (cache or {}):
            out[name] = cache[key]
            continue
        ckpt = Path(checkpoint_dir) / f"pretrain_{name}.pt" if checkpoint_dir is not None else None
        logger.debug("pre-training the %s encoders%s", name, f" -> {ckpt}" if ckpt else "")
        try:
            model, hist = pretrain(data, cfg, allowed=allowed, n_sub=sub, modalities=modalities,
                                   device=device, checkpoint=ckpt, resume=resume,
                                   resume_with=resume_with, objective=objective)
        except TrainingDivergedError as err:
            if context is None:
                raise
            raise TrainingDivergedError(f"{context}, {name}-window pre-training: {err}") from err
        if hist:
            logger.debug("%s encoders: %d steps, loss %.3f -> %.3f", name, len(hist),
                         hist[0]["loss"], hist[-1]["loss"])
        out[name] = (model, hist)
        if cache is not None:
            cache[key] = out[name]
    return out

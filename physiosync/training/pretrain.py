"""Contrastive pre-training: inter-subject temporal contrast plus CM-CA.

One ``PretrainModel`` holds, for one window length, an encoder and a projector
per modality (EEG first, then one peripheral signal) and the shared CM-CA head.
:func:`pretrain` trains it with

    L = w_eeg * L_T(EEG) + w_pps * L_T(PPS) + w_cmca * L_CMCA

on batches from the ``SynchronySampler``. LS-TCL is two such
runs, one on 1 s and one on 5 s windows (:func:`pretrain_encoders`).

``objective="simclr"`` is the EEG-only SimCLR baseline with the same encoders, projector,
augmentations and loop: batches of single EEG windows from the
``WindowSampler``, each augmented twice independently,
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

from .._logging import (check_log_every, deprecated_show_progress, duration_text, logger,
                        progress, verbose)
from .._utils import check_option, derive_seed, fingerprint, flush_denormals, resolve_device
from .._utils.docs import fill_doc
from ..exceptions import PhysioSyncError, TrainingDivergedError
from ..models.physiosync import PretrainModel
from ..params import PRETRAIN_OBJECTIVES, PretrainConfig
from . import engine
from .distributed import distributed_context, synchronise_batch_norm
from .engine import TrainingRun, check_distributed_compile, compile_step, new_step
from .held_out import (HELD_OUT_BATCHES, HeldOut, HeldOutStep,
                       held_out_sampler, held_out_steps)
from .sampling import SlotData, SynchronySampler, WindowSampler

__all__ = ["pretrain", "pretrain_encoders", "initial_model", "make_sampler", "held_out_sampler",
           "held_out_steps", "run_steps", "time_pretrain"]



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


@fill_doc
def make_sampler(allowed, config: PretrainConfig, *, n_sub: int = 1,
                 objective: str = "ls-tcl"):
    """The batch sampler of a pre-training run.

    Parameters
    ----------
    allowed : ndarray of bool, shape (n_subjects, n_trials, n_windows)
        Cells the run may draw.
    config : PretrainConfig
        Its ``batch_slots``, ``group_size`` and ``seed`` size and seed the sampler.
    %(n_sub)s
    objective : {"ls-tcl", "simclr"}
        ``"ls-tcl"``: a ``SynchronySampler`` (slots
        seen by two groups of ``group_size`` subjects). ``"simclr"``: a
        ``WindowSampler`` of ``batch_slots`` single
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


def resolve_modalities(data: SlotData, cfg: PretrainConfig, modalities, objective: str
                       ) -> tuple:
    """The modalities a run pre-trains, checked against *objective* (see :func:`pretrain`)."""
    check_option("objective", objective, PRETRAIN_OBJECTIVES)
    simclr = objective == "simclr"
    modalities = tuple(modalities or (data.modalities[:1] if simclr else data.modalities))
    if simclr:
        _check_simclr(cfg, modalities)
    if not 1 <= len(modalities) <= 2:
        raise PhysioSyncError(f"pre-training takes EEG plus at most one peripheral modality, "
                              f"got {modalities}.")
    return modalities


class _ProgressLines:
    """The INFO lines of ``pretrain(log_every=...)``: mean loss, pace and time left."""

    def __init__(self, history: list, n_steps: int, every: int | None):
        self.history, self.n_steps = history, n_steps
        self.every = None if every is None else int(every)
        self.seen = len(history)  # a resumed run's earlier steps are not reported again

    def due(self, step: int) -> bool:
        return self.every is not None and ((step + 1) % self.every == 0
                                           or step == self.n_steps - 1)

    def log(self, step: int) -> None:
        rows, self.seen = self.history[self.seen:], len(self.history)
        if not rows:
            return
        pace = float(np.mean([r["seconds"] for r in rows]))
        logger.info("pre-training step %d/%d: loss %.4f (%.2f s/step, %s left)", step + 1,
                    self.n_steps, float(np.mean([r["loss"] for r in rows])), pace,
                    duration_text(pace * (self.n_steps - step - 1)))


@fill_doc
def initial_model(data: SlotData, config: PretrainConfig, *, n_sub: int = 1,
                  modalities=None) -> PretrainModel:
    """The model :func:`pretrain` starts from: a *random encoder* of the same architecture.

    Built from *config*'s seed (the ``derive_seed(seed, "init")`` stream) exactly as
    :func:`pretrain` builds it, so a pre-trained encoder can be compared with its own
    initial weights (e.g. frozen pre-trained against frozen random encoders).

    Parameters
    ----------
    data : SlotData
        Windows whose shapes size the encoders.
    config : PretrainConfig
        Architecture and seed.
    %(n_sub)s
    modalities : sequence of str | None
        As in :func:`pretrain` (LS-TCL): default all of *data*'s.

    Returns
    -------
    model : PretrainModel
        On the CPU, in training mode.
    """
    modalities = resolve_modalities(data, config, modalities, "ls-tcl")
    torch.manual_seed(derive_seed(config.seed, "init"))
    return PretrainModel({m: data.n_chans(m) for m in modalities},
                         {m: data.n_times(m) // n_sub for m in modalities}, config)


@flush_denormals()
@verbose
@deprecated_show_progress
def pretrain(data: SlotData, config: PretrainConfig | None = None, *, allowed=None,
             n_sub: int = 1, modalities=None, device=None, checkpoint=None,
             resume: bool = True, model: PretrainModel | None = None,
             resume_with: dict | None = None, objective: str = "ls-tcl",
             compile: str | None = None, held_out=None, held_out_every: int | None = None,
             held_out_batches: int = HELD_OUT_BATCHES, log_every: int | None = None,
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
    %(device_auto)s
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
    compile : {None, "default", "reduce-overhead", "max-autotune"}
        Compile the forward and backward passes of a step with :func:`torch.compile` in
        this mode (``None``: eager). On a GPU, ``"reduce-overhead"`` replays them as
        CUDA graphs. The first steps pay the compilation (tens of seconds); results
        agree with eager ones to rounding, except that compiled dropout draws other
        masks from the same seed. Not part of the checkpoint's configuration: a run
        may be resumed with or without it.
    log_every : int | None
        Log a line at INFO every *log_every* steps and at the last one: the step, the
        mean loss of the steps since the previous line, the seconds per step and the
        time left. ``None``: only the closing line (steps and seconds). Progress
        that shows where a progress bar cannot (a notebook, a log file).
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
        ``resumed_with``: ``{setting: {"from": old, "to": new}}``. With *held_out*,
        each evaluated step also holds ``held_out``: the held-out ``loss`` (the
        weighted total), its unweighted terms (``temporal_eeg``, ``temporal_pps``,
        ``cmca``: those configured, whatever the objective) and ``retrieval_<term>``,
        the top-1 accuracy of the true partner among the term's candidates
        (``retrieval_parts()``); training terms and
        ``loss`` are those of the training batch, as without it.

    Notes
    -----
    On a GPU the windows are copied to the device once, when they fit in half its
    free memory (``SlotData.resident()``); the batches of 256 steps are drawn on
    the host together and copied in one transfer, and the augmentation is drawn on
    the device. The loss is read back every 32 steps (and before every checkpoint)
    rather than at every step, so the host queues steps ahead of the device; a
    non-finite loss is still reported with its step. On the CPU every step reads it.

    Raises
    ------
    TrainingDivergedError
        If the loss or the weights become NaN or infinite. The message gives the
        step, the last good checkpoint and how to resume from it.
    """
    cfg = config or PretrainConfig()
    check_log_every(log_every, "steps")
    resume_with = _check_resume_with(resume_with)
    if resume_with:
        cfg = replace(cfg, **resume_with)
    modalities = resolve_modalities(data, cfg, modalities, objective)
    simclr = objective == "simclr"
    dev = resolve_device(device)
    ddp = distributed_context()  # set when launched by torchrun (see .distributed)
    if ddp is not None:
        ddp.check_batch(cfg.batch_slots)
        check_distributed_compile(compile, dev)
        if dev.type == "cuda" and dev.index is None:  # each rank on its own GPU
            dev = torch.device("cuda", ddp.local_rank)
    allowed = data.valid if allowed is None else np.asarray(allowed, dtype=bool) & data.valid
    sampler = make_sampler(allowed, cfg, n_sub=n_sub, objective=objective)
    n_steps = run_steps(cfg, sampler)
    if model is None:
        model = initial_model(data, cfg, n_sub=n_sub, modalities=modalities)
    else:
        torch.manual_seed(derive_seed(cfg.seed, "init"))  # the stream the model would use
    model.to(dev)
    if ddp is not None:
        synchronise_batch_norm(model, dev.type)  # statistics of the global batch
    opt = engine.make_optimizer(model.parameters(), cfg.optimizer, cfg.lr, cfg.weight_decay)
    # Which data the run may see: a checkpoint of another fold must never be resumed.
    # The objective is stored only when it is not LS-TCL, whose checkpoints stay as they were.
    run_config = {**model.resolved_config(), **({"objective": objective} if simclr else {})}
    if held_out is not None:  # never a cell the run trains on
        held_out = np.asarray(held_out, dtype=bool) & data.valid & ~allowed
    # The held-out cells change the stored history: a checkpoint records them (a run
    # without them keeps the identity it always had).
    held_identity = (() if held_out is None
                     else ("held-out", held_out, held_out_every, held_out_batches))
    run = TrainingRun("pretrain", checkpoint, resume=resume, device=dev, amp=cfg.amp,
                      config=run_config,
                      data_identity=(allowed, data.subjects, data.trials, list(modalities), n_sub,
                                     *held_identity),
                      ignore=("steps", "epochs", "checkpoint_every", *resume_with),
                      resumable=RESUMABLE_SETTINGS)
    ckpt = run.checkpoint
    history, start, changed = _resume(run, model, opt, n_steps, resume_with)

    def save(step, buffers=None):
        # *buffers*: the batch-norm statistics as they were before this step's forward
        # pass, which a resumed run repeats: they must be counted once.
        if ddp is not None and not ddp.is_main:
            return  # rank 0 alone writes; every rank holds the same weights
        run.save(step, {"model": {**model.state_dict(), **(buffers or {})},
                        "optimizer": opt.state_dict(), "history": history},
                 opt, where=f"before step {step}")

    step_module = _step_module(model, cfg, modalities, objective, n_sub, dev, ddp, compile)
    source = data.resident(dev, modalities)  # the windows stay on the device when they fit
    steps = engine.StepPlans(sampler, n_steps, source.device, ddp)
    gen = torch.Generator(device=dev)
    # The loss is read back to the host (which waits for the device) at every step on the
    # CPU, where that costs nothing, and every engine.SYNC_EVERY steps elsewhere.
    checks = engine.LossChecks(run, history, engine.sync_every(dev))
    held = (HeldOut(source, held_out, cfg, modalities, n_sub, n_steps, held_out_every,
                     held_out_batches) if held_out is not None else None)
    # the raw model, not the DDP wrapper: every rank evaluates all held-out rows alike
    held_step = HeldOutStep(model, cfg, modalities) if held is not None else None
    model.train()
    t0 = time.perf_counter()
    report = _ProgressLines(history, n_steps, log_every)
    for step in progress(range(start, n_steps), desc="pre-train", total=n_steps - start):
        held_row = (held.evaluate(held_step, model, dev)
                    if held is not None and step in held.steps else None)
        t_step = time.perf_counter()
        new_step(compile)
        plan = steps.at(step)
        torch.manual_seed(derive_seed(cfg.seed, "dropout", step,
                                      *(("rank", ddp.rank) if ddp is not None else ())))
        due = ckpt is not None and step % cfg.checkpoint_every == 0 and (step > start
                                                                         or step == 0)
        buffers = ({k: v.detach().clone() for k, v in model.state_dict().items()
                    if k in dict(model.named_buffers())} if due else None)
        with run.autocast():
            inputs = engine.draw_inputs(source, plan, step, gen, cfg, modalities, n_sub, dev, ddp)
            total, terms = step_module(inputs, plan.batch)
        terms = {**terms, "total": total.detach()}  # the loss back-propagated is checked
        if due:
            # A checkpoint due at this step is written only once the weights it holds
            # (those after the previous update) gave a finite loss: exploded but finite
            # weights show up here, one step before they turn into NaN.
            checks.flush()
            checks.check(step, terms)
            save(step, buffers)
        run.backward_step(opt, total)
        checks.add(step, terms, time.perf_counter() - t_step,
                   changed if changed and step == start else None,
                   None if held_row is None else (held_step.names, held_row))
        if report.due(step):
            checks.flush()  # the losses up to this step, read now (on a GPU, a wait)
            report.log(step)
    checks.flush()
    if ckpt is not None and (start < n_steps or not ckpt.exists()):
        save(n_steps)
    logger.info("pre-training: %d steps in %.1f s", n_steps - start, time.perf_counter() - t0)
    return model.eval(), history


def _resume(run: TrainingRun, model: PretrainModel, opt, n_steps: int,
            resume_with: dict) -> tuple[list, int, dict]:
    """The history, first step and changed settings of a run, resumed from its checkpoint
    when there is one (weights and optimiser loaded, *resume_with* applied)."""
    state = run.resume_state(n_steps)
    if state is None:
        if resume_with:
            logger.info("no checkpoint to resume; resume_with %s applies from step 0",
                        resume_with)
        return [], 0, {}
    model.load_state_dict(state["model"])
    opt.load_state_dict(state["optimizer"])
    history, start = list(state["history"]), int(state["step"])
    changed = {k: {"from": state["config"].get(k), "to": v} for k, v in resume_with.items()
               if state["config"].get(k) != v}
    for group in opt.param_groups:  # load_state_dict restored the stored values
        group.update({k: v for k, v in resume_with.items()})
    logger.info("resuming pre-training from %s at step %d%s", run.checkpoint, start,
                "".join(f", {k} {c['from']} -> {c['to']}" for k, c in changed.items()))
    return history, start, changed


def _step_module(model: PretrainModel, cfg: PretrainConfig, modalities: tuple, objective: str,
                 n_sub: int, dev: torch.device, ddp, compile) -> torch.nn.Module:
    """The run's :class:`~physiosync.training.engine.Step`, wrapped for data parallelism
    under torchrun, compiled when *compile* asks."""
    simclr = objective == "simclr"
    step_module = engine.Step(model, cfg, modalities, simclr,
                              gather=ddp.gather_pooled if ddp is not None else None)
    if ddp is not None:
        from torch.nn.parallel import DistributedDataParallel

        # A zero loss weight (or no CM-CA, or SimCLR) leaves a head without gradients,
        # which DDP must then look for at every step; otherwise that traversal is skipped.
        every_head_used = (len(modalities) == 2 and not simclr and all(cfg.loss_weights)
                           and cfg.cmca_variant != "none")
        step_module = DistributedDataParallel(
            step_module, device_ids=[dev.index] if dev.type == "cuda" else None,
            find_unused_parameters=not every_head_used)
    return compile_step(step_module, compile,
                        structure=("pretrain", repr(cfg), modalities, n_sub, objective))


def encoder_cache_key(allowed, name: str, n_sub: int, config: PretrainConfig, modalities,
                      device, objective: str, held_out=None) -> str:
    """The key of a finished run in the *cache* of :func:`pretrain_encoders`.

    The held-out cells enter the key when given (they change the history stored);
    without them the key is what it always was.
    """
    extra = () if held_out is None else (np.asarray(held_out, dtype=bool),)
    return fingerprint(allowed, name, n_sub, repr(config), repr(modalities), str(device),
                       objective, *extra)


@verbose
@deprecated_show_progress
def pretrain_encoders(data: SlotData, long_config: PretrainConfig | None = None,
                      short_config: PretrainConfig | None = None, *, n_sub: int = 5,
                      which=("long", "short"), allowed=None, modalities=None, device=None,
                      checkpoint_dir=None, resume: bool = True, resume_with: dict | None = None,
                      context: str | None = None, cache: dict | None = None,
                      objective: str = "ls-tcl", compile: str | None = None,
                      held_out=None, log_every: int | None = None,
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
    %(n_sub)s
    which : sequence of {"long", "short"}
        The encoders to pre-train (fine-tuning ablations use only one).
    allowed : ndarray of bool, shape (n_subjects, n_trials, n_windows) | None
        Cells pre-training may use (see :func:`pretrain`): never held-out data.
    modalities : sequence of str | None
        EEG first, then at most one peripheral modality; default all of *data*'s.
    %(device_auto)s
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
    compile : {None, "default", "reduce-overhead", "max-autotune"}
        Compile each run's step (see :func:`pretrain`).
    held_out : ndarray of bool, shape (n_subjects, n_trials, n_windows) | None
        Cells of the held-out diagnostic of both runs (see :func:`pretrain`); part of
        the cache key.
    log_every : int | None
        Progress lines of each run (see :func:`pretrain`).
    %(verbose)s
        At ``"debug"``, a line before each run names it and its checkpoint, and one
        after it gives its number of steps and first and last loss.

    Returns
    -------
    encoders : dict
        ``{"long": (model, history), "short": (model, history)}`` (the runs in
        *which*, in that order): the ``PretrainModel`` in eval mode on *device*
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
        key = (encoder_cache_key(allowed, name, sub, cfg, modalities, device, objective,
                                 held_out) if cache is not None else None)
        if key in (cache or {}):
            out[name] = cache[key]
            continue
        ckpt = Path(checkpoint_dir) / f"pretrain_{name}.pt" if checkpoint_dir is not None else None
        logger.debug("pre-training the %s encoders%s", name, f" -> {ckpt}" if ckpt else "")
        try:
            model, hist = pretrain(data, cfg, allowed=allowed, n_sub=sub, modalities=modalities,
                                   device=device, checkpoint=ckpt, resume=resume,
                                   resume_with=resume_with, objective=objective,
                                   compile=compile, held_out=held_out,
                                   log_every=log_every)
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


@fill_doc
def run_steps(config: PretrainConfig, sampler) -> int:
    """Steps of a pre-training run: ``config.steps``, else ``epochs`` passes of *sampler*.

    Parameters
    ----------
    %(pretrain_config)s
    sampler : SynchronySampler | WindowSampler
        Its batch sampler (:func:`make_sampler`).

    Returns
    -------
    n_steps : int
    """
    return config.steps if config.steps is not None else config.epochs * sampler.steps_per_epoch()


@fill_doc
def time_pretrain(data: SlotData, config: PretrainConfig, *, allowed=None, n_sub: int = 1,
                  modalities=None, device=None, objective: str = "ls-tcl", held_out=None,
                  steps: int = 3, warmup: int = 1) -> dict:
    """Time a few steps of a pre-training run, as :func:`pretrain` runs them.

    The run is :func:`pretrain` itself, stopped after ``warmup + steps`` steps (no
    checkpoint, nothing written); the first *warmup* steps, which pay one-off costs
    (allocations, the first batches drawn), are not counted.

    Parameters
    ----------
    data, config, allowed, n_sub, modalities, device, objective
        As in :func:`pretrain`.
    held_out : ndarray of bool | None
        Cells of the run's held-out diagnostic; when given, one held-out batch is
        evaluated twice and the second evaluation timed.
    %(timed_steps)s

    Returns
    -------
    timing : dict
        ``step``: seconds of each timed step; ``setup``: seconds of the run outside its
        steps (building the model, the optimiser and the sampler); ``held_out_batch``:
        seconds of one held-out batch (None without *held_out*, or when it cannot fill
        a batch); ``model``: the briefly trained ``PretrainModel``.
    """
    cfg = replace(config, steps=warmup + steps)
    t0 = time.perf_counter()
    model, hist = pretrain(data, cfg, allowed=allowed, n_sub=n_sub, modalities=modalities,
                           device=device, objective=objective, verbose=False)
    wall = time.perf_counter() - t0
    timed = [h["seconds"] for h in hist[warmup:]]
    if resolve_device(device).type != "cpu" and timed:
        # off the CPU the loss is read back every few steps and the wait charged to the
        # last of them (see engine.LossChecks): only their mean is a step's time
        timed = [sum(timed) / len(timed)] * len(timed)
    out = {"step": timed, "setup": max(wall - sum(h["seconds"] for h in hist), 0.0),
           "held_out_batch": None, "model": model}
    if held_out is not None and held_out_sampler(held_out, cfg, n_sub=n_sub) is not None:
        dev = resolve_device(device)
        mods = resolve_modalities(data, cfg, modalities, objective)
        held = HeldOut(data.resident(dev, mods), held_out, cfg, mods, n_sub, 1, None, 1)
        step = HeldOutStep(model, cfg, mods)
        seconds = []
        for _ in range(2):  # the first evaluation pays its own one-off costs
            t0 = time.perf_counter()
            held.evaluate(step, model, dev).cpu()
            seconds.append(time.perf_counter() - t0)
        out["held_out_batch"] = seconds[-1]
    return out

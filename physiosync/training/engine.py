"""The training engine: what every training loop of physiosync runs on.

Pre-training (:func:`~physiosync.training.pretrain.pretrain`), fold-batched
pre-training (:func:`~physiosync.training.fold_batch.pretrain_folds`), fine-tuning
(:func:`~physiosync.training.finetune.finetune`) and the braindecode networks
(:class:`~physiosync.evaluation.deep.BraindecodeClassifier`) share:

* :class:`TrainingRun`, for one call of a loop: the data fingerprint that ties a
  checkpoint to the data it was trained on; the resume guard, which refuses to continue
  a checkpoint written for other settings or other data (another fold: resuming it would
  leak held-out data); mixed precision (float16 autocast and a gradient scaler on CUDA
  with ``amp=True``, bfloat16 autocast on any device with ``amp="bf16"``, float32
  otherwise); the divergence check (a non-finite loss, or non-finite weights about to be
  checkpointed, raise :class:`~physiosync.exceptions.TrainingDivergedError`, and a
  checkpoint is only ever written with finite weights, so the file on disk stays the
  last good state);
* deferred loss reads: reading a loss back makes the host wait for the device, so the
  losses stay on the device and are read in one transfer every few steps
  (:class:`LossChecks`, pre-training) or once per epoch (:class:`EpochLosses`,
  fine-tuning and braindecode), and a non-finite one is still named by its step or
  epoch;
* the optimiser (:func:`make_optimizer`), the compiled step (:func:`compile_step`) and
  the pre-training step itself: its batches drawn ahead (:class:`StepPlans`), its
  augmented inputs (:func:`draw_inputs`, :func:`draw_fold_inputs`) and its forward pass
  and loss as one module (:class:`Step`).

What a loop records and when it checkpoints stay in its module.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import torch

from .._utils import check_option, derive_seed, fingerprint
from .._utils.docs import fill_doc
from ..exceptions import PhysioSyncError, TrainingDivergedError
from ..models.losses import nt_xent, pretrain_loss_parts
from ..models.physiosync import PretrainModel
from ..params import COMPILE_MODES, OPTIMIZERS, PretrainConfig
from .augment import N_KINDS, augment
from .checkpoints import CheckpointError, read_checkpoint, save_checkpoint
from .sampling import SlotData

__all__ = ["TrainingRun", "state_is_finite", "LossChecks", "EpochLosses", "make_optimizer",
           "compile_step", "new_step", "check_distributed_compile", "sync_every", "Step",
           "StepPlan", "StepPlans", "draw_inputs", "draw_fold_inputs", "to_device",
           "DeviceRows"]

#: Per kind of run: its name in messages, the unit its checkpoints count, what a
#: checkpoint of other data was trained on, and the advice given after a divergence
#: (with and without a checkpoint to resume).
_KINDS = {
    "pretrain": dict(
        what="pre-training", unit="step",
        other_data=("training data (another fold, subjects, trials or modalities); resuming "
                    "it would leak held-out data. Delete it or choose another checkpoint path."),
        advice=" Try a lower lr, a higher temperature, or amp=False.",
        resume_advice=(" Resume it with a lower lr (resume_with={'lr': ...}, or --resume-with "
                       "lr=... on the command line), or try a higher temperature or "
                       "amp=False.")),
    "finetune": dict(
        what="fine-tuning", unit="epoch",
        other_data=("training or validation windows (another fold); delete it or choose "
                    "another checkpoint path."),
        advice="", resume_advice=""),
}


def state_is_finite(weights: dict, optimizer=None) -> bool:
    """Whether every floating-point tensor of *weights* and of *optimizer*'s state is finite."""
    tensors = [*weights.values()]
    if optimizer is not None:
        tensors += [v for st in optimizer.state.values() for v in st.values()
                    if isinstance(v, torch.Tensor)]
    return all(bool(torch.isfinite(t).all()) for t in tensors
               if t.is_floating_point() and t.numel())


def _differences(a: dict, b: dict, prefix: str = "") -> list[str]:
    """Sorted keys whose values differ, nested dicts as ``outer.inner``."""
    out = []
    for k in sorted(set(a) | set(b), key=str):
        x, y = a.get(k), b.get(k)
        if isinstance(x, dict) and isinstance(y, dict):
            out += _differences(x, y, f"{prefix}{k}.")
        elif x != y:
            out.append(f"{prefix}{k}")
    return out


class TrainingRun:
    """Checkpoint guard, data fingerprint, mixed precision and divergence check of a run.

    Parameters
    ----------
    kind : {"pretrain", "finetune"}
        The run; stored in its checkpoints and used in messages.
    checkpoint : str | Path | None
        File the run checkpoints to, or ``None``.
    resume : bool
        Continue from *checkpoint* when it exists (see :meth:`resume_state`).
    device : torch.device
        Where the run trains.
    amp : bool | "bf16"
        ``True``: float16 autocast with loss scaling on CUDA (a no-op elsewhere);
        ``"bf16"``: bfloat16 autocast on any device; ``False``: float32.
    config : dict
        The model's resolved configuration; a checkpoint must hold the same one to be
        resumed.
    data_identity : tuple
        What identifies the data the run may see (cells, labels, subjects, ...); its
        :func:`~physiosync._utils.fingerprint` must match the checkpoint's.
    ignore : iterable of str
        Keys of *config* that may differ on resume (a step budget that grows, settings
        changed on purpose).
    resumable : iterable of str
        Settings the caller can change on resume (pre-training's ``resume_with``); the
        refusal of another configuration says how.

    Attributes
    ----------
    use_amp : bool
        Whether float16 autocast and gradient scaling are on.
    data_key : str
        The fingerprint of *data_identity*.
    saved : int | None
        Step (or epoch) of the checkpoint on disk that this run wrote or resumed from,
        ``None`` while there is none.
    """

    def __init__(self, kind: str, checkpoint, *, resume: bool, device: torch.device,
                 amp: bool, config: dict, data_identity: tuple, ignore=(), resumable=()):
        if kind not in _KINDS:
            raise ValueError(f"kind must be one of {sorted(_KINDS)}, got {kind!r}.")
        self.kind = kind
        self._text = _KINDS[kind]
        self.unit = self._text["unit"]
        self.checkpoint = Path(checkpoint) if checkpoint is not None else None
        self.resume = bool(resume)
        self.device = device
        # amp: True is float16 with loss scaling, on CUDA only; "bf16" is bfloat16 on any
        # device, whose range needs no loss scaling
        self.amp_dtype = (torch.bfloat16 if amp == "bf16" else
                          torch.float16 if amp and device.type == "cuda" else None)
        self.use_amp = self.amp_dtype is not None
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp_dtype == torch.float16)
        self.config = config
        self.data_key = fingerprint(*data_identity)
        self.ignore = frozenset(ignore)
        self.resumable = tuple(resumable)
        self.saved = None

    # ------------------------------------------------------------------ resume
    def _comparable(self, config: dict) -> dict:
        return {k: v for k, v in config.items() if k not in self.ignore}

    def resume_state(self, total: int) -> dict | None:
        """The checkpoint to continue from, after checking that it belongs to this run.

        Parameters
        ----------
        total : int
            Steps (or epochs) this run is asked for; a checkpoint past them is refused.

        Returns
        -------
        state : dict | None
            The checkpoint's contents, or ``None`` without a checkpoint to resume (none
            given, *resume* off, or no file yet).

        Raises
        ------
        CheckpointError
            If the checkpoint is of another kind or configuration (beyond *ignore*), of
            other data, or already past *total*.
        """
        ckpt = self.checkpoint
        if ckpt is None or not self.resume or not ckpt.exists():
            return None
        state = read_checkpoint(ckpt)
        theirs = self._comparable(state.get("config") or {})
        ours = self._comparable(self.config)
        if state.get("kind") != self.kind or theirs != ours:
            differ = _differences(theirs, ours)
            hint = (f" To change {' or '.join(self.resumable)} on resume, pass resume_with "
                    "(--resume-with on the command line)." if self.resumable else "")
            raise CheckpointError(
                f"{ckpt} was written by a different {self._text['what']} configuration "
                f"(differs in {', '.join(differ) or 'kind'}); delete it or choose another "
                f"checkpoint path.{hint}")
        if state.get("data_key") != self.data_key:
            raise CheckpointError(f"{ckpt} was written for different {self._text['other_data']}")
        done = int(state[self.unit])
        if done > total:
            raise CheckpointError(
                f"{ckpt} already holds {done} {self.unit}s, more than the {total} requested; "
                f"raise {self.unit}s or choose another checkpoint path.")
        self.saved = done
        return state

    # --------------------------------------------------------- mixed precision
    def autocast(self):
        """Context of a forward pass: the autocast *amp* asks for, else a no-op."""
        return torch.autocast(self.device.type, dtype=self.amp_dtype or torch.float32,
                              enabled=self.use_amp)

    def backward_step(self, optimizer, loss: torch.Tensor) -> None:
        """Zero the gradients, back-propagate *loss* (scaled under amp) and step."""
        optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(optimizer)
        self.scaler.update()

    # -------------------------------------------------------------- divergence
    def _kept(self) -> str:
        if self.checkpoint is None or self.saved is None:
            return ""
        if self.kind == "finetune":
            return f"; the last good checkpoint ({self.checkpoint}) is kept"
        return f"; the last good checkpoint ({self.checkpoint}, {self.unit} {self.saved}) is kept"

    def _advice(self) -> str:
        kept = self.checkpoint is not None and self.saved is not None
        return self._text["resume_advice" if kept else "advice"]

    def check_loss(self, value: float, where: str, detail: str = "") -> float:
        """Return *value*, or raise if it is NaN or infinite.

        Parameters
        ----------
        value : float
            The loss of the current batch.
        where : str
            Where it was computed, e.g. ``"at step 5"``.
        detail : str
            Appended after *where* (e.g. the loss terms, in parentheses).

        Raises
        ------
        TrainingDivergedError
            Naming *where*, the last good checkpoint and what to try.
        """
        if not math.isfinite(value):
            raise TrainingDivergedError(
                f"{self._text['what']} loss became {value} {where}{detail}{self._kept()}."
                f"{self._advice()}")
        return value

    def save(self, at: int, payload: dict, optimizer, where: str) -> None:
        """Checkpoint *payload* as of step (or epoch) *at*, if its state is finite.

        The file gets ``kind``, ``config``, the step (or epoch) *at* and ``data_key``,
        then *payload*, which must hold the weights under ``"model"``.

        Raises
        ------
        TrainingDivergedError
            If the weights or *optimizer*'s state hold NaN or infinity; the checkpoint
            on disk (the last good one) is left as it is. *where* says when they broke,
            e.g. ``"before step 4"``.
        """
        if not state_is_finite(payload["model"], optimizer):
            raise TrainingDivergedError(
                f"{self._text['what']} weights became NaN or infinite {where}{self._kept()}."
                f"{self._advice()}")
        save_checkpoint(self.checkpoint, {"kind": self.kind, "config": self.config,
                                          self.unit: at, "data_key": self.data_key, **payload})
        self.saved = at


def make_optimizer(params, name: str, lr: float, weight_decay: float):
    """Adam (coupled L2, the reference's) or AdamW, fused where the device supports it.

    The fused kernels update all parameters in one pass; on the CPU that is about 8x
    faster than the default per-tensor loop (30 ms instead of 240 ms for the 26 M
    parameters of a 1 s pre-training run).
    """
    check_option("optimizer", name, OPTIMIZERS)
    cls = torch.optim.AdamW if name == "adamw" else torch.optim.Adam
    params = list(params)
    try:
        return cls(params, lr=lr, weight_decay=weight_decay, fused=True)
    except (RuntimeError, ValueError, TypeError):  # a device without fused kernels
        return cls(params, lr=lr, weight_decay=weight_decay)


#: Steps queued on an accelerator between two reads of the loss (which make the host
#: wait for the device); on the CPU the loss is read at every step.
SYNC_EVERY = 32
#: Steps whose batches are drawn together and moved to the device in one copy.
PLAN_STEPS = 256


def sync_every(device: torch.device) -> int:
    """Steps between two reads of the loss on *device*: 1 on the CPU (a read costs
    nothing there), :data:`SYNC_EVERY` on an accelerator."""
    return 1 if device.type == "cpu" else SYNC_EVERY


def compiling(mode) -> bool:
    """Whether *mode* asks for a compiled step (``None``, ``False``, ``"none"``: eager)."""
    return mode not in (None, False, "none")


def new_step(compile: str | None) -> None:
    """Tell a compiled step that a new training step begins.

    CUDA graphs (``"reduce-overhead"``) reuse their output memory from one replay to the
    next; marking each step lets torch know that the previous step's outputs are no
    longer read (the loop copies what it keeps).
    """
    if compiling(compile):
        torch.compiler.cudagraph_mark_step_begin()


def check_distributed_compile(mode: str | None, device: torch.device) -> None:
    """Refuse a compiled step under torchrun on CUDA, which has not been run yet.

    DistributedDataParallel under :func:`torch.compile` splits the graph at the gradient
    buckets (DDPOptimizer) and, with ``reduce-overhead``, replays CUDA graphs around
    collectives; physiosync's tests cover it on the CPU (gloo) only. Until it is tested
    on GPUs, it is refused before any work rather than trusted.

    Raises
    ------
    PhysioSyncError
        For a compiled mode on a CUDA device.
    """
    if compiling(mode) and torch.device(device).type == "cuda":
        raise PhysioSyncError(
            f"pretrain.compile={mode!r} under torchrun on CUDA is not tested yet; set "
            "pretrain.compile: none for data-parallel pre-training on GPUs (a single-GPU "
            "run may compile).")


#: The step structures compiled in this process, in order (see :func:`compile_step`).
_STRUCTURES: dict = {}


def compile_step(module: torch.nn.Module, mode: str | None, structure=None) -> torch.nn.Module:
    """*module* compiled with ``torch.compile(mode=mode)``, or as it is for ``None``.

    ``"reduce-overhead"`` captures the forward and backward passes in CUDA graphs on a
    GPU, so a step costs a few graph launches instead of hundreds of kernel launches.
    The optimiser step stays outside (it is one fused kernel already).

    Compiled once per structure, reused across folds: Dynamo keeps its graphs per code
    object (the step class's ``forward``) and guards them on what the graph depends on
    (the module's class and settings, tensor shapes and dtypes), not on the identity of
    the module or its parameters. A new fold's step, a new module of the same structure
    holding other weights, passes the guards and replays the graph compiled for the first
    fold. A structure (an encoder's input length, another loss weight) takes at most two
    entries of that cache: its first shapes, then, from a second shape on, graphs with
    dynamic shapes. *structure*, a hashable description of the step (its configuration,
    modalities, sub-windows), is counted here, and Dynamo's limit of entries per code
    object (``torch._dynamo.config.recompile_limit``, 8) is raised to hold two per
    structure compiled in this process, so a study of many configurations never falls
    back to eager steps after the eighth.
    """
    if not compiling(mode):
        return module
    check_option("compile", mode, COMPILE_MODES[1:])
    if structure is not None:
        import torch._dynamo

        _STRUCTURES.setdefault((mode, structure), len(_STRUCTURES))
        limit = 2 * len(_STRUCTURES) + 2
        if torch._dynamo.config.recompile_limit < limit:
            torch._dynamo.config.recompile_limit = limit
    return torch.compile(module, mode=mode)


def simclr_loss(z: torch.Tensor, cfg: PretrainConfig):
    """``w_eeg * nt_xent(view 1, view 2)`` and its unweighted term, as :func:`pretrain_loss`
    returns them."""
    half = z.shape[0] // 2
    term = nt_xent(z[:half], z[half:], cfg.temperature)
    total = cfg.loss_weights[0] * term
    return total, {"simclr": term.detach(), "total": total.detach()}


def pretrain_loss(model: PretrainModel, feats: dict, zs: dict, cfg: PretrainConfig):
    """Total loss and its named terms (0-d tensors, left on the device) from pooled
    features and projections."""
    mods = model.modalities
    w_eeg, w_pps, w_cm = cfg.loss_weights
    pps = mods[1] if len(mods) > 1 else None
    e = p = None
    if model.cmca_head is not None and w_cm:
        e, p = model.cmca_head(feats[mods[0]], feats[pps])
    return pretrain_loss_parts(zs[mods[0]], zs[pps] if pps else None, e, p,
                               weights=(w_eeg, w_pps if pps else 0.0,
                                        w_cm if e is not None else 0.0),
                               temperature=cfg.temperature, cmca_variant=cfg.cmca_variant)


class Step(torch.nn.Module):
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

    def embed(self, inputs: dict, batch) -> tuple[dict, dict]:
        """Pooled backbone features and projections of every modality."""
        feats, zs = {}, {}
        for m in self.modalities:
            h = self.model.encoders[m](inputs[m])
            feats[m] = self.gather(batch.pool(h))
            zs[m] = self.gather(batch.pool(self.model.projectors[m](h)))
        return feats, zs

    def forward(self, inputs: dict, batch):
        feats, zs = self.embed(inputs, batch)
        if self.simclr:
            return simclr_loss(zs[self.modalities[0]], self.cfg)
        return pretrain_loss(self.model, feats, zs, self.cfg)


class StepPlan:
    """The batches of a span of steps, drawn on the host in one pass.

    They are moved to the device where the windows live in one copy, so a step reads
    its grid positions there and nothing crosses between host and device in the step.
    """

    def __init__(self, sampler, steps: range, device: torch.device, ddp=None):
        rows, self.start = [], steps.start
        self.shard_rows = None
        for step in steps:
            batch = sampler.batch(step, N_KINDS)
            n = batch.groups.shape[2]
            # kinds drawn per slot, given to every row of both groups ("shared" pairing)
            shared = batch.aug.view(1, -1, 1).expand(2, -1, n).reshape(-1)
            self.global_rows = shared.numel()
            if ddp is not None:  # this rank's slots; draws are made for the global batch
                batch, self.shard_rows = ddp.shard(batch)
                shared = shared[self.shard_rows]
            rows.append(torch.stack([*batch.flat_index, shared]))
            if len(rows) == 1:
                self.batch = batch  # the pooling of every batch: only its shape is read
        index = torch.stack(rows)  # (steps, 5, rows): s, t, w, sub, shared kind
        if device.type == "cuda":
            index = index.pin_memory()  # an asynchronous copy
            if self.shard_rows is not None:
                self.shard_rows = self.shard_rows.to(device)
        self.index = index.to(device, non_blocking=True)
        self.stop = steps.stop

    def __contains__(self, step: int) -> bool:
        return self.start <= step < self.stop

    def rows(self, step: int) -> torch.Tensor:
        """``(5, rows)``: s, t, w, sub and shared augmentation kind of *step*'s rows."""
        return self.index[step - self.start]


class StepPlans:
    """:class:`StepPlan` after :class:`StepPlan`, :data:`PLAN_STEPS` steps at a time."""

    def __init__(self, sampler, n_steps: int, device: torch.device, ddp=None):
        self.sampler, self.n_steps, self.device, self.ddp = sampler, n_steps, device, ddp
        self.plan = None

    def at(self, step: int) -> StepPlan:
        if self.plan is None or step not in self.plan:
            stop = min(step + PLAN_STEPS, self.n_steps)
            self.plan = StepPlan(self.sampler, range(step, max(stop, step + 1)),
                                  self.device, self.ddp)
        return self.plan


def draw_inputs(source: SlotData, plan: StepPlan, step: int, gen: torch.Generator,
                 cfg: PretrainConfig, modalities: tuple, n_sub: int, dev: torch.device,
                 ddp=None) -> dict:
    """The augmented windows of *step*, per modality, on *dev*.

    Random draws come from *gen* (on *dev*), seeded from ``(seed, "augment", step)``;
    under torchrun the kinds are drawn for the global batch, then the noise per rank.
    """
    s, t, w, sub, shared = plan.rows(step)
    gen.manual_seed(derive_seed(cfg.seed, "augment", step))
    if cfg.augment_pairing == "shared":  # never with simclr (_check_simclr)
        kinds = shared
    else:
        kinds = torch.randint(0, N_KINDS, (plan.global_rows,), generator=gen, device=dev)
        if plan.shard_rows is not None:
            kinds = kinds[plan.shard_rows.to(kinds.device)]
    if ddp is not None:
        gen.manual_seed(derive_seed(cfg.seed, "augment", step, "rank", ddp.rank))
    inputs = {}
    for m in modalities:
        x = source.gather(m, s, t, w, n_sub, sub if n_sub > 1 else None)
        x = x.to(dev, non_blocking=True)
        inputs[m] = augment(x, kinds, snr_db=cfg.snr_db, generator=gen) if cfg.augment else x
    return inputs


def draw_fold_inputs(source: SlotData, plans: list, step: int, gen: torch.Generator,
                     cfg: PretrainConfig, modalities: tuple, n_sub: int,
                     dev: torch.device) -> dict:
    """:func:`draw_inputs` of K folds' plans at once: ``(K, rows, C, T)`` per modality.

    Every fold's run seeds its draws of a step from the same ``(seed, "augment", step)``
    and draws for batches of the same shape, so what K separate calls would draw is one
    fold's draw K times. It is drawn once and repeated, the K folds' rows are gathered
    in one index, and the augmentation runs once over all of them: the result equals K
    calls of :func:`draw_inputs`, bit for bit.
    """
    k = len(plans)
    rows = torch.stack([plan.rows(step) for plan in plans], dim=1)  # (5, K, rows)
    s, t, w, sub, shared = rows.reshape(5, -1)  # fold-major
    gen.manual_seed(derive_seed(cfg.seed, "augment", step))
    if cfg.augment_pairing == "shared":  # the sampler's kinds: each fold its own
        kinds = shared
    else:
        kinds = torch.randint(0, N_KINDS, (plans[0].global_rows,), generator=gen,
                              device=dev).repeat(k)
    inputs = {}
    for m in modalities:
        x = source.gather(m, s, t, w, n_sub, sub if n_sub > 1 else None)
        x = x.to(dev, non_blocking=True)
        if cfg.augment:
            x = augment(x, kinds, snr_db=cfg.snr_db, generator=gen, repeats=k)
        inputs[m] = x.view(k, -1, *x.shape[1:])
    return inputs


class LossChecks:
    """The divergence check and history of a run, reading losses in batches of steps.

    Reading a loss back makes the host wait for the device; queuing *every* steps
    between reads keeps an accelerator busy. A non-finite loss is still reported with
    the step it occurred at, and a checkpoint is written only after its step's loss was
    read (:meth:`check`).
    """

    def __init__(self, run: TrainingRun, history: list, every: int):
        self.run, self.history, self.every = run, history, max(int(every), 1)
        self.pending, self.held_pending = [], {}

    def _raise_if_bad(self, step: int, terms: dict) -> None:
        self.run.check_loss(terms["total"], f"at step {step}",
                            f" ({', '.join(f'{k}={v:.4g}' for k, v in terms.items())})")

    def check(self, step: int, terms: dict) -> None:
        """Read *step*'s loss now and raise if it is not finite."""
        values = torch.stack(list(terms.values())).tolist()
        self._raise_if_bad(step, dict(zip(terms, values)))

    def add(self, step: int, terms: dict, seconds: float, resumed_with=None,
            held_out: tuple | None = None) -> None:
        """Queue a finished step; read the queue once it holds *every* steps.

        The terms are copied into one new tensor at once: a step replayed from CUDA
        graphs writes its outputs into the same memory at every replay. *held_out*,
        ``(names, values)`` of the step's held-out diagnostic, is read with them.
        """
        self._queue(step, terms, seconds, resumed_with)
        if held_out is not None:
            self.held_pending[step] = held_out
        if len(self.pending) >= self.every:
            self.flush()

    def _queue(self, step: int, terms: dict, seconds: float, extra, dim: int = 0) -> None:
        """Queue *terms* stacked along *dim* into one new tensor (a CUDA-graph replay
        writes its outputs into the same memory at every replay)."""
        values = torch.stack([v.detach() for v in terms.values()], dim=dim)
        self.pending.append((step, tuple(terms), values, seconds, extra))

    def _read(self, held: list) -> tuple:
        """Empty the queue and read its values and the *held* tensors in one wait:
        ``(pending, values, held values, seconds the read took)``."""
        t0 = time.perf_counter()
        values = torch.stack([v for _, _, v, _, _ in self.pending]).tolist()
        # read right after the losses: the device has nothing left to finish
        held_values = torch.stack(held).tolist() if held else []
        pending, self.pending = self.pending, []
        return pending, values, held_values, time.perf_counter() - t0

    def flush(self) -> None:
        """Read the queued losses (one wait for the device), check them, record them."""
        if not self.pending:
            return
        held, self.held_pending = self.held_pending, {}
        pending, values, held_values, wait = self._read([v for _, v in held.values()])
        self.record([(step, names, row, seconds, resumed_with)
                     for (step, names, _, seconds, resumed_with), row in zip(pending, values)],
                    {step: (held[step][0], row) for step, row in zip(held, held_values)}, wait)

    def record(self, rows: list, held_rows: dict, wait: float) -> None:
        """Check and record steps whose values were read: *rows* of ``(step, names,
        values, seconds, resumed_with)`` in step order, *held_rows* ``{step: (names,
        values)}`` of the held-out diagnostic, and *wait*, the seconds the read took."""
        # The wait for the device belongs to the steps queued: charge it to the last, so
        # that the seconds of the steps add up to the wall time.
        step, names, row, seconds, resumed_with = rows[-1]
        rows[-1] = (step, names, row, seconds + wait, resumed_with)
        for step, names, row, seconds, resumed_with in rows:
            named = dict(zip(names, row))
            self._raise_if_bad(step, named)
            self.history.append({"step": step, "loss": named["total"],
                                 **{k: v for k, v in named.items() if k != "total"},
                                 "seconds": seconds})
            if resumed_with:
                self.history[-1]["resumed_with"] = resumed_with
            if step in held_rows:
                self.history[-1]["held_out"] = dict(zip(*held_rows[step]))

class EpochLosses:
    """The losses of an epoch's steps, kept where they were computed and read at once.

    Fine-tuning and the braindecode loop read their losses once per epoch, in one
    transfer, rather than at every step (which would make the host wait for the device
    at every step). The values read are those a per-step read gives, so the epoch's mean
    is unchanged; a non-finite loss is reported with its epoch (and its step in it), and
    before anything of that epoch is checkpointed or selected.
    """

    def __init__(self):
        self._values = []

    def __len__(self) -> int:
        return len(self._values)

    def add(self, loss: torch.Tensor) -> None:
        """Queue one step's loss (a 0-d tensor; detached here, nothing is read)."""
        self._values.append(loss.detach())

    def read(self) -> list:
        """The queued losses as floats (one wait for the device); the queue empties."""
        values, self._values = self._values, []
        return torch.stack(values).tolist() if values else []

    @staticmethod
    def first_bad(values) -> tuple | None:
        """``(index, value)`` of the first NaN or infinite value, or None."""
        return next(((i, v) for i, v in enumerate(values) if not math.isfinite(v)), None)


def to_device(x: torch.Tensor, device: torch.device) -> torch.Tensor:
    """*x* on *device*; a host tensor goes to CUDA through pinned memory, without a wait.

    A pageable host tensor would be staged by the driver while the host waits; pinned
    first, the copy is queued on the stream and the host goes on.
    """
    device = torch.device(device)
    if x.device == device:
        return x
    if device.type == "cuda" and x.device.type == "cpu":
        return x.pin_memory().to(device, non_blocking=True)
    return x.to(device)


@fill_doc
class DeviceRows:
    """Row batches of host arrays, served on a device.

    The arrays are copied to a CUDA device once, when together they take at most
    *max_fraction* of its free memory; a batch is then indexed there. Otherwise (or on
    any other device) they stay on the host and each batch is copied with
    :func:`to_device`. On the CPU the arrays are shared with numpy, not copied.

    Parameters
    ----------
    arrays : sequence of ndarray
        Arrays of the same length (e.g. windows and their labels).
    device : torch.device
        Where the batches are used.
    %(max_fraction)s
    """

    def __init__(self, arrays, device: torch.device, *, max_fraction: float = 0.5):
        self.device = torch.device(device)
        host = [torch.from_numpy(a) for a in arrays]
        size = sum(t.numel() * t.element_size() for t in host)
        fits = (self.device.type == "cuda"
                and size <= max_fraction * torch.cuda.mem_get_info(self.device)[0])
        self.where = self.device if fits else torch.device("cpu")
        self.arrays = [t.to(self.where) for t in host] if fits else host

    def index(self, rows) -> torch.Tensor:
        """*rows* (int array) as an index where the arrays live, copied there once."""
        return to_device(torch.as_tensor(rows, dtype=torch.int64), self.where)

    def take(self, index) -> list:
        """The rows at *index* (from :meth:`index`, or a slice) of every array, on the
        device."""
        return [to_device(a[index], self.device) for a in self.arrays]

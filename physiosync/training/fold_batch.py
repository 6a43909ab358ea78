"""Fold-batched pre-training: the models of K folds trained together, one step for all.

The folds of a study pre-train independent models with the same configuration on
different training cells. At the paper's batch (8 slots x 2 subjects x 2 groups) a step
is far too small to keep a GPU busy: its time goes to launching kernels, not to
arithmetic. :func:`pretrain_folds` stacks the K models' parameters
(:func:`torch.func.stack_module_state`) and runs the K forward and backward passes as
one, through :func:`torch.func.vmap` over :func:`torch.func.functional_call`: every
kernel launch then does K folds' work.

Nothing about a fold's run changes. Each fold keeps its own sampler (its own allowed
cells), its own batch-norm statistics and its own Adam moments (Adam is element-wise,
so one optimiser over the stacked tensors is K independent ones). The random draws are
those of :func:`~physiosync.training.pretrain.pretrain` for the same seed: the same
initial weights, the same augmentation draws per fold and the same dropout masks, as K
separate runs (seeded alike) would draw. The result equals K separate runs up to
floating-point rounding (the batched matrix products sum in another order); the tests
hold it to that.
"""

from __future__ import annotations

import contextlib
import copy
import time

import numpy as np
import torch

from .._logging import logger, verbose
from .._utils import derive_seed, flush_denormals, resolve_device
from ..exceptions import PhysioSyncError, TrainingDivergedError
from ..models.physiosync import PretrainModel
from ..params import PretrainConfig
from . import engine
from .distributed import distributed_context
from .engine import Step, StepPlans, TrainingRun, compile_step, make_optimizer, new_step
from .held_out import HELD_OUT_BATCHES, HeldOut, HeldOutStep
from .pretrain import make_sampler, resolve_modalities, run_steps

__all__ = ["pretrain_folds"]


class _FoldBatchedStep(torch.nn.Module):
    """:class:`~physiosync.training.engine.Step` of K stacked models, through ``vmap``.

    It owns the K models' stacked parameters and buffers (leading axis K), so that a
    compiled step sees them as the module's own, at fixed addresses (CUDA graphs copy
    any other input at every replay). ``forward(inputs)`` takes inputs of shape
    ``(K, rows, C, T)`` and returns the K totals and the K values of each loss term.

    Parameters
    ----------
    step : Step
        The step of one model, whose tensors are swapped for each fold's slice.
    batch : SlotBatch
        The pooling of every batch (only its shape is read).
    params, buffers : dict of str -> Tensor
        The stacked tensors, named as in *step*'s model; the names in *transposed* are
        stored ``(K, in, out)`` and handed to the model transposed.
    transposed : set of str
    """

    def __init__(self, step: Step, batch, params: dict, buffers: dict, transposed: set):
        super().__init__()
        self.step, self.batch, self.transposed = step, batch, frozenset(transposed)
        self.names = list(params)
        self.stacked = torch.nn.ParameterList(torch.nn.Parameter(v) for v in params.values())
        self.buffer_names = list(buffers)
        for i, v in enumerate(buffers.values()):
            self.register_buffer(f"stacked_buffer_{i}", v)

    def stacked_state(self) -> tuple[dict, dict]:
        """The stacked parameters as the model sees them, and the stacked buffers."""
        params = {f"model.{n}": (p.transpose(1, 2) if n in self.transposed else p)
                  for n, p in zip(self.names, self.stacked)}
        buffers = {f"model.{n}": getattr(self, f"stacked_buffer_{i}")
                   for i, n in enumerate(self.buffer_names)}
        return params, buffers

    def _one(self, params, buffers, inputs):
        return torch.func.functional_call(self.step, (params, buffers), (inputs, self.batch))

    def forward(self, inputs: dict):
        params, buffers = self.stacked_state()
        # randomness="same": one dropout mask for every fold, the mask each separate run
        # would draw from the same seed.
        return torch.func.vmap(self._one, randomness="same")(params, buffers, inputs)


def _transposed_linear_weights(model: torch.nn.Module, params: dict) -> set:
    """Names of the stacked Linear weights to store transposed, ``(K, in, out)``.

    Batched, the gradient of a ``(K, out, in)`` weight comes out of a batched matrix
    product as the transpose of a contiguous ``(K, in, out)`` array. Stored as
    ``(out, in)`` matrices, the parameters would make autograd (or the fused Adam
    kernel) copy every such gradient (or parameter) into the other layout: for the
    4096 x 2048 projector weights that copy took longer than the products themselves
    (measured on the CPU, K = 4: 0.22 s against 0.07 s for a forward and backward of
    one such layer). Stored transposed and handed to the model as a transposed view,
    they receive their gradients as these come.
    """
    linear = {f"{name}.weight" for name, module in model.named_modules()
              if isinstance(module, torch.nn.Linear)}
    return {name for name, value in params.items() if name in linear and value.ndim == 3}


@contextlib.contextmanager
def _naming(label: str):
    """Prefix the message of a divergence raised inside with the fold's *label*."""
    try:
        yield
    except TrainingDivergedError as err:
        raise TrainingDivergedError(f"{label}: {err}") from err


def _explicit_attention(module: torch.nn.Module) -> None:
    from ..models.encoders import _Attention

    for sub in module.modules():
        if isinstance(sub, _Attention):
            sub.explicit_softmax = True


@flush_denormals()
@verbose
def pretrain_folds(data, config: PretrainConfig | None = None, *, allowed, n_sub: int = 1,
                   modalities=None, device=None, objective: str = "ls-tcl",
                   compile: str | None = None, labels=None, held_out=None,
                   held_out_every: int | None = None, held_out_batches: int = HELD_OUT_BATCHES,
                   verbose: bool | str | int | None = None) -> list:
    """Pre-train one model per fold, K folds per step.

    Each fold's run is that of :func:`~physiosync.training.pretrain.pretrain` with the
    same arguments and its own *allowed* cells, without a checkpoint; the runs are
    batched together as the module docstring describes. Folds whose runs take
    different numbers of steps (an epoch counts the slots a fold may draw) are batched
    in separate groups.

    Parameters
    ----------
    data : SlotData
        Windows of all subjects.
    config : PretrainConfig | None
        Hyper-parameters shared by every fold (defaults to ``PretrainConfig()``).
    allowed : sequence of ndarray of bool, shape (n_subjects, n_trials, n_windows)
        The cells each fold may use: never its held-out data.
    n_sub, modalities, device, objective, compile
        As in :func:`~physiosync.training.pretrain.pretrain`.
    labels : sequence of str | None
        A name per fold for messages (default ``"fold 0"``, ``"fold 1"``, ...).
    held_out : sequence of (ndarray of bool | None) | None
        Per fold, the cells of its held-out diagnostic, or None (see
        :func:`~physiosync.training.pretrain.pretrain`); each fold's model is evaluated
        on its own held-out batches, from its slice of the stacked weights.
    held_out_every, held_out_batches
        As in :func:`~physiosync.training.pretrain.pretrain`.
    %(verbose)s

    Returns
    -------
    runs : list of (PretrainModel, list of dict)
        Per fold, in the order of *allowed*: the trained model (eval mode, on *device*)
        and its per-step history, as :func:`~physiosync.training.pretrain.pretrain`
        returns them (``seconds``: the fold's share of the batched step).

    Raises
    ------
    TrainingDivergedError
        If a fold's loss becomes NaN or infinite; the message names the fold.
    PhysioSyncError
        Under ``torchrun`` (fold batching runs in one process), or for what
        :func:`~physiosync.training.pretrain.pretrain` refuses.

    Notes
    -----
    With float16 loss scaling (``amp=True`` on CUDA) one scaler serves every fold, so an
    overflow in one fold skips the step of all; ``amp="bf16"`` needs no scaler and keeps
    the folds apart.
    """
    cfg = config or PretrainConfig()
    modalities = resolve_modalities(data, cfg, modalities, objective)
    if distributed_context() is not None:
        raise PhysioSyncError("fold-batched pre-training runs in one process; launch it "
                              "without torchrun, or set pretrain.batch_folds: 1.")
    masks = [np.asarray(a, dtype=bool) & data.valid for a in allowed]
    if not masks:
        return []
    labels = list(labels) if labels is not None else [f"fold {k}" for k in range(len(masks))]
    samplers = [make_sampler(m, cfg, n_sub=n_sub, objective=objective) for m in masks]
    held = list(held_out) if held_out is not None else [None] * len(masks)
    held = [None if h is None else np.asarray(h, dtype=bool) & data.valid & ~m
            for h, m in zip(held, masks)]
    n_steps = [run_steps(cfg, s) for s in samplers]
    out: list = [None] * len(masks)
    for total in sorted(set(n_steps)):
        group = [k for k, n in enumerate(n_steps) if n == total]
        runs = _train_group(data, cfg, [samplers[k] for k in group], total, n_sub, modalities,
                            resolve_device(device), objective, compile,
                            [labels[k] for k in group], [held[k] for k in group],
                            held_out_every, held_out_batches)
        for k, run in zip(group, runs):
            out[k] = run
    return out


class _FoldLossChecks(engine.LossChecks):
    """The :class:`~physiosync.training.engine.LossChecks` of K folds, read together.

    The step's K totals and terms are stacked once into a ``(K, n_terms)`` tensor, and
    every *every* steps all folds' values (and held-out rows) are read in one transfer;
    each fold's history and divergence check are then those of its own
    :class:`~physiosync.training.engine.LossChecks`, a divergence named by fold and step.
    """

    def __init__(self, run: TrainingRun, histories: list, every: int, labels: list):
        super().__init__(run, None, every)
        self.folds = [engine.LossChecks(run, h, every) for h in histories]
        self.labels, self.held = labels, []

    def add(self, step: int, terms: dict, seconds: float, held_out: list) -> None:
        """Queue a step's terms (each of shape ``(K,)``) and its folds' held-out rows."""
        self._queue(step, terms, seconds, None, dim=1)
        self.held += [(step, k, *row) for k, row in enumerate(held_out) if row is not None]
        if len(self.pending) >= self.every:
            self.flush()

    def flush(self) -> None:
        """Read every fold's queued values at once, then check and record each fold's."""
        if not self.pending:
            return
        held, self.held = self.held, []
        pending, values, held_values, wait = self._read([v for *_, v in held])
        for k, (fold, label) in enumerate(zip(self.folds, self.labels)):
            rows = [(step, names, row[k], seconds, None)  # values: steps x K x terms
                    for (step, names, _, seconds, _), row in zip(pending, values)]
            held_rows = {step: (names, row) for (step, j, names, _), row
                         in zip(held, held_values) if j == k}
            with _naming(label):
                fold.record(rows, held_rows, wait / len(self.folds))  # each fold's share


def _held_out_rows(helds: list, held_step: HeldOutStep, module: _FoldBatchedStep, step: int,
                   dev: torch.device) -> list:
    """Per fold, ``(names, values)`` of its held-out diagnostic at *step*, or None.

    The template model (eval mode, no gradients) runs each fold's held-out batches with
    that fold's slice of the stacked weights swapped in.
    """
    rows = [None] * len(helds)
    if not any(h is not None and step in h.steps for h in helds):
        return rows
    params, buffers = module.stacked_state()
    for k, h in enumerate(helds):
        if h is not None and step in h.steps:
            state = {name: v[k] for name, v in (*params.items(), *buffers.items())}
            rows[k] = (held_step.names, h.evaluate(
                lambda x, b, state=state: torch.func.functional_call(held_step, state, (x, b)),
                held_step, dev))
    return rows


def _stacked_step(data, cfg: PretrainConfig, k_folds: int, n_sub: int, modalities: tuple,
                  dev: torch.device, objective: str, batch):
    """The template model (every fold starts from its weights) and the batched step over
    K stacked copies of it."""
    torch.manual_seed(derive_seed(cfg.seed, "init"))  # as pretrain: every fold starts alike
    template = PretrainModel({m: data.n_chans(m) for m in modalities},
                             {m: data.n_times(m) // n_sub for m in modalities}, cfg).to(dev)
    params, buffers = torch.func.stack_module_state([template] * k_folds)
    base = copy.deepcopy(template).to("meta")  # structure only: functional_call swaps tensors in
    _explicit_attention(base)  # vmap has no batching rule for the fused attention kernels
    transposed = _transposed_linear_weights(base, params)
    params = {k: (v.detach().transpose(1, 2).contiguous() if k in transposed else v.detach())
              for k, v in params.items()}
    module = _FoldBatchedStep(Step(base, cfg, modalities, objective == "simclr"), batch,
                              params, buffers, transposed)
    return template, module


def _unstacked(template: PretrainModel, module: _FoldBatchedStep, k_folds: int) -> list:
    """The K trained models, each a copy of *template* with its fold's weights."""
    params, buffers = module.stacked_state()
    out = []
    for k in range(k_folds):
        model = copy.deepcopy(template)
        state = {name[len("model."):]: v[k].detach().clone(memory_format=torch.contiguous_format)
                 for name, v in (*params.items(), *buffers.items())}
        model.load_state_dict(state)
        out.append(model.eval())
    return out


def _train_group(data, cfg: PretrainConfig, samplers: list, n_steps: int, n_sub: int,
                 modalities: tuple, dev: torch.device, objective: str, compile, labels: list,
                 held_out: list, held_out_every, held_out_batches: int):
    """K runs of *n_steps* steps each, batched; see :func:`pretrain_folds`."""
    k_folds = len(samplers)
    source = data.resident(dev, modalities)
    plans = [StepPlans(s, n_steps, source.device) for s in samplers]
    # every fold's batches pool the same shapes: the first one serves all
    template, module = _stacked_step(data, cfg, k_folds, n_sub, modalities, dev, objective,
                                     plans[0].at(0).batch)
    opt = make_optimizer(module.stacked, cfg.optimizer, cfg.lr, cfg.weight_decay)
    run = TrainingRun("pretrain", None, resume=False, device=dev, amp=cfg.amp, config={},
                      data_identity=())
    batched = compile_step(module, compile, structure=("fold-batch", repr(cfg), modalities,
                                                       n_sub, objective, k_folds))
    histories = [[] for _ in samplers]
    checks = _FoldLossChecks(run, histories, engine.sync_every(dev), labels)
    gen = torch.Generator(device=dev)
    helds = [None if h is None else HeldOut(source, h, cfg, modalities, n_sub, n_steps,
                                             held_out_every, held_out_batches)
             for h in held_out]
    held_step = HeldOutStep(template, cfg, modalities)
    t0 = time.perf_counter()
    for step in range(n_steps):
        rows = _held_out_rows(helds, held_step, module, step, dev)
        t_step = time.perf_counter()
        new_step(compile)
        torch.manual_seed(derive_seed(cfg.seed, "dropout", step))
        with run.autocast():
            inputs = engine.draw_fold_inputs(source, [plan.at(step) for plan in plans], step,
                                             gen, cfg, modalities, n_sub, dev)
            totals, terms = batched(inputs)
        terms = {**terms, "total": totals.detach()}
        run.backward_step(opt, totals.sum())  # the folds' losses share no parameter
        checks.add(step, terms, (time.perf_counter() - t_step) / k_folds, rows)
    checks.flush()
    logger.info("fold-batched pre-training: %d folds x %d steps in %.1f s", k_folds, n_steps,
                time.perf_counter() - t0)
    del opt, batched  # the moments, and compiled graphs: room for the K models below
    return list(zip(_unstacked(template, module, k_folds), histories))

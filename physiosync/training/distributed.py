"""Data-parallel pre-training across processes: ``torchrun ... -m physiosync pretrain``.

Launched by ``torchrun --nproc-per-node K``, every process (rank) runs the same
pre-training with the same seed, so each draws the same global batch of stimulus slots
from the same allowed cells; rank ``r`` then keeps a contiguous ``1/K`` of the slots
(:meth:`DistributedContext.shard`), encodes only those windows, and the pooled
features and projections of all ranks are gathered, with their gradients
(:func:`torch.distributed.nn.functional.all_gather`), before the loss. Every rank thus
computes the loss of the whole global batch, as one process would, and
:class:`~torch.nn.parallel.DistributedDataParallel` averages the gradients, so the
updates are those of one process with the same global batch, up to floating-point
summation order. Rank 0 alone writes checkpoints; every rank resumes from them.

What differs from one process, and why:

* the augmentation noise is drawn per rank for its own windows (the augmentation
  *kinds* are those of the global batch), and dropout masks too: with augmentation or
  dropout on, the runs are statistically equivalent, not equal;
* nothing else: batch normalisation (after every encoder's embedding) computes its
  statistics over the global batch, through :class:`~torch.nn.SyncBatchNorm` on CUDA
  and, since that class refuses CPU tensors, through :class:`CPUSyncBatchNorm` (the
  same sums all-reduced over gloo) on the CPU (:func:`synchronise_batch_norm`).
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass

import torch

from ..exceptions import PhysioSyncError

__all__ = ["DistributedContext", "distributed_context", "init_from_environment",
           "process_group", "main_rank_first", "CPUSyncBatchNorm", "synchronise_batch_norm"]


@dataclass(frozen=True)
class DistributedContext:
    """This process's place in a torch.distributed process group."""

    rank: int
    world_size: int
    local_rank: int

    @property
    def is_main(self) -> bool:
        """Whether this is rank 0, which writes checkpoints and logs."""
        return self.rank == 0

    def check_batch(self, batch_slots: int) -> None:
        """Refuse a global batch that the ranks cannot share equally."""
        if batch_slots % self.world_size:
            raise PhysioSyncError(
                f"pretrain.batch_slots = {batch_slots} stimulus slots cannot be shared by "
                f"{self.world_size} processes; use a multiple of {self.world_size} (the global "
                "batch is the same for any number of processes), or another --nproc-per-node.")

    def check_pretraining(self, configs, *, compile: str | None, device) -> None:
        """Refuse, on every rank and before any work, a pre-training the ranks cannot run.

        Parameters
        ----------
        configs : iterable of PretrainConfig
            The pre-training runs (e.g. the long and the short encoders'): each global
            batch must be shared equally (:meth:`check_batch`).
        compile : str | None
            The ``pretrain.compile`` mode: a compiled step on CUDA is refused
            (:func:`~physiosync.training.engine.check_distributed_compile`).
        device : str | torch.device | None
            The run's configured device.

        Raises
        ------
        PhysioSyncError
            The first check that fails, in one line naming the setting.
        """
        from .._utils.device import resolve_device
        from .engine import check_distributed_compile

        for config in configs:
            self.check_batch(config.batch_slots)
        check_distributed_compile(compile, resolve_device(device))

    def shard(self, batch):
        """This rank's contiguous part of a global :class:`SlotBatch`, by slot.

        Returns
        -------
        shard : SlotBatch
            Slots ``rank * B/K`` to ``(rank + 1) * B/K - 1`` of *batch*.
        rows : LongTensor
            Positions of the shard's rows (its ``flat_index`` order) among the global
            batch's rows, to pick per-row draws made for the global batch.
        """
        b, _, n = batch.groups.shape
        per = b // self.world_size
        part = slice(self.rank * per, (self.rank + 1) * per)
        shard = type(batch)(batch.trial[part], batch.window[part], batch.sub[part],
                            batch.groups[part], batch.aug[part])
        group = torch.arange(2).view(2, 1, 1)
        slot = torch.arange(self.rank * per, (self.rank + 1) * per).view(1, per, 1)
        member = torch.arange(n).view(1, 1, n)
        return shard, (group * b * n + slot * n + member).reshape(-1)

    def gather_pooled(self, pooled: torch.Tensor) -> torch.Tensor:
        """``(2 * B_r, F)`` pooled rows of every rank -> ``(2 * B, F)`` in global order.

        Rows of the two groups stay apart (group 1 of every slot, then group 2), as
        :meth:`~physiosync.training.sampling.SlotBatch.pool` orders them; gradients flow
        back to each rank's own rows.
        """
        from torch.distributed.nn.functional import all_gather

        two_b, f = pooled.shape
        parts = all_gather(pooled.reshape(2, two_b // 2, f))
        return torch.stack(parts, dim=1).reshape(2 * (two_b // 2) * self.world_size, f)


def distributed_context() -> DistributedContext | None:
    """The initialised process group of this process, or None when there is none (or one rank)."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() < 2:
        return None
    return DistributedContext(dist.get_rank(), dist.get_world_size(),
                              int(os.environ.get("LOCAL_RANK", dist.get_rank())))


def init_from_environment(device: str | None = None) -> DistributedContext | None:
    """Join the process group that ``torchrun`` describes in the environment.

    Parameters
    ----------
    device : str | None
        The run's device: CUDA uses the NCCL backend and this rank's local GPU
        (``cuda:LOCAL_RANK``); anything else uses gloo.

    Returns
    -------
    context : DistributedContext | None
        None when the environment names no group of two or more processes
        (``WORLD_SIZE`` unset or 1): a plain, single-process run.

    Raises
    ------
    PhysioSyncError
        If the environment is inconsistent (a rank outside the world size), or the
        group cannot be joined; the message names the variable or the error.
    """
    import torch.distributed as dist

    try:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
        local = int(os.environ.get("LOCAL_RANK", str(rank)))
    except ValueError as err:
        raise PhysioSyncError(f"torchrun's environment is not numeric ({err}); launch with "
                              "torchrun --nproc-per-node K -m physiosync pretrain ...") from None
    if world < 2:
        return None
    if not 0 <= rank < world:
        raise PhysioSyncError(f"RANK={rank} is outside WORLD_SIZE={world}; every process "
                              "must be started by the same torchrun.")
    if not dist.is_initialized():
        cuda = bool(device) and str(device).startswith("cuda")
        if cuda:
            torch.cuda.set_device(local)
        try:
            dist.init_process_group("nccl" if cuda else "gloo")
        except (RuntimeError, ValueError) as err:
            raise PhysioSyncError(f"cannot join the process group of rank {rank} of {world}: "
                                  f"{' '.join(str(err).split())}") from None
    return distributed_context()


@contextlib.contextmanager
def process_group(device: str | None = None):
    """The process group of :func:`init_from_environment`, left when the block ends.

    Parameters
    ----------
    device : str | None
        The run's device (see :func:`init_from_environment`).

    Yields
    ------
    context : DistributedContext | None
        None in a plain, single-process run.
    """
    context = init_from_environment(device)
    try:
        yield context
    finally:
        if context is not None:
            import torch.distributed as dist

            dist.destroy_process_group()


@contextlib.contextmanager
def main_rank_first(context: DistributedContext | None):
    """Run the block on rank 0 first, then on the other ranks (a barrier between).

    Rank 0 does what the others depend on (checking the run folder, preparing the
    data cache) before they start the same block, which then finds it done. If rank 0's
    block raises, the barrier is never reached and the error ends the run.

    Parameters
    ----------
    context : DistributedContext | None
        This process's rank, or None for a single process (no barrier).

    Yields
    ------
    main : bool
        Whether this process is rank 0 (or the only process).
    """
    if context is None:
        yield True
        return
    import torch.distributed as dist

    if context.is_main:
        yield True
        dist.barrier()
    else:
        dist.barrier()
        yield False


class CPUSyncBatchNorm(torch.nn.BatchNorm1d):
    """:class:`~torch.nn.BatchNorm1d` whose training statistics pool every rank's batch.

    In training mode the per-channel count, sum and sum of squares are all-reduced
    (with gradients, :func:`torch.distributed.nn.functional.all_reduce`) before
    normalising, so every rank normalises with the statistics of the global batch, as
    one process would; the running statistics are updated from them the same way
    (unbiased variance). In eval mode it is a plain ``BatchNorm1d``. Parameter and
    buffer names are those of ``BatchNorm1d``, so checkpoints are interchangeable.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return super().forward(x)
        from torch.distributed.nn.functional import all_reduce

        c = x.shape[1]
        dims = [0, *range(2, x.dim())]
        local = torch.cat([x.sum(dims), (x * x).sum(dims),
                           x.new_full((1,), x.numel() // c)])
        total = all_reduce(local)
        n = total[-1]
        mean = total[:c] / n
        var = total[c:2 * c] / n - mean * mean
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked += 1
                m = self.momentum if self.momentum is not None else \
                    1.0 / float(self.num_batches_tracked)
                self.running_mean.mul_(1 - m).add_(m * mean.detach())
                self.running_var.mul_(1 - m).add_(m * var.detach() * n / (n - 1))
        shape = (1, c) + (1,) * (x.dim() - 2)
        y = (x - mean.view(shape)) * torch.rsqrt(var.view(shape) + self.eps)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        return y


def synchronise_batch_norm(module: torch.nn.Module, device_type: str) -> torch.nn.Module:
    """*module* with its batch-norm layers computing global-batch statistics across ranks.

    CUDA: :meth:`torch.nn.SyncBatchNorm.convert_sync_batchnorm`. CPU: every
    ``BatchNorm1d`` becomes a :class:`CPUSyncBatchNorm` holding the same tensors.
    """
    if device_type == "cuda":
        return torch.nn.SyncBatchNorm.convert_sync_batchnorm(module)
    for name, child in module.named_children():
        if type(child) is torch.nn.BatchNorm1d:
            sync = CPUSyncBatchNorm(child.num_features, child.eps, child.momentum,
                                    child.affine, child.track_running_stats)
            # the same Parameter and buffer objects: an optimizer built before keeps them
            for key, value in child._parameters.items():
                sync._parameters[key] = value
            for key, value in child._buffers.items():
                sync._buffers[key] = value
            sync.train(child.training)
            setattr(module, name, sync)
        else:
            synchronise_batch_norm(child, device_type)
    return module

"""Stimulus slots across subjects, and the inter-subject synchrony sampler.

PhysioSync's temporal contrast pairs *the same stimulus slot* -- the
same video and the same window within it -- as seen by two disjoint groups of
subjects. :class:`SlotData` holds the windows of every subject on one grid
``(subject, trial, window)``, with a mask of the cells that may be used (for
example training subjects and training trials only). :class:`SynchronySampler`
draws batches from the allowed cells only, with vectorised tensor indexing.
"""

from __future__ import annotations

import numpy as np
import torch

from ..exceptions import PhysioSyncError
from .._utils import derive_seed

__all__ = ["SlotData", "SynchronySampler", "SlotBatch"]


class SlotData:
    """Windows of several subjects on a common ``(subject, trial, window)`` grid.

    Parameters
    ----------
    x : dict of str -> Tensor or ndarray
        Per modality, windows of shape ``(n_subjects, n_trials, n_windows, n_channels,
        n_times)``; ``n_times`` may differ between modalities (native rates).
    valid : ndarray of bool, shape (n_subjects, n_trials, n_windows)
        Cells that hold data (a subject may lack a trial).
    subjects, trials : sequence of int
        Subject ids and trial (video) ids of the grid axes.
    labels : ndarray of int, shape (n_subjects, n_trials) | None
        Per-trial class labels, if known (-1 where unknown).
    """

    def __init__(self, x: dict, valid, subjects, trials, labels=None):
        self.x = {m: torch.as_tensor(v) for m, v in x.items()}
        self.valid = np.asarray(valid, dtype=bool)
        self.subjects = [int(s) for s in subjects]
        self.trials = [int(t) for t in trials]
        shape = self.valid.shape
        if len(shape) != 3 or shape[:2] != (len(self.subjects), len(self.trials)):
            raise PhysioSyncError(
                f"valid has shape {shape}; expected ({len(self.subjects)} subjects, "
                f"{len(self.trials)} trials, n_windows).")
        for m, v in self.x.items():
            if v.ndim != 5 or tuple(v.shape[:3]) != shape:
                raise PhysioSyncError(
                    f"{m} windows have shape {tuple(v.shape)}; expected {shape} + "
                    "(n_channels, n_times).")
        self.labels = None if labels is None else np.asarray(labels, dtype=np.int64)

    @property
    def modalities(self) -> tuple[str, ...]:
        """Modality names, in order."""
        return tuple(self.x)

    @property
    def shape(self) -> tuple[int, int, int]:
        """``(n_subjects, n_trials, n_windows)``."""
        return self.valid.shape

    def n_chans(self, modality: str) -> int:
        """Channels of *modality*."""
        return int(self.x[modality].shape[3])

    def n_times(self, modality: str) -> int:
        """Samples per window of *modality*."""
        return int(self.x[modality].shape[4])

    @classmethod
    def from_windows(cls, windows, length: float, modalities=None, target=None):
        """Build from a :class:`~physiosync.preprocessing.windows.WindowSet` (copies into one tensor).

        Parameters
        ----------
        windows : WindowSet
            Aligned windows of prepared subjects.
        length : float
            Window length in seconds (the long windows; shorter ones are cut from them).
        modalities : sequence of str | None
            Modalities to keep (default: all).
        target : str | None
            If given, per-trial labels of this target are attached.
        """
        modalities = tuple(modalities or windows.modalities)
        subjects = windows.subjects
        trials = sorted({int(t) for s in subjects for t in windows.prepared[s].trials})
        n_win = max(windows.n_windows(length, s) for s in subjects)
        valid = np.zeros((len(subjects), len(trials), n_win), dtype=bool)
        labels = np.full((len(subjects), len(trials)), -1, dtype=np.int64)
        x = {}
        for m in modalities:
            first = windows.windows(subjects[0], m, length)
            x[m] = torch.zeros((len(subjects), len(trials), n_win) + tuple(first.shape[2:]),
                               dtype=torch.float32)
        pos = {t: i for i, t in enumerate(trials)}
        for i, s in enumerate(subjects):
            p = windows.prepared[s]
            rows = [pos[int(t)] for t in p.trials]
            k = windows.n_windows(length, s)
            valid[i, rows, :k] = True
            if target is not None:
                labels[i, rows] = p.labels(target)
            for m in modalities:
                # np.array copies: the prepared arrays may be read-only memory maps.
                x[m][i, rows, :k] = torch.from_numpy(
                    np.array(windows.windows(s, m, length), dtype=np.float32))
        return cls(x, valid, subjects, trials, labels if target is not None else None)

    def gather(self, modality: str, s_idx, t_idx, w_idx, n_sub: int = 1, sub=None):
        """Windows at grid positions, optionally one sub-window of each.

        Parameters
        ----------
        modality : str
            Modality to read.
        s_idx, t_idx, w_idx : LongTensor, shape (K,)
            Grid positions.
        n_sub : int
            Number of equal sub-windows each window is split into.
        sub : LongTensor, shape (K,) | None
            Which sub-window to return (``None``: the whole window).

        Returns
        -------
        batch : Tensor, shape (K, n_channels, n_times // n_sub)
        """
        x = self.x[modality]
        if sub is None:
            return x[s_idx, t_idx, w_idx]
        n_t = x.shape[-1] // n_sub
        tiles = x[..., :n_t * n_sub].unfold(-1, n_t, n_t)  # (S, T, W, C, n_sub, n_t) view
        return tiles[s_idx, t_idx, w_idx, :, sub]

    def to(self, device):
        """Move the windows to *device* (returns self)."""
        self.x = {m: v.to(device) for m, v in self.x.items()}
        return self


class SlotBatch:
    """One batch of the synchrony sampler.

    Attributes
    ----------
    trial, window, sub : LongTensor, shape (B,)
        The stimulus slot of each batch row (``sub`` = sub-window index).
    groups : LongTensor, shape (B, 2, N)
        Subject (grid row) indices of the two disjoint groups of each slot.
    aug : LongTensor, shape (B,)
        Augmentation kind drawn for each slot (shared by both groups).
    """

    def __init__(self, trial, window, sub, groups, aug):
        self.trial, self.window, self.sub, self.groups, self.aug = trial, window, sub, groups, aug

    @property
    def flat_index(self):
        """``(s, t, w, sub)`` LongTensors of shape (B*2*N,) in group-major order.

        Rows are ordered group 1 of every slot, then group 2 (each slot's N subjects
        contiguous), matching :meth:`pool`.
        """
        b, _, n = self.groups.shape
        s = self.groups.permute(1, 0, 2).reshape(-1)  # (2, B, N) -> group-major
        rep = lambda v: v.view(1, b, 1).expand(2, b, n).reshape(-1)  # noqa: E731
        return s, rep(self.trial), rep(self.window), rep(self.sub)

    def pool(self, features):
        """Max-pool ``(B*2*N, F)`` features over each group -> ``(2B, F)``.

        Rows ``0..B-1`` are group 1 of each slot, rows ``B..2B-1`` group 2, in slot order.
        """
        b, _, n = self.groups.shape
        return features.view(2, b, n, -1).amax(dim=2).reshape(2 * b, -1)


class SynchronySampler:
    """Batches of stimulus slots, each seen by two disjoint subject groups.

    Every batch holds *batch_slots* slots ``(trial, window[, sub-window])``. For each
    slot, ``2 * group_size`` distinct subjects are drawn among those allowed on that
    trial, and split into two groups. Only cells marked in *allowed* are ever drawn,
    so held-out subjects or trials can never enter pre-training.

    Batches are a pure function of ``(seed, step)``, which makes an interrupted run,
    resumed at the same step, draw exactly the same batches.

    Parameters
    ----------
    allowed : ndarray of bool, shape (n_subjects, n_trials, n_windows)
        Cells that may be drawn (e.g. ``data.valid`` restricted to training data).
    batch_slots : int
        Slots per batch (the reference uses 8).
    group_size : int
        Subjects per group, N (the reference uses 2).
    n_sub : int
        Sub-windows per window (e.g. 5 to draw 1 s slots from 5 s windows); 1 = whole.
    seed : int
        Seed of the sampler.
    """

    def __init__(self, allowed, *, batch_slots: int = 8, group_size: int = 2, n_sub: int = 1,
                 seed: int = 0):
        allowed = np.asarray(allowed, dtype=bool)
        if allowed.ndim != 3:
            raise PhysioSyncError("allowed must be a (subjects, trials, windows) mask.")
        if batch_slots < 2:
            raise PhysioSyncError(f"batch_slots must be >= 2 (negatives), got {batch_slots}.")
        if group_size < 1:
            raise PhysioSyncError(f"group_size must be >= 1, got {group_size}.")
        self.allowed = torch.from_numpy(allowed)
        self.batch_slots, self.group_size, self.n_sub = batch_slots, group_size, n_sub
        self.seed = int(seed)
        counts = allowed.sum(axis=0)  # (trials, windows): subjects allowed per slot
        slot_t, slot_w = np.nonzero(counts >= 2 * group_size)
        if slot_t.size < batch_slots:
            most = int(counts.max()) if counts.size else 0
            raise PhysioSyncError(
                f"Only {slot_t.size} stimulus slots are seen by at least {2 * group_size} "
                f"allowed subjects (at most {most} subjects share a slot); need "
                f">= {batch_slots} slots for a batch. Use more subjects, a smaller "
                "group_size or fewer batch_slots.")
        skipped = int((counts > 0).sum() - slot_t.size)
        if skipped:
            from .._logging import logger

            logger.info("synchrony sampler: %d slots have fewer than %d allowed subjects and "
                        "are skipped", skipped, 2 * group_size)
        self.slot_t = torch.from_numpy(slot_t)
        self.slot_w = torch.from_numpy(slot_w)

    @property
    def n_slots(self) -> int:
        """Usable slots (including sub-windows)."""
        return int(self.slot_t.numel()) * self.n_sub

    def steps_per_epoch(self) -> int:
        """Batches in one pass over all usable slots."""
        return max(self.n_slots // self.batch_slots, 1)

    def batch(self, step: int, n_aug_kinds: int = 6) -> SlotBatch:
        """The batch of global step *step* (0-based)."""
        per_epoch = self.steps_per_epoch()
        epoch, within = divmod(int(step), per_epoch)
        g = torch.Generator().manual_seed(derive_seed(self.seed, "epoch", epoch))
        order = torch.randperm(self.n_slots, generator=g)
        pick = order[within * self.batch_slots:(within + 1) * self.batch_slots]
        slot, sub = pick // self.n_sub, pick % self.n_sub
        t, w = self.slot_t[slot], self.slot_w[slot]
        g = torch.Generator().manual_seed(derive_seed(self.seed, "step", step))
        b = pick.numel()
        keys = torch.rand((b, self.allowed.shape[0]), generator=g)
        ok = self.allowed[:, t, w].T  # (B, S): subjects allowed on each slot
        keys = torch.where(ok, keys, torch.full_like(keys, 2.0))
        chosen = torch.argsort(keys, dim=1)[:, :2 * self.group_size]
        groups = chosen.view(b, 2, self.group_size)
        aug = torch.randint(0, n_aug_kinds, (b,), generator=g)
        return SlotBatch(t, w, sub, groups, aug)

"""Stimulus slots across subjects, and the inter-subject synchrony sampler.

PhysioSync's temporal contrast pairs *the same stimulus slot* -- the
same video and the same window within it -- as seen by two disjoint groups of
subjects. :class:`SlotData` holds the windows of every subject on one grid
``(subject, trial, window)``, with a mask of the cells that may be used (for
example training subjects and training trials only). :class:`SynchronySampler`
draws batches from the allowed cells only, with vectorised tensor indexing;
:class:`WindowSampler` draws single windows from them, for the SimCLR baseline.

Two coordinate systems meet here, and :class:`SlotData` is the one place that
converts between them: *units* are ``(subject, trial)`` ids (what folds are made
of), *cells* are ``(s, t, w)`` grid positions (what the sampler, fine-tuning and
prediction index). :attr:`SlotData.description` lists the units with their grid
positions, :meth:`SlotData.locate` and :meth:`SlotData.cells` go from units to grid
positions and cells, and :meth:`SlotData.units_of` back.
"""

from __future__ import annotations

import numpy as np
import torch

from ..dataset_specs import SINGLE_SESSION
from ..exceptions import InputShapeError, PhysioSyncError
from .._logging import logger, verbose
from .._utils import check_option, derive_seed
from ..preprocessing.windows import split_sub_windows
from .._utils.docs import fill_doc

__all__ = ["SlotData", "SynchronySampler", "WindowSampler", "SlotBatch"]


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
    sessions : ndarray of str, shape (n_subjects, n_trials) | None
        The recording session of each unit (a subject may see a trial in one session
        only); None: one session, ``"0"``, for every unit (DEAP, DREAMER). It
        describes the units (:attr:`description`); sampling uses ids only.
    stimuli : ndarray of int, shape (n_subjects, n_trials) | None
        The stimulus (clip) of each unit where it is not the trial id (SEED shows the
        same clips in each session; -1 where a subject lacks the trial); None: the
        trial id is the stimulus.
    n_classes : int | None
        Classes of the target (its declared classes, present in the data or not);
        None: ``max(labels) + 1``, at least 2.

    See Also
    --------
    SlotData.from_windows : the windows of prepared subjects.
    SlotData.from_arrays : windows given as arrays with their subject and trial ids.

    Notes
    -----
    A *unit* is a ``(subject, trial)`` pair of ids, the grain of every fold; a *cell*
    is a ``(s, t, w)`` grid position: row ``s`` of :attr:`subjects`, column ``t`` of
    :attr:`trials`, window ``w``. :attr:`description` lists the units;
    :meth:`locate`, :meth:`cells` and :meth:`units_of` convert between the two.
    """

    def __init__(self, x: dict, valid, subjects, trials, labels=None, sessions=None,
                 stimuli=None, n_classes=None):
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
        self.sessions = None if sessions is None else np.asarray(sessions, dtype=object)
        if self.sessions is not None and self.sessions.shape != shape[:2]:
            raise PhysioSyncError(
                f"sessions has shape {self.sessions.shape}; expected ({len(self.subjects)} "
                f"subjects, {len(self.trials)} trials).")
        self.stimuli = None if stimuli is None else np.asarray(stimuli, dtype=np.int64)
        if self.stimuli is not None and self.stimuli.shape != shape[:2]:
            raise PhysioSyncError(
                f"stimuli has shape {self.stimuli.shape}; expected ({len(self.subjects)} "
                f"subjects, {len(self.trials)} trials).")
        self._n_classes = None if n_classes is None else int(n_classes)

    @property
    def n_classes(self) -> int:
        """Classes of the target: as given, else ``max(labels) + 1`` (at least 2)."""
        if self._n_classes is not None:
            return self._n_classes
        return int(max(self.labels.max() + 1, 2))

    @property
    def modalities(self) -> tuple[str, ...]:
        """Modality names, in order."""
        return tuple(self.x)

    @property
    def shape(self) -> tuple[int, int, int]:
        """``(n_subjects, n_trials, n_windows)``."""
        return self.valid.shape

    @property
    def description(self):
        """The units: one row per ``(subject, trial)`` with at least one valid window.

        Rows are in grid order (by subject row, then trial column), the order of
        :meth:`cells` with ``order="grid"``.

        Returns
        -------
        description : DataFrame
            Columns ``subject``, ``session`` and ``trial`` (ids; the session as a
            string, ``"0"`` for single-session data), ``s`` and ``t`` (grid row and
            column), ``n_windows`` (valid windows of the unit), ``stimulus`` where
            :attr:`stimuli` is set and, for labelled data, ``label``. Built from
            :attr:`valid` and :attr:`labels` on each access, so it follows a copy whose
            labels were replaced.
        """
        import pandas as pd

        s, t = np.nonzero(self.valid.any(axis=2))
        frame = pd.DataFrame({
            "subject": np.asarray(self.subjects, dtype=np.int64)[s],
            "session": (np.full(len(s), SINGLE_SESSION, dtype=object) if self.sessions is None
                        else self.sessions[s, t]),
            "trial": np.asarray(self.trials, dtype=np.int64)[t],
            "s": s.astype(np.int64), "t": t.astype(np.int64),
            "n_windows": self.valid[s, t].sum(axis=1).astype(np.int64)})
        if self.stimuli is not None:
            frame["stimulus"] = self.stimuli[s, t]
        if self.labels is not None:
            frame["label"] = self.labels[s, t]
        return frame

    @fill_doc
    def locate(self, units) -> np.ndarray:
        """Grid positions of ``(subject, trial)`` units.

        Parameters
        ----------
        %(unit_ids)s

        Returns
        -------
        positions : ndarray of int64, shape (K, 2)
            Grid row ``s`` and column ``t`` of each unit, in the order of *units*.
        """
        units = np.asarray(units, dtype=np.int64).reshape(-1, 2)
        s_pos = {s: i for i, s in enumerate(self.subjects)}
        t_pos = {t: j for j, t in enumerate(self.trials)}
        s = np.array([s_pos.get(v, -1) for v in units[:, 0].tolist()], dtype=np.int64)
        t = np.array([t_pos.get(v, -1) for v in units[:, 1].tolist()], dtype=np.int64)
        unknown = (s < 0) | (t < 0)
        if unknown.any():
            subject, trial = units[np.argmax(unknown)]
            raise PhysioSyncError(
                f"unit (subject {subject}, trial {trial}) is not in this data (subjects "
                f"{self.subjects}, trials {self.trials}); the units were made for other data.")
        return np.column_stack([s, t]).astype(np.int64)

    @fill_doc
    def cells(self, units, *, order: str = "grid") -> np.ndarray:
        """Valid ``(s, t, w)`` grid cells of ``(subject, trial)`` units.

        Parameters
        ----------
        %(unit_ids)s
        order : {"grid", "units"}
            ``"grid"``: every cell once, sorted by ``(s, t, w)`` (whatever the order of
            *units*). ``"units"``: unit by unit in the order of *units*, windows in
            ascending order (a unit listed twice gives its cells twice).

        Returns
        -------
        cells : ndarray of int64, shape (n_cells, 3)
        """
        check_option("order", order, ("grid", "units"))
        pos = self.locate(units)
        if order == "grid":
            mask = np.zeros(self.shape[:2], dtype=bool)
            mask[pos[:, 0], pos[:, 1]] = True
            return np.argwhere(self.valid & mask[:, :, None]).astype(np.int64)
        out = []
        for i, j in pos:
            w = np.nonzero(self.valid[i, j])[0]
            out.append(np.column_stack([np.full(len(w), i), np.full(len(w), j), w]))
        return np.concatenate(out).astype(np.int64) if out else np.zeros((0, 3), np.int64)

    def units_of(self, cells) -> np.ndarray:
        """``(subject, trial)`` ids of grid cells (or of ``(s, t)`` grid positions).

        Parameters
        ----------
        cells : array-like of int, shape (K, 3) or (K, 2)
            Grid cells ``(s, t, w)`` or positions ``(s, t)``.

        Returns
        -------
        units : ndarray of int64, shape (K, 2)
            Subject and trial id of each row, in the order of *cells*.
        """
        cells = np.asarray(cells, dtype=np.int64)
        if cells.ndim != 2 or cells.shape[1] not in (2, 3):
            raise PhysioSyncError(f"cells must be (K, 3) (s, t, w) cells or (K, 2) (s, t) "
                                  f"positions, got shape {cells.shape}.")
        return np.column_stack([np.asarray(self.subjects, dtype=np.int64)[cells[:, 0]],
                                np.asarray(self.trials, dtype=np.int64)[cells[:, 1]]])

    def n_chans(self, modality: str) -> int:
        """Channels of *modality*."""
        return int(self.x[modality].shape[3])

    def n_times(self, modality: str) -> int:
        """Samples per window of *modality*."""
        return int(self.x[modality].shape[4])

    @classmethod
    def from_windows(cls, windows, length: float, modalities=None, target=None,
                     n_classes=None):
        """Build from a :class:`~physiosync.preprocessing.windows.WindowSet`.

        The windows are copied once, from the prepared arrays (which may be read-only
        memory maps) into one dense float32 tensor per modality: the grid the sampler
        and fine-tuning index, and what :meth:`to` moves to a device.

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
        n_classes : int | None
            Classes of *target* (see :class:`SlotData`).

        Returns
        -------
        data : SlotData
            Subjects in the order of ``windows.subjects``, trials sorted.
        """
        modalities = tuple(modalities or windows.modalities)
        subjects = windows.subjects
        trials = sorted({int(t) for s in subjects for t in windows.prepared[s].trials})
        n_win = max(windows.n_windows(length, s) for s in subjects)
        valid = np.zeros((len(subjects), len(trials), n_win), dtype=bool)
        labels = np.full((len(subjects), len(trials)), -1, dtype=np.int64)
        sessions = np.full((len(subjects), len(trials)), SINGLE_SESSION, dtype=object)
        stimuli = np.full((len(subjects), len(trials)), -1, dtype=np.int64)
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
            sessions[i, rows] = np.asarray(p.sessions, dtype=object)
            stimuli[i, rows] = (p.ratings["stimulus"].to_numpy() if "stimulus" in p.ratings
                                else np.asarray(p.trials))
            if target is not None:
                labels[i, rows] = p.labels(target)
            for m in modalities:
                # Straight from the strided (read-only) view into the grid's memory:
                # no intermediate copy of the subject's windows.
                x[m].numpy()[i, rows, :k] = windows.windows(s, m, length)
        multi = bool((sessions != SINGLE_SESSION).any())
        own = any("stimulus" in windows.prepared[s].ratings for s in subjects)
        return cls(x, valid, subjects, trials, labels if target is not None else None,
                   sessions if multi else None, stimuli if own else None, n_classes)

    @classmethod
    def from_arrays(cls, arrays: dict, subject=None, trial=None, window=None):
        """Build from windows given as arrays, with the subject and trial of each.

        Parameters
        ----------
        arrays : dict of str -> ndarray
            Per modality, windows of shape ``(n_windows, n_channels, n_times)``.
        subject, trial : array-like of int, shape (n_windows,) | None
            Subject and trial (stimulus) id of each window; both or neither. Without
            them, all windows are one unit (subject 0, trial 0), in order.
        window : array-like of int, shape (n_windows,) | None
            Position of each window within its trial (default: the order of appearance
            of the unit's windows).

        Returns
        -------
        data : SlotData
            Unlabelled; subjects and trials are the sorted unique ids (as
            :meth:`from_windows` orders them for prepared subjects with sorted ids).
        cells : ndarray of int64, shape (n_windows, 3)
            The grid cell of each input window, in input order.
        """
        n = len(next(iter(arrays.values())))
        if subject is None and trial is None:
            cells = np.column_stack([np.zeros(n, int), np.zeros(n, int), np.arange(n)])
            subjects, trials = [0], [0]
        elif subject is None or trial is None:
            raise PhysioSyncError("pass both subject and trial (or neither).")
        else:
            subject, trial = np.asarray(subject), np.asarray(trial)
            if subject.shape != (n,) or trial.shape != (n,):
                raise InputShapeError(
                    f"subject and trial must have one entry per window ({n}).")
            subjects, s_idx = np.unique(subject, return_inverse=True)
            trials, t_idx = np.unique(trial, return_inverse=True)
            if window is None:  # position of each window within its unit, in order
                window = np.zeros(n, int)
                keys = s_idx * len(trials) + t_idx
                for k in np.unique(keys):
                    rows = np.nonzero(keys == k)[0]
                    window[rows] = np.arange(rows.size)
            window = np.asarray(window, dtype=int)
            if window.shape != (n,) or window.min() < 0:
                raise InputShapeError("window must hold one non-negative index per window.")
            cells = np.column_stack([s_idx, t_idx, window])
            if len(np.unique(cells, axis=0)) != n:
                raise PhysioSyncError(
                    "two windows share the same (subject, trial, window) position.")
            subjects, trials = list(subjects), list(trials)
        shape = (len(subjects), len(trials), int(cells[:, 2].max()) + 1)
        valid = np.zeros(shape, dtype=bool)
        valid[cells[:, 0], cells[:, 1], cells[:, 2]] = True
        x = {}
        for m, v in arrays.items():
            grid = torch.zeros(shape + v.shape[1:], dtype=torch.float32)
            grid[cells[:, 0], cells[:, 1], cells[:, 2]] = torch.from_numpy(v)
            x[m] = grid
        return cls(x, valid, subjects, trials), cells.astype(np.int64)

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

        See Also
        --------
        physiosync.preprocessing.windows.split_sub_windows : how windows are cut.
        """
        x = self.x[modality]
        if sub is None:
            return x[s_idx, t_idx, w_idx]
        tiles = split_sub_windows(x, n_sub)  # (S, T, W, C, n_sub, n_t) view
        return tiles[s_idx, t_idx, w_idx, :, sub]

    def to(self, device):
        """Move the windows to *device* (returns self)."""
        self.x = {m: v.to(device) for m, v in self.x.items()}
        self._resident = {}
        return self

    @property
    def device(self) -> torch.device:
        """Where the windows are (that of the first modality)."""
        return next(iter(self.x.values())).device

    @verbose
    def resident(self, device, modalities=None, *, max_fraction: float = 0.5,
                 verbose: bool | str | int | None = None) -> "SlotData":
        """These windows on *device*, copied there once, if they fit.

        The copy is kept (one per device and modalities), so the folds of a study that
        share this object copy the windows once. Only CUDA devices report their free
        memory; the copy is made when its size is at most *max_fraction* of it.

        Parameters
        ----------
        device : str | torch.device
            Where a training loop runs.
        modalities : sequence of str | None
            The modalities needed (default: all).
        %(max_fraction)s
        verbose : bool | str | int | None
            Level of the log for this call (``None``: the package's level). A copy
            that does not fit is said at ``"info"``.

        Returns
        -------
        data : SlotData
            *self* when the windows are on *device* already, when *device* is not a
            CUDA device, or when they do not fit (the loop then copies each batch);
            otherwise a :class:`SlotData` of the same grid whose windows live on
            *device*.
        """
        device = torch.device(device)
        modalities = tuple(modalities or self.modalities)
        if device.type != "cuda" or all(self.x[m].device == device for m in modalities):
            return self
        if device.index is None:
            device = torch.device("cuda", torch.cuda.current_device())
        cache = self.__dict__.setdefault("_resident", {})
        key = (str(device), modalities)
        if key not in cache:
            size = sum(self.x[m].numel() * self.x[m].element_size() for m in modalities)
            free, _ = torch.cuda.mem_get_info(device)
            if size > max_fraction * free:
                logger.info("the windows (%.2f GB) do not fit in %s (%.2f GB free); each "
                            "batch is copied instead", size / 1e9, device, free / 1e9)
                cache[key] = self
            else:
                cache[key] = SlotData({m: self.x[m].to(device) for m in modalities},
                                      self.valid, self.subjects, self.trials, self.labels,
                                      self.sessions, self.stimuli, self._n_classes)
        return cache[key]


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


def _check_allowed(allowed, batch_name: str, batch: int) -> np.ndarray:
    """*allowed* as a boolean ``(subjects, trials, windows)`` mask, and a batch of at
    least two (an NT-Xent batch needs negatives); refuses anything else in one line."""
    allowed = np.asarray(allowed, dtype=bool)
    if allowed.ndim != 3:
        raise PhysioSyncError("allowed must be a (subjects, trials, windows) mask.")
    if batch < 2:
        raise PhysioSyncError(f"{batch_name} must be >= 2 (negatives), got {batch}.")
    return allowed


@fill_doc
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
    %(allowed_cells)s
    batch_slots : int
        Slots per batch (the reference uses 8).
    group_size : int
        Subjects per group, N (the reference uses 2).
    n_sub : int
        Sub-windows per window (e.g. 5 to draw 1 s slots from 5 s windows); 1 = whole.
    %(sampler_seed)s
    %(verbose)s
        Slots too sparse to use are counted at ``"info"``.
    """

    @verbose
    def __init__(self, allowed, *, batch_slots: int = 8, group_size: int = 2, n_sub: int = 1,
                 seed: int = 0, verbose: bool | str | int | None = None):
        allowed = _check_allowed(allowed, "batch_slots", batch_slots)
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


@fill_doc
class WindowSampler:
    """Batches of single windows, each given twice: the two views of SimCLR.

    Every batch holds *batch_size* distinct allowed cells ``(s, t, w[, sub-window])``,
    drawn without replacement within a pass over all of them, from any subject and any
    slot, with no pairing across subjects: the two "groups" of the returned
    :class:`SlotBatch` are the same window (``groups[:, 0] == groups[:, 1]``, ``N = 1``),
    so the pre-training loop augments each copy independently and contrasts them. Only
    cells marked in *allowed* are ever drawn.

    An *epoch* is counted as for :class:`SynchronySampler`, one batch per *batch_size*
    stimulus slots (:meth:`steps_per_epoch`), so that a configuration's ``epochs`` buys
    both objectives the same number of optimisation steps; a pass over every window
    (:meth:`steps_per_pass`) is about ``n_subjects`` times longer.

    Batches are a pure function of ``(seed, step)``, as those of
    :class:`SynchronySampler`.

    Parameters
    ----------
    %(allowed_cells)s
    batch_size : int
        Windows per batch, B (>= 2: the other windows are the negatives).
    n_sub : int
        Sub-windows per window (e.g. 5 to draw 1 s windows from 5 s ones); 1 = whole.
    %(sampler_seed)s
    """

    def __init__(self, allowed, *, batch_size: int = 8, n_sub: int = 1, seed: int = 0):
        allowed = _check_allowed(allowed, "batch_size", batch_size)
        if n_sub < 1:
            raise PhysioSyncError(f"n_sub must be >= 1, got {n_sub}.")
        self.batch_size, self.n_sub, self.seed = int(batch_size), int(n_sub), int(seed)
        self.cells = torch.from_numpy(np.argwhere(allowed).astype(np.int64))  # (n, 3)
        self._n_slots = int(allowed.any(axis=0).sum()) * self.n_sub
        if self.n_cells < self.batch_size:
            raise PhysioSyncError(
                f"Only {self.n_cells} allowed windows (sub-windows included); need "
                f">= {self.batch_size} for a batch. Use more data or a smaller batch.")

    @property
    def n_cells(self) -> int:
        """Usable windows (including sub-windows)."""
        return int(self.cells.shape[0]) * self.n_sub

    def steps_per_epoch(self) -> int:
        """Batches in one epoch: one per *batch_size* stimulus slots (sub-windows included)."""
        return max(self._n_slots // self.batch_size, 1)

    def steps_per_pass(self) -> int:
        """Batches in one pass over all usable windows."""
        return max(self.n_cells // self.batch_size, 1)

    def batch(self, step: int, n_aug_kinds: int = 6) -> SlotBatch:
        """The batch of global step *step* (0-based)."""
        rnd, within = divmod(int(step), self.steps_per_pass())
        g = torch.Generator().manual_seed(derive_seed(self.seed, "pass", rnd))
        order = torch.randperm(self.n_cells, generator=g)
        pick = order[within * self.batch_size:(within + 1) * self.batch_size]
        cell, sub = pick // self.n_sub, pick % self.n_sub
        s, t, w = self.cells[cell].T.contiguous()
        g = torch.Generator().manual_seed(derive_seed(self.seed, "step", step))
        aug = torch.randint(0, n_aug_kinds, (pick.numel(),), generator=g)
        return SlotBatch(t, w, sub, s.view(-1, 1, 1).expand(-1, 2, 1), aug)

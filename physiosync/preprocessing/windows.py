"""Windows of several lengths, aligned in time across modalities and lengths.

A window is identified by ``(subject, trial, window)``; its onset in seconds from the
stimulus start is the same for every modality, and its start sample in modality
``m`` is ``onset_s * sfreq[m]``. With the default strides (equal to the lengths), the
5 s window ``j`` contains exactly the 1 s windows ``5j .. 5j+4``
(:meth:`WindowSet.sub_windows`). :func:`split_sub_windows` is the one place where a
window's samples are cut into equal shorter windows (the short windows of
pre-training and of the fine-tuned model's short encoders).

Windows are zero-copy strided views of the prepared arrays
(:meth:`WindowSet.windows`); only :meth:`WindowSet.get`, which gathers an arbitrary
batch of rows, and :meth:`WindowSet.to_sklearn`, which gathers windows, labels and ids
for a scikit-learn estimator, copy.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view

from ..exceptions import PhysioSyncError

__all__ = ["WindowSet", "make_windows", "split_sub_windows", "ID_COLUMNS"]

#: The ids of a window, as :meth:`WindowSet.to_sklearn` returns them (braindecode's
#: description has ``subject``, ``session`` and ``run``; a trial here is a stimulus).
ID_COLUMNS = ("subject", "session", "trial", "window")


def split_sub_windows(x, n_sub: int):
    """Cut windows into *n_sub* equal consecutive sub-windows (a view, no copy).

    The last axis (time) of *x* is split into ``n_sub`` pieces of
    ``n_times // n_sub`` samples; the last ``n_times % n_sub`` samples, if any, are
    dropped. Sub-window ``k`` of a window holds its samples
    ``k * n_t .. (k + 1) * n_t - 1`` with ``n_t = n_times // n_sub``.

    Parameters
    ----------
    x : ndarray | Tensor, shape (..., n_times)
        Windows, e.g. ``(n_windows, n_channels, n_times)``.
    n_sub : int
        Number of sub-windows per window (1 returns *x* with a new axis of size 1).

    Returns
    -------
    sub_windows : ndarray | Tensor, shape (..., n_sub, n_times // n_sub)
        A view of *x* (of the same type): ``out[..., k, :]`` is sub-window ``k``.

    See Also
    --------
    WindowSet.sub_windows : which shorter windows of a :class:`WindowSet` tile a
        longer one (with the default strides, the same samples as this split).
    """
    n_sub = int(n_sub)
    n_times = int(x.shape[-1])
    if n_sub < 1 or n_times < n_sub:
        raise PhysioSyncError(
            f"cannot cut windows of {n_times} samples into n_sub={n_sub} sub-windows; "
            f"n_sub must be between 1 and {n_times}.")
    n_t = n_times // n_sub
    x = x[..., :n_t * n_sub]
    if isinstance(x, np.ndarray):
        return sliding_window_view(x, n_t, axis=-1)[..., ::n_t, :]
    return x.unfold(-1, n_t, n_t)  # a torch.Tensor (this module does not import torch)


def _n_samples(seconds: float, sfreq: float, what: str) -> int:
    n = seconds * sfreq
    if abs(n - round(n)) > 1e-6 or round(n) < 1:
        raise PhysioSyncError(
            f"{what} of {seconds:g} s is not a whole number of samples at {sfreq:g} Hz.")
    return int(round(n))


class WindowSet:
    """Aligned multi-length windows over prepared subjects.

    Parameters
    ----------
    prepared : dict of int -> PreparedSubject
        Output of :func:`physiosync.preprocessing.cache.prepare`.
    lengths : sequence of float
        Window lengths in seconds, e.g. ``(1.0, 5.0)``.
    strides : sequence of float | None
        Stride of each length in seconds; by default equal to the length
        (non-overlapping windows aligned to the stimulus start).
    """

    def __init__(self, prepared: dict, lengths=(1.0, 5.0), strides=None):
        if not prepared:
            raise PhysioSyncError("No prepared subjects to window.")
        self.prepared = dict(prepared)
        self.lengths = tuple(float(x) for x in lengths)
        strides = self.lengths if strides is None else tuple(float(x) for x in strides)
        if len(strides) != len(self.lengths):
            raise PhysioSyncError("strides must have one entry per window length.")
        self.strides = dict(zip(self.lengths, strides))
        first = next(iter(self.prepared.values()))
        self.modalities = first.modalities
        self.sfreq = dict(first.sfreq)
        for s, p in self.prepared.items():
            if p.modalities != self.modalities or p.sfreq != self.sfreq:
                raise PhysioSyncError(
                    f"Subject {s} was prepared with modalities/rates {p.sfreq}, subject "
                    f"{first.subject} with {first.sfreq}; prepare all subjects alike.")
        for length, stride in self.strides.items():
            if stride <= 0:
                raise PhysioSyncError(f"stride must be positive, got {stride:g}.")
            for m, sf in self.sfreq.items():
                _n_samples(length, sf, f"window length ({m})")
                _n_samples(stride, sf, f"window stride ({m})")
            too_short = [s for s, p in self.prepared.items() if p.seconds < length]
            if too_short:
                raise PhysioSyncError(
                    f"{length:g} s windows do not fit the stimuli of subject(s) {too_short} "
                    f"({self.prepared[too_short[0]].seconds:g} s).")
        self._meta = {length: self._build_metadata(length) for length in self.lengths}

    @property
    def subjects(self) -> list[int]:
        """Subject ids."""
        return list(self.prepared)

    def _check_length(self, length) -> float:
        length = float(length)
        if length not in self.strides:
            raise PhysioSyncError(
                f"No {length:g} s windows; this WindowSet has lengths {list(self.lengths)}.")
        return length

    def n_windows(self, length: float, subject: int) -> int:
        """Windows per trial of the given length for *subject*."""
        length = self._check_length(length)
        stride = self.strides[length]
        return int(np.floor((self.prepared[subject].seconds - length) / stride + 1e-9)) + 1

    def windows(self, subject: int, modality: str, length: float) -> np.ndarray:
        """All windows of one subject and modality as a zero-copy view.

        Returns
        -------
        windows : ndarray, shape (n_trials, n_windows, n_channels, n_times)
            A read-only strided view of the prepared array (no data is copied).
        """
        length = self._check_length(length)
        if modality not in self.sfreq:
            raise PhysioSyncError(
                f"No modality {modality!r}; prepared modalities: {list(self.modalities)}.")
        sf = self.sfreq[modality]
        n_t = _n_samples(length, sf, "window length")
        step = _n_samples(self.strides[length], sf, "window stride")
        x = self.prepared[subject].data[modality]
        view = sliding_window_view(x, n_t, axis=-1)[:, :, ::step]
        return view[:, :, :self.n_windows(length, subject)].transpose(0, 2, 1, 3)

    def _build_metadata(self, length: float) -> pd.DataFrame:
        stride = self.strides[length]
        frames = []
        for s, p in self.prepared.items():
            n_win = self.n_windows(length, s)
            trial = np.repeat(p.trials, n_win)
            win = np.tile(np.arange(n_win), p.n_trials)
            onset = win * stride
            frame = {"subject": np.full(trial.size, s), "session": np.repeat(p.sessions, n_win),
                     "trial": trial, "window": win, "onset_s": onset}
            for m, sf in self.sfreq.items():
                frame[f"start_{m}"] = np.rint(onset * sf).astype(np.int64)
            frames.append(pd.DataFrame(frame))
        return pd.concat(frames, ignore_index=True)

    def metadata(self, length: float) -> pd.DataFrame:
        """One row per window: ``subject, session, trial, window, onset_s, start_<modality>``.

        ``session`` (str) is the session of the window's trial (``"0"`` for every window
        of a dataset recorded once, such as DEAP and DREAMER); trials are numbered across
        a subject's sessions, so ``(subject, trial)`` names one trial.
        """
        return self._meta[self._check_length(length)].copy()

    def labels(self, length: float, target: str, threshold: float | None = None) -> np.ndarray:
        """Label of every window of *length* (each window inherits its trial's label)."""
        meta = self._meta[self._check_length(length)]
        out = np.empty(len(meta), dtype=np.int64)
        for s, p in self.prepared.items():
            rows = (meta["subject"] == s).to_numpy()
            lab = pd.Series(p.labels(target, threshold), index=p.trials)
            out[rows] = lab.loc[meta.loc[rows, "trial"]].to_numpy()
        return out

    def sub_windows(self, long: float, short: float) -> np.ndarray:
        """Indices of the *short* windows inside each *long* window of a trial.

        Returns
        -------
        index : ndarray of int, shape (n_long, long / short)
            Row ``j`` lists the short-window indices (within the same trial) that tile
            long window ``j`` exactly.

        See Also
        --------
        split_sub_windows : cut the samples of windows into equal sub-windows (with the
            default strides, ``windows(s, m, short)[:, index]`` holds the same samples as
            ``split_sub_windows(windows(s, m, long), n)`` with the sub-window axis
            moved before the channels).
        """
        long, short = self._check_length(long), self._check_length(short)
        ratio = long / short
        s_stride = self.strides[short]
        if abs(ratio - round(ratio)) > 1e-9:
            raise PhysioSyncError(f"{long:g} s is not a multiple of {short:g} s.")
        offsets = np.arange(int(round(ratio))) * short / s_stride
        starts = np.arange(min(self.n_windows(long, s) for s in self.prepared)) \
            * self.strides[long] / s_stride
        idx = starts[:, None] + offsets[None, :]
        if np.any(np.abs(idx - np.rint(idx)) > 1e-9):
            raise PhysioSyncError(
                f"{short:g} s windows with stride {s_stride:g} s do not tile {long:g} s windows.")
        return np.rint(idx).astype(np.int64)

    def get(self, modality: str, length: float, rows) -> np.ndarray:
        """Gather the windows of the given metadata rows into one array (a copy).

        Parameters
        ----------
        modality : str
            Modality to read.
        length : float
            Window length in seconds.
        rows : array of int
            Positional indices into :meth:`metadata` of that length.

        Returns
        -------
        batch : ndarray, shape (len(rows), n_channels, n_times), float32
        """
        meta = self._meta[self._check_length(length)]
        rows = np.asarray(rows, dtype=np.int64)
        subj = meta["subject"].to_numpy()[rows]
        trial = meta["trial"].to_numpy()[rows]
        win = meta["window"].to_numpy()[rows]
        first = self.windows(int(subj[0]), modality, length) if rows.size else None
        shape = (rows.size,) + (first.shape[2:] if first is not None else (0, 0))
        out = np.empty(shape, dtype=np.float32)
        for s in np.unique(subj):
            mask = subj == s
            p = self.prepared[int(s)]
            pos = pd.Index(p.trials).get_indexer(trial[mask])
            out[mask] = self.windows(int(s), modality, length)[pos, win[mask]]
        return out

    def to_sklearn(self, length: float, target: str, *, modalities=None,
                   subjects=None, threshold: float | None = None, stack: bool = True):
        """Windows, labels and window ids for a scikit-learn estimator, in one call.

        The windows of every (or the given) subject are gathered into one array (a
        copy), with the label of each window and the subject, trial and position of
        each: all that :class:`~physiosync.PhysioSyncClassifier` needs, and the groups
        of scikit-learn's group splitters (``GroupKFold``, ``LeaveOneGroupOut``).

        Parameters
        ----------
        length : float
            Window length in seconds (one of ``lengths``), e.g. ``5.0``.
        target : str
            Label of each window, as in :meth:`labels`: ``"valence"``, ``"arousal"``,
            ``"dominance"``, ``"liking"`` (binary: 1 when the rating is at or above the
            threshold) or ``"four"`` (the four quadrants; see
            :func:`~physiosync.preprocessing.transforms.make_labels`).
        modalities : sequence of str | None
            Modalities to return, EEG first; default all the prepared ones (DEAP: EEG
            and GSR; DREAMER: EEG and ECG).
        subjects : sequence of int | None
            Subjects to return; default all.
        threshold : float | None
            Rating threshold of a binary target (default: the dataset's, as in
            :meth:`labels`).
        stack : bool
            ``True``: one array with the modalities' channels stacked in the order of
            *modalities* (they must have the same number of samples per window, i.e.
            the same rate: true of DEAP, not of DREAMER, whose ECG is at 256 Hz).
            ``False``: a dict ``{modality: array}``, which the classifier also takes.

        Returns
        -------
        X : ndarray, shape (n_windows, n_channels, n_times), float32 | dict
            The windows, in the row order of :meth:`metadata` (subject, trial,
            window). Stacked, the EEG channels come first: pass their number as
            ``PhysioSyncClassifier(n_eeg_channels=...)`` (32 for DEAP).
        y : ndarray of int, shape (n_windows,)
            Label of each window (its trial's).
        ids : DataFrame, shape (n_windows, 4)
            Columns ``subject``, ``session``, ``trial`` and ``window`` (position within
            the trial) of each row of *X*, with a default index: exactly the keyword
            arguments of :meth:`PhysioSyncClassifier.fit
            <physiosync.PhysioSyncClassifier.fit>`, so ``clf.fit(X, y, **ids)`` passes
            them all. ``ids["subject"]``, ``ids["trial"]`` or (across sessions)
            ``ids["session"]`` are the ``groups`` of a scikit-learn splitter.

        See Also
        --------
        get : the windows of given metadata rows of one modality.
        metadata : the ids of every window, with its onset and start samples.

        Notes
        -----
        Everything is copied: for all of DEAP (32 subjects, 40 trials, 12 windows of
        5 s, 33 channels at 128 Hz) *X* takes 1.3 GB of float32. Pass *subjects* to
        work on fewer at a time.

        Examples
        --------
        >>> from physiosync.datasets import DEAP
        >>> from physiosync.preprocessing.cache import prepare
        >>> from physiosync.preprocessing.windows import make_windows
        >>> windows = make_windows(prepare(DEAP("data_preprocessed_python")),
        ...                        lengths=(5.0,))  # doctest: +SKIP
        >>> X, y, ids = windows.to_sklearn(5.0, target="valence")  # doctest: +SKIP
        >>> X.shape, list(ids.columns)  # doctest: +SKIP
        ((15360, 33, 640), ['subject', 'session', 'trial', 'window'])

        Held-out videos, one model for all subjects:

        >>> from sklearn.model_selection import GroupKFold
        >>> from physiosync import PhysioSyncClassifier
        >>> for train, test in GroupKFold(5).split(X, y, groups=ids["trial"]):  # doctest: +SKIP
        ...     clf = PhysioSyncClassifier(n_eeg_channels=32)
        ...     clf.fit(X[train], y[train], **ids.iloc[train])
        ...     print(clf.score(X[test], y[test]))

        The same with scikit-learn's metadata routing, which hands every fold's model
        the ids of its own training windows:

        >>> import sklearn
        >>> from sklearn.model_selection import cross_val_score
        >>> sklearn.set_config(enable_metadata_routing=True)
        >>> clf = PhysioSyncClassifier(n_eeg_channels=32).set_fit_request(
        ...     subject=True, session=True, trial=True, window=True)
        >>> cross_val_score(clf, X, y, cv=GroupKFold(5),
        ...                 params={**ids, "groups": ids["trial"]})  # doctest: +SKIP
        """
        length = self._check_length(length)
        meta = self._meta[length]
        modalities = list(self.modalities if modalities is None else modalities)
        unknown = [m for m in modalities if m not in self.sfreq]
        if not modalities or unknown:
            raise PhysioSyncError(
                f"No modality {unknown[0]!r} to return; prepared modalities: "
                f"{list(self.modalities)}." if unknown else "modalities is empty; name at "
                f"least one of {list(self.modalities)}.")
        if subjects is None:
            rows = np.arange(len(meta))
        else:
            subjects = [int(s) for s in np.atleast_1d(subjects)]
            missing = [s for s in subjects if s not in self.prepared]
            if missing:
                raise PhysioSyncError(f"No subject {missing[0]} in these windows; subjects: "
                                      f"{self.subjects}.")
            rows = np.flatnonzero(meta["subject"].isin(subjects).to_numpy())
        if stack:
            n_times = {m: _n_samples(length, self.sfreq[m], "window length") for m in modalities}
            if len(set(n_times.values())) > 1:
                raise PhysioSyncError(
                    f"{length:g} s windows have {n_times} samples: modalities at different "
                    "rates cannot be stacked into one array. Pass stack=False for a dict "
                    "{modality: windows} (PhysioSyncClassifier takes it), or modalities "
                    "at one rate.")
            X = np.concatenate([self.get(m, length, rows) for m in modalities], axis=1)
        else:
            X = {m: self.get(m, length, rows) for m in modalities}
        y = self.labels(length, target, threshold)[rows]
        ids = meta.loc[rows, list(ID_COLUMNS)].reset_index(drop=True)
        return X, y, ids


def make_windows(prepared: dict, lengths=(1.0, 5.0), strides=None) -> WindowSet:
    """Cut prepared subjects into aligned windows; see :class:`WindowSet`."""
    return WindowSet(prepared, lengths=lengths, strides=strides)

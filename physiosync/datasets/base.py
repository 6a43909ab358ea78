"""What every dataset reader provides, and one subject's recording.

:class:`BaseDataset` is the interface the rest of the package uses from a dataset
reader (:class:`~physiosync.datasets.DEAP`, :class:`~physiosync.datasets.DREAMER`):
subjects, modalities, the files a subject is read from, and one
:class:`Recording` per subject. A new reader subclasses it and is declared by one
:class:`~physiosync.dataset_specs.DatasetSpec`.

A :class:`Recording` is what the dataset readers (:class:`~physiosync.datasets.DEAP`,
:class:`~physiosync.datasets.DREAMER`) return for one subject. It keeps the numbers
in the units of the release (µV for DEAP EEG, Ohm for DEAP GSR, ...) as array
views where it can, and converts to MNE objects in SI units on request.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from .._utils.montage import standard_montage
from ..dataset_specs import SINGLE_SESSION, dataset_spec
from ..exceptions import ConfigError, DataFormatError, PhysioSyncError
from ._channels import MODALITY_UNITS

__all__ = ["BaseDataset", "ModalityInfo", "Recording"]


@dataclass(frozen=True)
class ModalityInfo:
    """Static description of one modality of a recording.

    Parameters
    ----------
    name : str
        Modality name, e.g. ``"eeg"`` or ``"gsr"``.
    sfreq : float
        Native sampling rate in Hz.
    ch_names : tuple of str
        Channel names, in the order of the array rows.
    ch_type : str
        MNE channel type (``"eeg"``, ``"gsr"``, ``"bio"``, ...).
    unit : str
        Unit of the numbers as stored by the release.
    to_si : float
        Factor that converts the release unit to the SI unit MNE expects.
    highpass : float
        High-pass edge in Hz of what the release holds (0: none known), as
        ``info["highpass"]`` of the MNE objects.
    lowpass : float | None
        Low-pass edge in Hz (None: the Nyquist frequency, nothing known below it), as
        ``info["lowpass"]``.
    average_reference : bool
        Whether the release re-referenced the channels to their average (MNE's
        ``info["custom_ref_applied"]``); False: the reference of the recording.
    processing : str | None
        What the release did to the signals, in words (``info["description"]``).
    """

    name: str
    sfreq: float
    ch_names: tuple[str, ...]
    ch_type: str
    unit: str
    to_si: float
    highpass: float = 0.0
    lowpass: float | None = None
    average_reference: bool = False
    processing: str | None = None

    @classmethod
    def standard(cls, name: str, sfreq: float, ch_names: Sequence[str],
                 **signal) -> "ModalityInfo":
        """Build the info of a modality with the package's standard type and unit.

        *signal*: ``highpass``, ``lowpass``, ``average_reference`` and ``processing``
        of what the release holds.
        """
        ch_type, unit, to_si = MODALITY_UNITS[name]
        return cls(name, float(sfreq), tuple(ch_names), ch_type, unit, to_si, **signal)


def _as_trial_list(arrays) -> list[np.ndarray]:
    if isinstance(arrays, np.ndarray):
        return [arrays[i] for i in range(arrays.shape[0])]
    return list(arrays)


def check_finite(array: np.ndarray, what: str, source) -> None:
    """Raise :class:`DataFormatError` if *array* holds NaN or inf.

    A single reduction is tried first (fast, memory-bound); only if it is not finite
    is the position of the first bad value located for the message.
    """
    with np.errstate(all="ignore"):
        total = np.add.reduce(array, axis=None, dtype=np.float64)
    if np.isfinite(total):
        return
    bad = np.argwhere(~np.isfinite(array))
    if bad.size == 0:  # the sum overflowed although every value is finite
        return
    raise DataFormatError(
        f"{source}: {what} contains {len(bad)} non-finite value(s) (NaN or inf), first at "
        f"index {tuple(int(i) for i in bad[0])}; expected finite numbers."
    )


def first_off_scale(values, low: float, high: float, *, integer: bool = False):
    """``(row, column, value)`` of the first finite rating outside ``[low, high]`` (or,
    with *integer*, not a whole number), in row-major order; None if there is none.

    NaN and inf are left to the callers' own checks (the readers refuse them with
    messages of their own).
    """
    values = np.asarray(values, dtype=float)
    with np.errstate(invalid="ignore"):
        bad = np.isfinite(values) & ((values < low) | (values > high))
        if integer:
            bad |= np.isfinite(values) & (values != np.round(values))
    if not bad.any():
        return None
    row, col = (int(i) for i in np.argwhere(bad)[0])
    return row, col, float(values[row, col])


def session_column(sessions, n_trials: int, what: str) -> np.ndarray:
    """Per-trial session names as an array of str (``None``: one session, ``"0"``).

    Raises
    ------
    DataFormatError
        If *sessions* does not give one name per trial.
    """
    if sessions is None or len(sessions) == 0:
        return np.full(n_trials, SINGLE_SESSION, dtype=object)
    out = np.array([str(s) for s in sessions], dtype=object)
    if out.shape != (n_trials,):
        raise DataFormatError(f"{what}: {out.size} session names for {n_trials} trials; "
                              "expected one per trial.")
    return out


class RatedTrials:
    """Mixin for objects whose ``ratings`` DataFrame is indexed by trial (and whose
    ``sessions`` array gives each trial's session)."""

    ratings: pd.DataFrame
    sessions: np.ndarray

    @property
    def trials(self) -> np.ndarray:
        """0-based trial (video) indices present, in the order of the data."""
        return self.ratings.index.to_numpy()

    @property
    def n_trials(self) -> int:
        """Number of trials present."""
        return len(self.ratings)


class Recording(RatedTrials):
    """All modalities of one subject, split into trials in video (stimulus) order.

    Readers build recordings; users normally do not call this constructor.

    Parameters
    ----------
    subject : int
        Subject id as used by the dataset (1-based).
    dataset : str
        ``"DEAP"`` or ``"DREAMER"``.
    source : str | Path
        The file the data came from; named in error messages.
    modalities : dict of str -> ModalityInfo
        The modalities, in the order they should be listed.
    baseline, stimulus : dict of str -> array or list of arrays
        Per modality, either a 3-D array ``(n_trials, n_channels, n_samples)`` or a list
        of 2-D arrays ``(n_channels, n_samples_k)``, one per trial.
    ratings : pandas.DataFrame
        One row per trial, indexed by the 0-based trial (video) index.
    sessions : sequence of str | None
        The session of each trial, in the order of *ratings* (braindecode's and MOABB's
        ``session``). A subject's trials are numbered across its sessions, so that a
        ``(subject, trial)`` pair names one trial of one session. ``None``: every trial
        in the one session ``"0"`` (a dataset recorded once, as DEAP and DREAMER).
    """

    def __init__(self, subject: int, *, dataset: str, source, modalities: dict,
                 baseline: dict, stimulus: dict, ratings: pd.DataFrame, sessions=None):
        self.subject = int(subject)
        self.dataset = dataset
        self.source = Path(source)
        self._info = dict(modalities)
        self._baseline = {m: _as_trial_list(baseline[m]) for m in self._info}
        self._stimulus = {m: _as_trial_list(stimulus[m]) for m in self._info}
        self._baseline_arrays = {m: a for m, a in baseline.items() if isinstance(a, np.ndarray)}
        self._stimulus_arrays = {m: a for m, a in stimulus.items() if isinstance(a, np.ndarray)}
        ratings = ratings.copy()
        ratings.index = pd.Index(np.asarray(ratings.index, dtype=int), name="trial")
        self.ratings = ratings
        self._position = {int(t): i for i, t in enumerate(ratings.index)}
        self.sessions = session_column(sessions, len(ratings), f"{self.source}: sessions")
        self._validate()

    # ------------------------------------------------------------------ basics
    @property
    def modalities(self) -> tuple[str, ...]:
        """Names of the modalities, e.g. ``("eeg", "ecg")``."""
        return tuple(self._info)

    def info(self, modality: str) -> ModalityInfo:
        """The :class:`ModalityInfo` of *modality*."""
        try:
            return self._info[modality]
        except KeyError:
            raise PhysioSyncError(
                f"{self.dataset} subject {self.subject} has no modality {modality!r}; "
                f"available: {', '.join(self._info)}."
            ) from None

    def sfreq(self, modality: str) -> float:
        """Native sampling rate of *modality* in Hz."""
        return self.info(modality).sfreq

    def ch_names(self, modality: str) -> list[str]:
        """Channel names of *modality*."""
        return list(self.info(modality).ch_names)

    def _pos(self, trial: int) -> int:
        try:
            return self._position[int(trial)]
        except (KeyError, TypeError, ValueError):
            raise PhysioSyncError(
                f"{self.dataset} subject {self.subject} ({self.source.name}) has no trial "
                f"{trial!r}; trials are 0-based video indices, available: "
                f"{_summarise(self.trials)}."
            ) from None

    def stimulus(self, modality: str, trial: int) -> np.ndarray:
        """Stimulus part of one trial, ``(n_channels, n_samples)``, in release units.

        Parameters
        ----------
        modality : str
            One of ``modalities``.
        trial : int
            0-based trial index in video order.
        """
        self.info(modality)
        return self._stimulus[modality][self._pos(trial)]

    def baseline(self, modality: str, trial: int) -> np.ndarray:
        """Pre-stimulus baseline of one trial, ``(n_channels, n_samples)``, in release units."""
        self.info(modality)
        return self._baseline[modality][self._pos(trial)]

    def stimulus_array(self, modality: str) -> np.ndarray:
        """All stimuli of *modality* as one ``(n_trials, n_channels, n_samples)`` array.

        A view of the file data when the release stores trials contiguously (DEAP);
        otherwise stacked, which requires every trial to have the same length.
        """
        return self._stacked(modality, self._stimulus, self._stimulus_arrays, "stimulus")

    def baseline_array(self, modality: str) -> np.ndarray:
        """All baselines of *modality* as one ``(n_trials, n_channels, n_samples)`` array."""
        return self._stacked(modality, self._baseline, self._baseline_arrays, "baseline")

    def stimulus_lengths(self, modality: str) -> np.ndarray:
        """Number of stimulus samples of each trial of *modality*."""
        self.info(modality)
        return np.array([a.shape[-1] for a in self._stimulus[modality]])

    def _stacked(self, modality, per_trial, arrays, what):
        self.info(modality)
        if modality in arrays:
            return arrays[modality]
        lengths = {a.shape[-1] for a in per_trial[modality]}
        if len(lengths) > 1:
            raise PhysioSyncError(
                f"{self.source.name}: the {what} segments of {modality!r} have different "
                f"lengths ({min(lengths)}-{max(lengths)} samples); crop them to a common "
                "length first (e.g. prepare(..., stimulus_seconds=60))."
            )
        return np.stack(per_trial[modality])

    def __repr__(self) -> str:
        mods = ", ".join(f"{m}: {len(i.ch_names)} ch @ {i.sfreq:g} Hz" for m, i in self._info.items())
        return f"<Recording {self.dataset} subject {self.subject}, {self.n_trials} trials | {mods}>"

    # -------------------------------------------------------------- validation
    def _validate(self) -> None:
        n = self.n_trials
        declared = _declared_sessions(self.dataset)
        unknown = sorted(set(self.sessions) - set(declared or self.sessions))
        if unknown:
            raise DataFormatError(
                f"{self.source}: session(s) {unknown} are not among the sessions declared for "
                f"{self.dataset} ({', '.join(declared)}); fix the reader or its DatasetSpec.")
        for m, info in self._info.items():
            for what, segs in (("baseline", self._baseline[m]), ("stimulus", self._stimulus[m])):
                if len(segs) != n:
                    raise DataFormatError(
                        f"{self.source}: {len(segs)} {what} segments of {m!r} but {n} "
                        "rated trials; expected one segment per rated trial."
                    )
                for t, seg in zip(self.trials, segs):
                    if seg.ndim != 2 or seg.shape[0] != len(info.ch_names):
                        raise DataFormatError(
                            f"{self.source}: {m} {what} of trial {t} has shape {seg.shape}; "
                            f"expected ({len(info.ch_names)}, n_samples)."
                        )
        values = self.ratings.to_numpy(dtype=float)
        if not np.isfinite(values).all():
            bad = self.ratings.index[~np.isfinite(values).all(axis=1)].tolist()
            raise DataFormatError(
                f"{self.source}: non-finite ratings for trial(s) {bad}; expected finite numbers."
            )

    # ---------------------------------------------------------------- to MNE
    def _mne_info(self, modality: str):
        import mne
        from mne.io.constants import FIFF

        info = self.info(modality)
        mne_info = mne.create_info(list(info.ch_names), info.sfreq, info.ch_type)
        if info.ch_type == "gsr" and info.unit == "Ohm":
            for ch in mne_info["chs"]:
                ch["unit"] = FIFF.FIFF_UNIT_OHM
        if info.ch_type == "eeg":
            mne_info.set_montage(standard_montage(), on_missing="warn")
        nyquist = info.sfreq / 2
        with mne_info._unlock():
            mne_info["subject_info"] = {"his_id": f"{self.dataset}-{self.subject:02d}"}
            # what the release holds, not MNE's defaults (no filter, the recording's
            # reference), so that MNE's filter and reference checks see the real data
            mne_info["highpass"] = float(min(info.highpass, nyquist))
            mne_info["lowpass"] = float(nyquist if info.lowpass is None
                                        else min(info.lowpass, nyquist))
            if info.average_reference:
                mne_info["custom_ref_applied"] = FIFF.FIFFV_MNE_CUSTOM_REF_ON
            if info.processing:
                mne_info["description"] = info.processing
        return mne_info

    def to_raw(self, modality: str):
        """Concatenate the trials of *modality* into an :class:`mne.io.RawArray` (SI units).

        Each trial contributes its baseline followed by its stimulus. Annotations
        ``trial_TT/baseline`` and ``trial_TT/stimulus`` (TT = 0-based video index) mark
        them, so ``mne.events_from_annotations`` recovers the trial structure.
        """
        import mne

        info = self.info(modality)
        pieces, onsets, durations, descriptions = [], [], [], []
        start = 0
        for t, base, stim in zip(self.trials, self._baseline[modality], self._stimulus[modality]):
            for what, seg in (("baseline", base), ("stimulus", stim)):
                pieces.append(seg)
                onsets.append(start / info.sfreq)
                durations.append(seg.shape[-1] / info.sfreq)
                descriptions.append(f"trial_{t:02d}/{what}")
                start += seg.shape[-1]
        data = np.concatenate(pieces, axis=-1).astype(np.float64) * info.to_si
        raw = mne.io.RawArray(data, self._mne_info(modality), verbose="error")
        raw.set_annotations(mne.Annotations(onsets, durations, descriptions))
        return raw

    def to_epochs(self, modality: str, tmax: float | None = None):
        """One epoch per trial of *modality* as :class:`mne.EpochsArray` (SI units).

        Time 0 is the stimulus onset; the baseline occupies negative times. The
        ratings are the epochs' ``metadata``.

        Parameters
        ----------
        modality : str
            One of ``modalities``.
        tmax : float | None
            Stimulus seconds to keep. ``None`` keeps the shortest stimulus length, so that
            trials of different lengths (DREAMER clips) fit in one array.
        """
        import mne

        info = self.info(modality)
        n_base = min(b.shape[-1] for b in self._baseline[modality])
        n_stim = int(self.stimulus_lengths(modality).min())
        if tmax is not None:
            want = int(round(tmax * info.sfreq))
            if want > n_stim:
                raise PhysioSyncError(
                    f"tmax={tmax} s needs {want} samples but the shortest {modality} stimulus "
                    f"of subject {self.subject} has {n_stim} ({n_stim / info.sfreq:g} s)."
                )
            n_stim = want
        data = np.stack([
            np.concatenate([b[:, b.shape[-1] - n_base:], s[:, :n_stim]], axis=-1)
            for b, s in zip(self._baseline[modality], self._stimulus[modality])
        ]).astype(np.float64) * info.to_si
        n_len = n_base + n_stim
        events = np.column_stack([
            np.arange(self.n_trials) * n_len + n_base,
            np.zeros(self.n_trials, int),
            np.ones(self.n_trials, int),
        ])
        metadata = self.ratings.reset_index()
        return mne.EpochsArray(data, self._mne_info(modality), events=events,
                               tmin=-n_base / info.sfreq, event_id={"stimulus": 1},
                               metadata=metadata, baseline=None, verbose="error")


def _declared_sessions(dataset: str) -> tuple:
    """The sessions *dataset*'s specification declares (empty for an undeclared reader)."""
    try:
        return dataset_spec(dataset).sessions
    except ConfigError:
        return ()


def _summarise(values) -> str:
    values = list(values)
    if len(values) > 8:
        return f"{values[:3]} ... {values[-3:]} ({len(values)} in all)"
    return str(values)


class BaseDataset(ABC):
    """A dataset reader: one :class:`Recording` per subject.

    Subclasses set the class attributes (from their dataset's
    :class:`~physiosync.dataset_specs.DatasetSpec`), implement the abstract members and
    are named by that specification's ``reader``, which registers them in
    :data:`physiosync.datasets.DATASETS` under their configuration name.
    The preparation cache (:func:`physiosync.preprocessing.cache.prepare`), the
    descriptive tables and the experiment runner use nothing else from a reader.

    Attributes
    ----------
    name : str
        Display name, e.g. ``"DEAP"`` (the specification's ``display_name``); also
        names the cache entries, and finds the dataset's specification
        (:func:`~physiosync.dataset_specs.dataset_spec`), hence its threshold.
    modalities : tuple of str
        Modalities a recording of this dataset has, EEG first.
    format : str
        The release format read, e.g. ``"dat"``, ``"bdf"`` or ``"mat"``; recorded as
        the data source of a run.
    root_description : str
        What the data root must be, for error messages (e.g. ``"DREAMER.mat file"``).
    """

    name: str = ""
    modalities: tuple[str, ...] = ()
    format: str = ""
    root_description: str = "dataset folder"

    @property
    @abstractmethod
    def subjects(self) -> list[int]:
        """Sorted ids of the subjects present."""

    @abstractmethod
    def load_subject(self, subject: int) -> Recording:
        """Read one subject.

        Parameters
        ----------
        subject : int
            One of :attr:`subjects`.

        Returns
        -------
        recording : Recording
            Every modality of ``modalities``, cut into trials, with ratings.
        """

    @abstractmethod
    def subject_file(self, subject: int) -> Path:
        """The file *subject* is read from; raises a clear error if it is unknown or missing."""

    @abstractmethod
    def source_files(self, subjects=None) -> list[Path]:
        """Every file the given subjects (default: all) are read from.

        The preparation cache keys an entry by these files' identity (path, size,
        modification time and sampled content), so it must list everything
        :meth:`load_subject` reads for those subjects.
        """

    def cache_identity(self) -> dict:
        """What, besides its source files, identifies the data read for the cache key.

        Returns
        -------
        identity : dict
            JSON-ready; by default ``{"dataset": name, "format": format}``. Two
            readers of the same files that could return different recordings (two
            releases, two reading options) must differ here.
        """
        return {"dataset": self.name, "format": self.format}

    def synthetic(self, subjects=None) -> bool:
        """Whether physiosync's synthetic writers wrote every source file of *subjects*.

        A writer of :mod:`physiosync.synthetic` lists each file it writes as ``"synth"``
        in its folder's ``.physiosync-files`` (``physiosync._utils.manifest``); a
        file not listed there, or a list that cannot be read, counts as data from
        elsewhere (real data, or files physiosync did not write).

        Parameters
        ----------
        subjects : list of int | None
            As for :meth:`source_files` (default: all).

        Returns
        -------
        synthetic : bool
        """
        from .._utils.manifest import read_manifest

        files = self.source_files(subjects)
        listed = {}
        for f in files:
            folder = Path(f).parent
            if folder not in listed:
                try:
                    listed[folder] = read_manifest(folder) or {}
                except OSError:
                    listed[folder] = {}
            if listed[folder].get(Path(f).name) != "synth":
                return False
        return bool(files)

    def __iter__(self):
        return (self.load_subject(s) for s in self.subjects)

    def __len__(self) -> int:
        return len(self.subjects)

    def __repr__(self) -> str:
        return f"<{self.name} {self.format}: {len(self)} subjects>"

"""Reader of the DREAMER dataset (Katsigiannis & Ramzan, 2018).

DREAMER is one MATLAB v5 file, ``DREAMER.mat``, holding a 1x1 struct ``DREAMER``:

* ``Data``: a 1xN cell (N = 23 participants) of 1x1 structs with fields ``Age``,
  ``Gender``, ``EEG``, ``ECG``, ``ScoreValence``, ``ScoreArousal``, ``ScoreDominance``;
* ``EEG`` and ``ECG``: structs ``{baseline, stimuli}``, each an n_trials x 1 cell (18
  film clips) of time-major ``(samples x channels)`` arrays: 14 Emotiv EPOC channels at
  128 Hz, and 2 ECG leads at 256 Hz. Each clip has its own 61 s neutral baseline;
  stimuli have different lengths (the clips run 65-393 s);
* ``ScoreValence``/``ScoreArousal``/``ScoreDominance``: n_trials x 1 SAM ratings 1-5;
* constants ``EEG_SamplingRate``, ``ECG_SamplingRate``, ``EEG_Electrodes``,
  ``noOfSubjects``, ``noOfVideoSequences`` and four text fields.

:class:`DREAMER` reads the file once, keeps the arrays it holds (no copies) and hands
out one :class:`~physiosync.datasets.Recording` per participant with the *real* ECG at
its native 256 Hz. :func:`physiosync.synthetic.make_dreamer` writes a synthetic file with the same layout.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .._logging import logger, verbose
from ..dataset_specs import DATASET_SPECS
from ..exceptions import DataFormatError, DataNotFoundError
from ._channels import (DREAMER_ECG, DREAMER_EEG, DREAMER_EEG_SIGNAL, DREAMER_RATING_SCALE,
                        DREAMER_SFREQ)
from ._matfile import load_mat
from .base import BaseDataset, ModalityInfo, Recording, check_finite, first_off_scale
from .deap import _check_subject_id
from .._utils.docs import fill_doc

__all__ = ["DREAMER"]

FILE_NAME = "DREAMER.mat"
#: Fields of the top-level ``DREAMER`` struct, in the order of the release.
TOP_FIELDS = ("Data", "EEG_SamplingRate", "ECG_SamplingRate", "EEG_Electrodes",
              "noOfSubjects", "noOfVideoSequences", "Disclaimer", "Provider", "Version",
              "Acknowledgement")
#: Top-level fields the reader needs; the four text fields are optional.
REQUIRED_TOP_FIELDS = TOP_FIELDS[:6]
#: Fields of each participant's struct in ``DREAMER.Data``, in the order of the release.
SUBJECT_FIELDS = ("Age", "Gender", "EEG", "ECG", "ScoreValence", "ScoreArousal",
                  "ScoreDominance")
#: Fields of the ``EEG`` and ``ECG`` structs.
SIGNAL_FIELDS = ("baseline", "stimuli")
#: Rating column -> score field.
SCORE_FIELDS = {"valence": "ScoreValence", "arousal": "ScoreArousal",
                "dominance": "ScoreDominance"}
RATING_COLUMNS = tuple(SCORE_FIELDS)
N_SUBJECTS = 23
N_TRIALS = 18
MODALITY_FIELDS = {"eeg": "EEG", "ecg": "ECG"}
# ------------------------------------------------------------------------ reading
def _resolve(path) -> Path:
    path = Path(path).expanduser()
    if not path.exists():
        raise DataNotFoundError(
            f"DREAMER file {path} does not exist; expected the release's {FILE_NAME} "
            "(or a folder holding it).")
    if path.is_dir():
        for p in sorted(path.iterdir()):
            if p.name.lower() == FILE_NAME.lower() and p.is_file():
                return p
        mats = sorted(p.name for p in path.glob("*.mat"))
        raise DataNotFoundError(
            f"No {FILE_NAME} in folder {path}"
            + (f" (it holds {', '.join(mats)})" if mats else "")
            + f"; expected the DREAMER release's single MATLAB file {FILE_NAME}.")
    return path


def _load_mat(path: Path):
    """The ``DREAMER`` variable of the file (:func:`~._matfile.load_mat` checks it first)."""
    return load_mat(path, ["DREAMER"], release="the DREAMER release",
                    resave=f"save('{FILE_NAME}', 'DREAMER', '-v7')",
                    expected={"DREAMER": "struct 'DREAMER'"})["DREAMER"]


def _record(value, what: str, path: Path, expected) -> np.void:
    """The single element of a MATLAB 1x1 struct as loaded by ``loadmat``."""
    if isinstance(value, np.ndarray) and value.dtype == object and value.size == 1:
        value = value.reshape(-1)[0]  # a cell holding the struct
    if isinstance(value, np.ndarray) and value.dtype.names is not None and value.size == 1:
        value = value.reshape(-1)[0]
    if not (isinstance(value, np.void) and value.dtype.names is not None):
        desc = (f"{value.dtype} array of shape {value.shape}" if isinstance(value, np.ndarray)
                else type(value).__name__)
        raise DataFormatError(f"{path}: {what} is a {desc}; expected a 1x1 struct with "
                              f"fields {', '.join(expected)}.")
    return value


def _fields(rec: np.void, required, expected, what: str, path: Path) -> None:
    names = rec.dtype.names
    missing = [f for f in required if f not in names]
    if missing:
        raise DataFormatError(
            f"{path}: {what} has no field {', '.join(repr(m) for m in missing)} (fields "
            f"found: {', '.join(names) or 'none'}); expected the fields "
            f"{', '.join(expected)}.")


def _cell(value, what: str, path: Path) -> list:
    """The elements of a MATLAB n x 1 (or 1 x n) cell array, in order."""
    if not (isinstance(value, np.ndarray) and value.dtype == object):
        desc = (f"{value.dtype} array of shape {value.shape}" if isinstance(value, np.ndarray)
                else type(value).__name__)
        raise DataFormatError(f"{path}: {what} is a {desc}; expected a cell array.")
    if value.ndim > 2 or (value.ndim == 2 and min(value.shape) > 1):
        raise DataFormatError(f"{path}: {what} is a {value.shape[0]}x{value.shape[1]} cell; "
                              "expected a cell vector (n x 1 or 1 x n).")
    return list(value.reshape(-1))


def _scalar(value, what: str, path: Path) -> float:
    arr = np.asarray(value)
    if arr.size != 1 or arr.dtype.kind not in "fiub":
        raise DataFormatError(f"{path}: {what} is {arr.dtype} of shape {arr.shape}; expected "
                              "a numeric scalar.")
    x = float(arr.reshape(-1)[0])
    if not np.isfinite(x):
        raise DataFormatError(f"{path}: {what} is {x}; expected a finite number.")
    return x


def _text(value) -> str:
    """A MATLAB char array (or a number) as a Python string."""
    arr = np.asarray(value)
    if arr.dtype.kind == "U":
        return "".join(str(s) for s in arr.reshape(-1)).strip()
    if arr.dtype == object:
        return " ".join(_text(v) for v in arr.reshape(-1))
    if arr.dtype.kind in "fiu" and arr.size == 1:
        x = float(arr.reshape(-1)[0])
        return str(int(x)) if x.is_integer() else str(x)
    return str(value)


def _count(value, what: str, path: Path) -> int:
    x = _scalar(value, what, path)
    if x < 1 or not x.is_integer():
        raise DataFormatError(f"{path}: {what} is {x:g}; expected a positive integer.")
    return int(x)


class _Subject:
    """Per-participant references into the loaded file (no copies)."""

    __slots__ = ("age", "gender", "baseline", "stimulus", "scores")

    def __init__(self, age, gender, baseline, stimulus, scores):
        self.age, self.gender = age, gender
        self.baseline, self.stimulus, self.scores = baseline, stimulus, scores


#: DREAMER's declaration (name, modalities, threshold, ...).
_SPEC = DATASET_SPECS["dreamer"]


@fill_doc
class DREAMER(BaseDataset):
    """The DREAMER dataset, one :class:`~physiosync.datasets.Recording` per participant.

    The MAT-file is read once, here; :meth:`load_subject` then only wraps arrays that
    are already in memory (about 2 GB for the full release).

    Parameters
    ----------
    path : str | Path
        ``DREAMER.mat`` (MATLAB v5), or a folder holding it.
    %(verbose)s
        While the file is read, a summary line is logged at ``"info"`` and
        departures from the release's layout as warnings.

    Attributes
    ----------
    path : Path
        The file read.
    subjects : list of int
        Participant ids, ``1..N`` in the order of ``DREAMER.Data``.
    n_trials : int
        Film clips per participant (``noOfVideoSequences``; 18 in the release).
    sfreq : dict of str -> float
        Sampling rate of each modality (``eeg`` 128 Hz, ``ecg`` 256 Hz in the release).
    ch_names : dict of str -> tuple of str
        Channel names of each modality.
    demographics : pandas.DataFrame
        Columns ``age`` and ``gender`` (strings, as stored), indexed by subject.
    description : dict of str -> str
        The release's text fields (``Disclaimer``, ``Provider``, ``Version``,
        ``Acknowledgement``) that are present.

    Raises
    ------
    DataNotFoundError
        If the file (or a ``DREAMER.mat`` in the folder) does not exist.
    DataFormatError
        If the file is not a readable MATLAB v5 MAT-file (truncated, corrupt, v7.3/HDF5)
        or does not have the DREAMER layout: missing variable or fields, channel counts
        other than 14 EEG / 2 ECG, cell counts that disagree with ``noOfVideoSequences``,
        non-finite scores.

    Notes
    -----
    Every modality stays at its native rate: the ECG is the recorded 256 Hz ECG, never
    resampled and never replaced (the reference code feeds EEG channels in its place).
    Each trial's baseline is that clip's own 61 s neutral segment; the stimulus is the
    whole clip, so stimulus lengths differ between trials (but not between subjects).

    Examples
    --------
    >>> ds = DREAMER("DREAMER.mat")                           # doctest: +SKIP
    >>> rec = ds.load_subject(1)                              # doctest: +SKIP
    >>> rec.baseline("ecg", trial=0).shape                    # doctest: +SKIP
    (2, 15616)
    """

    name = _SPEC.display_name
    modalities = _SPEC.modalities
    format = "mat"
    root_description = _SPEC.root_description

    @verbose
    def __init__(self, path, *, verbose: bool | str | int | None = None):
        self.path = _resolve(path)
        top = _record(_load_mat(self.path), "variable 'DREAMER'", self.path, TOP_FIELDS)
        self._parse_top(top)
        logger.info("DREAMER at %s: %d subjects x %d trials", self.path, len(self._subjects),
                    self.n_trials)

    # ------------------------------------------------------------------ parsing
    def _parse_top(self, top: np.void) -> None:
        path = self.path
        _fields(top, REQUIRED_TOP_FIELDS, TOP_FIELDS, "struct 'DREAMER'", path)
        self.sfreq = {}
        for modality, field in (("eeg", "EEG_SamplingRate"), ("ecg", "ECG_SamplingRate")):
            rate = _scalar(top[field], f"DREAMER.{field}", path)
            if rate <= 0:
                raise DataFormatError(f"{path}: DREAMER.{field} is {rate:g}; expected a "
                                      f"positive rate ({DREAMER_SFREQ[modality]:g} Hz).")
            if rate != DREAMER_SFREQ[modality]:
                logger.warning("%s: DREAMER.%s is %g Hz, the release has %g Hz; using the "
                               "file's value.", path, field, rate, DREAMER_SFREQ[modality])
            self.sfreq[modality] = rate
        electrodes = top["EEG_Electrodes"]
        if isinstance(electrodes, np.ndarray) and electrodes.dtype == object:
            names = tuple(_text(e) for e in electrodes.reshape(-1))
        else:
            names = tuple(str(e).strip() for e in np.asarray(electrodes).reshape(-1))
        if len(names) != len(DREAMER_EEG):
            raise DataFormatError(
                f"{path}: DREAMER.EEG_Electrodes lists {len(names)} electrode(s); expected "
                f"the 14 Emotiv EPOC channels {', '.join(DREAMER_EEG)}.")
        if names != DREAMER_EEG:
            logger.warning("%s: EEG_Electrodes %s differ from the release's %s; using the "
                           "file's names.", path, list(names), list(DREAMER_EEG))
        self.ch_names = {"eeg": names, "ecg": DREAMER_ECG}
        self.n_trials = _count(top["noOfVideoSequences"], "DREAMER.noOfVideoSequences", path)
        n_subjects = _count(top["noOfSubjects"], "DREAMER.noOfSubjects", path)
        data = top["Data"]
        if isinstance(data, np.ndarray) and data.dtype.names is not None:
            cells = list(data.reshape(-1))  # tolerate a struct array instead of a cell
        else:
            cells = _cell(data, "DREAMER.Data", path)
        if len(cells) != n_subjects:
            raise DataFormatError(
                f"{path}: DREAMER.Data holds {len(cells)} participant(s) but "
                f"DREAMER.noOfSubjects is {n_subjects}; expected one Data cell per subject.")
        self.description = {f: _text(top[f]) for f in TOP_FIELDS[6:] if f in top.dtype.names}
        self._subjects = {s: self._parse_subject(s, cell) for s, cell in enumerate(cells, 1)}
        self.demographics = pd.DataFrame(
            {"age": [v.age for v in self._subjects.values()],
             "gender": [v.gender for v in self._subjects.values()]},
            index=pd.Index(list(self._subjects), name="subject"))

    def _parse_subject(self, s: int, cell) -> _Subject:
        path = self.path
        where = f"DREAMER.Data{{{s}}}"
        rec = _record(cell, where, path, SUBJECT_FIELDS)
        _fields(rec, SUBJECT_FIELDS, SUBJECT_FIELDS, where, path)
        n = self.n_trials
        baseline, stimulus = {}, {}
        for modality in self.modalities:
            field = MODALITY_FIELDS[modality]
            sig = _record(rec[field], f"{where}.{field}", path, SIGNAL_FIELDS)
            _fields(sig, SIGNAL_FIELDS, SIGNAL_FIELDS, f"{where}.{field}", path)
            n_ch = len(self.ch_names[modality])
            for part, out in (("baseline", baseline), ("stimuli", stimulus)):
                what = f"{where}.{field}.{part}"
                arrays = _cell(sig[part], what, path)
                if len(arrays) != n:
                    raise DataFormatError(
                        f"{path}: {what} holds {len(arrays)} cell(s) but "
                        f"noOfVideoSequences is {n}; expected one per film clip.")
                for k, arr in enumerate(arrays, 1):
                    _check_signal(arr, f"{what}{{{k}}}", n_ch, path)
                # time-major (samples x channels) in the file -> (channels, samples) views
                out[modality] = [arr.T for arr in arrays]
        scores = np.empty((n, len(SCORE_FIELDS)))
        for j, field in enumerate(SCORE_FIELDS.values()):
            value = np.asarray(rec[field])
            what = f"{where}.{field}"
            if value.dtype.kind not in "fiub":
                raise DataFormatError(f"{path}: {what} is {value.dtype}; expected numeric "
                                      "ratings (1-5).")
            if value.size != n:
                raise DataFormatError(
                    f"{path}: {what} holds {value.size} score(s) but noOfVideoSequences is "
                    f"{n}; expected a {n}x1 vector.")
            scores[:, j] = value.reshape(-1)
            bad = np.flatnonzero(~np.isfinite(scores[:, j]))
            if bad.size:
                raise DataFormatError(
                    f"{path}: {what} has non-finite score(s) for trial(s) "
                    f"{(bad + 1).tolist()} (1-based); expected SAM ratings 1-5.")
        off = first_off_scale(scores, *DREAMER_RATING_SCALE, integer=True)
        if off is not None:
            k, j, value = off
            field = list(SCORE_FIELDS.values())[j]
            raise DataFormatError(
                f"{path}: {where}.{field}{{{k + 1}}} (subject {s}, trial {k + 1}, 1-based) is "
                f"{value:g}; expected an integer SAM rating from {DREAMER_RATING_SCALE[0]:g} to "
                f"{DREAMER_RATING_SCALE[1]:g}.")
        return _Subject(_text(rec["Age"]), _text(rec["Gender"]), baseline, stimulus, scores)

    # ------------------------------------------------------------------- public
    @property
    def subjects(self) -> list[int]:
        """Participant ids present, ``1..N``."""
        return list(self._subjects)

    def _subject(self, subject) -> _Subject:
        s = _check_subject_id(subject, len(self._subjects), f"DREAMER ({self.path})")
        return self._subjects[s]

    def age(self, subject: int) -> str:
        """Age of *subject* as stored in the file (a string such as ``'22'``)."""
        return self._subject(subject).age

    def gender(self, subject: int) -> str:
        """Gender of *subject* as stored in the file (``'male'`` or ``'female'``)."""
        return self._subject(subject).gender

    def load_subject(self, subject: int) -> Recording:
        """One participant's EEG and ECG, cut into trials.

        Parameters
        ----------
        subject : int
            Participant id, ``1..N`` (N = 23 in the release).

        Returns
        -------
        recording : Recording
            Modalities ``eeg`` (14 channels, 128 Hz) and ``ecg`` (2 leads, 256 Hz), both
            in µV as stored; per trial the clip's own baseline and the whole clip, as
            ``(n_channels, n_samples)`` views of the loaded arrays. Ratings columns
            ``valence``, ``arousal``, ``dominance``, index = 0-based trial.

        Raises
        ------
        UnknownSubjectError
            If *subject* is not one of :attr:`subjects`.
        DataFormatError
            If a signal of this participant holds NaN or inf.
        """
        sub = self._subject(subject)
        s = int(subject)
        infos = {}
        for m in self.modalities:
            infos[m] = ModalityInfo.standard(m, self.sfreq[m], self.ch_names[m],
                                             **(DREAMER_EEG_SIGNAL if m == "eeg" else {}))
            for part, trials in (("baseline", sub.baseline[m]), ("stimuli", sub.stimulus[m])):
                for k, arr in enumerate(trials, 1):
                    check_finite(arr, f"DREAMER.Data{{{s}}}.{MODALITY_FIELDS[m]}.{part}{{{k}}}",
                                 self.path)
        ratings = pd.DataFrame(sub.scores, columns=list(RATING_COLUMNS))
        return Recording(s, dataset="DREAMER", source=self.path, modalities=infos,
                         baseline=sub.baseline, stimulus=sub.stimulus, ratings=ratings)

    def subject_file(self, subject: int) -> Path:
        """The file *subject* is read from (``DREAMER.mat``), after checking the id."""
        self._subject(subject)
        return self.path

    def source_files(self, subjects=None) -> list[Path]:
        """Files the given subjects (default: all) are read from: always ``[path]``."""
        for s in subjects or ():
            self._subject(s)
        return [self.path]

    def cache_identity(self) -> dict:
        """``{"dataset": "DREAMER", "format": None}``.

        There is one release, so no format is recorded: the key of the entries
        cached before :class:`~physiosync.datasets.base.BaseDataset` existed.
        """
        return {"dataset": self.name, "format": None}

    def __repr__(self) -> str:
        return (f"<DREAMER at {self.path}: {len(self)} subjects x {self.n_trials} trials | "
                f"eeg {len(self.ch_names['eeg'])} ch @ {self.sfreq['eeg']:g} Hz, "
                f"ecg {len(self.ch_names['ecg'])} ch @ {self.sfreq['ecg']:g} Hz>")


def _check_signal(arr, what: str, n_ch: int, path: Path) -> None:
    if not isinstance(arr, np.ndarray) or arr.dtype.kind not in "fiu":
        desc = (f"{arr.dtype} array" if isinstance(arr, np.ndarray) else type(arr).__name__)
        raise DataFormatError(f"{path}: {what} is a {desc}; expected a numeric "
                              f"(samples x {n_ch}) array.")
    if arr.ndim != 2 or arr.shape[1] != n_ch or arr.shape[0] < 1:
        raise DataFormatError(
            f"{path}: {what} has shape {arr.shape}; expected (samples x {n_ch}), i.e. "
            f"{n_ch} channel column(s), time-major.")

"""Reader of the AMIGOS dataset (Miranda-Correa et al., IEEE TAC 2018), preprocessed release.

The preprocessed release is one MATLAB v5 file per participant,
``Data_Preprocessed_PXX.mat`` (XX = 01..40), found either flat in one folder or, as the
per-participant zip files unpack, one folder per participant
(``Data_Preprocessed_P01/Data_Preprocessed_P01.mat``); both layouts are read. Each file
holds four 1x20 cells, one element per video, in video-number order:

* ``joined_data``: ``(n_samples x 17)``, time-major, at 128 Hz: 14 Emotiv EEG channels
  (AF3 .. AF4), ECG right, ECG left, GSR. Each trial starts with the 5 s (640 samples)
  before the clip. A missing trial is a ``0x0`` array; some trials hold NaN.
* ``labels_selfassessment``: ``1x12``: arousal, valence, dominance, liking, familiarity
  (continuous 1-9), then the seven basic-emotion checkboxes (0/1) neutral, disgust,
  happiness, surprise, anger, fear, sadness; ``1x0`` when missing.
* ``labels_ext_annotation``: ``(n_segments x 3)``: segment number, external valence and
  arousal of each 20 s segment (three annotators, centred on 0).
* ``VideoIDs``: the video's id as text (``'4'`` .. ``'138'`` for the 16 short videos,
  ``'N1'``, ``'P1'``, ``'B1'``, ``'U1'`` for the 4 long ones).

:class:`AMIGOS` reads one participant per :meth:`~AMIGOS.load_subject`;
:func:`physiosync.synthetic.make_amigos` writes synthetic files with the same layout.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from .._logging import logger, verbose
from ..dataset_specs import DATASET_SPECS
from ..exceptions import DataFormatError, DataNotFoundError
from ._matfile import load_mat
from .base import BaseDataset, ModalityInfo, Recording, first_off_scale
from .deap import _check_subject_id
from .dreamer import _text
from .._utils.docs import fill_doc

__all__ = ["AMIGOS"]

#: The 14 Emotiv EEG channels, in the column order of ``joined_data``.
AMIGOS_EEG = ("AF3", "F7", "F3", "FC5", "T7", "P7", "O1", "O2", "P8", "T8", "FC6", "F4",
              "F8", "AF4")
AMIGOS_ECG = ("ECG_right", "ECG_left")
AMIGOS_GSR = ("GSR",)
#: Modality -> (first, stop) column of ``joined_data``.
AMIGOS_COLUMNS = {"eeg": (0, 14), "ecg": (14, 16), "gsr": (16, 17)}
N_COLUMNS = 17
AMIGOS_SFREQ = 128.0
#: The 5 s before each clip that every trial starts with.
AMIGOS_BASELINE_S = 5.0
N_SUBJECTS = 40
#: Videos in the release's order (video-number order): 16 short, then 4 long.
AMIGOS_VIDEOS = ("4", "5", "9", "10", "13", "18", "19", "20", "23", "30", "31", "34", "36",
                 "58", "80", "138", "N1", "P1", "B1", "U1")
N_SHORT = 16
N_TRIALS = len(AMIGOS_VIDEOS)
#: Participants of the release without long-video data.
NO_LONG_VIDEOS = (8, 24, 28)
#: ``labels_selfassessment`` columns: the five 1-9 scales, in the file's order ...
SCALE_COLUMNS = ("arousal", "valence", "dominance", "liking", "familiarity")
#: ... then the basic-emotion checkboxes (0/1).
EMOTION_COLUMNS = ("neutral", "disgust", "happiness", "surprise", "anger", "fear",
                   "sadness")
#: Columns of :attr:`Recording.ratings`: the scales, target names first, then the boxes.
RATING_COLUMNS = ("valence", "arousal", "dominance", "liking", "familiarity") + EMOTION_COLUMNS
VARIABLES = ("joined_data", "labels_selfassessment", "labels_ext_annotation", "VideoIDs")
FILE_PATTERN = re.compile(r"^Data_Preprocessed_P(\d{2})\.mat$")
_LOOKS_LIKE = re.compile(r"data_preprocessed_p\d+.*\.mat", re.IGNORECASE)
_ORIGINAL = re.compile(r"data_original_p\d+\.mat", re.IGNORECASE)

#: What the release did to the signals (its readme, as quoted by the literature).
AMIGOS_EEG_SIGNAL = {"highpass": 4.0, "lowpass": 45.0, "average_reference": True,
                     "processing": "AMIGOS preprocessed release: down-sampled to 128 Hz, "
                                   "common average reference, band-passed 4-45 Hz"}
AMIGOS_ECG_SIGNAL = {"lowpass": 60.0, "processing": "AMIGOS preprocessed release: "
                                                    "down-sampled to 128 Hz, low-passed 60 Hz"}
AMIGOS_GSR_SIGNAL = {"lowpass": 60.0, "processing": "AMIGOS preprocessed release: "
                                                    "re-encoded to skin conductance, "
                                                    "down-sampled to 128 Hz, low-passed 60 Hz"}

#: AMIGOS's declaration (name, modalities, threshold, ...).
_SPEC = DATASET_SPECS["amigos"]
RATING_SCALE = _SPEC.rating_scale


def file_name(subject: int) -> str:
    """``Data_Preprocessed_PXX.mat`` of participant *subject*."""
    return f"Data_Preprocessed_P{int(subject):02d}.mat"


def _scan(root: Path) -> tuple[dict, dict, list, list]:
    """Participant files of *root* (flat) and of its folders (nested), by id; the names
    that look like participant files but are not named as the release names them; and
    the original release's files."""
    flat, nested, odd, original = {}, {}, [], []
    for p in sorted(root.iterdir()):
        places = [(p, flat)] if p.is_file() else []
        if p.is_dir():
            places = [(q, nested) for q in sorted(p.iterdir()) if q.is_file()]
        for q, found in places:
            m = FILE_PATTERN.match(q.name)
            if m and 1 <= int(m.group(1)) <= N_SUBJECTS:
                s = int(m.group(1))
                if s in found or s in (nested if found is flat else flat):
                    other = found.get(s) or (nested if found is flat else flat)[s]
                    raise DataFormatError(
                        f"AMIGOS at {root}: participant {s} has two files, {other} and {q}; "
                        "keep one of them.")
                found[s] = q
            elif _LOOKS_LIKE.fullmatch(q.name):
                odd.append(str(q.relative_to(root)))
            elif _ORIGINAL.fullmatch(q.name):
                original.append(str(q.relative_to(root)))
    return flat, nested, odd, original


def _cells(value, name: str, path: Path) -> list:
    """The elements of a 1xN cell variable, in order."""
    if not (isinstance(value, np.ndarray) and value.dtype == object) or (
            value.ndim == 2 and min(value.shape) > 1) or value.ndim > 2:
        desc = (f"{value.dtype} array of shape {value.shape}" if isinstance(value, np.ndarray)
                else type(value).__name__)
        raise DataFormatError(f"{path}: {name} is a {desc}; expected a 1x{N_TRIALS} cell "
                              "array (one element per video).")
    cells = list(value.reshape(-1))
    if not 1 <= len(cells) <= N_TRIALS:
        raise DataFormatError(f"{path}: {name} holds {len(cells)} cells; expected "
                              f"{N_TRIALS} (one per video) or fewer.")
    return cells


def _numeric(value, what: str, path: Path) -> np.ndarray:
    if not isinstance(value, np.ndarray) or value.dtype.kind not in "fiub":
        desc = (f"{value.dtype} array" if isinstance(value, np.ndarray)
                else type(value).__name__)
        raise DataFormatError(f"{path}: {what} is a {desc}; expected a numeric array.")
    return value


def _trial_ids(path: Path, cells) -> list:
    """The trial id of each cell: its video's position in :data:`AMIGOS_VIDEOS`.

    In the release the cells are already in that order, so the id is the position. A
    file whose ``VideoIDs`` are the release's videos in another order is put back in
    video order (with a warning); one with unknown or repeated ids keeps the positions.
    """
    ids = [_text(c) if isinstance(c, np.ndarray) and c.size else "" for c in cells]
    known = [AMIGOS_VIDEOS.index(v) if v in AMIGOS_VIDEOS else None for v in ids]
    named = [k for k in known if k is not None]
    if all(k is not None or not v for k, v in zip(known, ids)) and \
            len(set(named)) == len(named):
        free = iter(k for k in range(N_TRIALS) if k not in set(named))
        out = [k if k is not None else next(free) for k in known]
        if out != list(range(len(out))):
            logger.warning("%s: VideoIDs %s are not in video-number order; trials are put "
                           "back in that order (trial id = the video's position in %s).",
                           path, ids, ", ".join(AMIGOS_VIDEOS))
        return out
    logger.warning("%s: VideoIDs %s are not the release's videos (%s); trial ids are the "
                   "cell positions, so they may not name the same video for every "
                   "participant.", path, ids, ", ".join(AMIGOS_VIDEOS))
    return list(range(len(cells)))


@fill_doc
class AMIGOS(BaseDataset):
    """The AMIGOS dataset (preprocessed release), one recording per participant.

    Parameters
    ----------
    root : str | Path
        A folder holding ``Data_Preprocessed_PXX.mat`` files (flat), or one folder per
        participant holding its file (``Data_Preprocessed_P01/Data_Preprocessed_P01.mat``,
        as the release's zip files unpack), or a mix of both; the layout found is
        logged. Files are matched by the release's names; a file that only looks like
        one (``data_preprocessed_p1.mat``) is skipped with a warning naming it.
    %(verbose)s

    Attributes
    ----------
    root : Path
        The folder read.
    subjects : list of int
        Sorted ids of the participants whose files are present (1..40).
    layout : str
        ``"nested"`` (one folder per participant), ``"flat"`` or ``"mixed"``.

    Notes
    -----
    Trial ids are the videos' positions in video-number order, 0..19 (0-15 the 16 short
    videos, 16-19 the long ones N1, P1, B1, U1), the same video for every participant;
    :meth:`video_ids` gives each trial's video. The first 640 samples (5 s) of a
    trial are its baseline, the rest the clip. Trials that are empty or hold NaN or inf,
    or that lack a self-assessment, are skipped and named in one warning line each;
    a participant without long-video data (P08, P24 and P28 in the release) gets one
    line for its four empty long videos. The ratings are the five 1-9 scales (a trial
    is "high" at 5 or more, the scale midpoint, as for DEAP) and the seven 0/1
    basic-emotion checkboxes; :meth:`external_annotations` gives the annotators'
    ratings of each 20 s segment.

    Examples
    --------
    >>> ds = AMIGOS("AMIGOS/Data_Preprocessed")               # doctest: +SKIP
    >>> rec = ds.load_subject(1)                               # doctest: +SKIP
    >>> rec.baseline("eeg", trial=0).shape                     # doctest: +SKIP
    (14, 640)
    """

    name = _SPEC.display_name
    modalities = _SPEC.modalities
    format = "mat"
    root_description = _SPEC.root_description

    @verbose
    def __init__(self, root, *, verbose: bool | str | int | None = None):
        root = Path(root).expanduser()
        if not root.exists():
            raise DataNotFoundError(f"AMIGOS folder {root} does not exist.")
        if not root.is_dir():
            raise DataNotFoundError(f"AMIGOS root {root} is not a folder; expected a folder "
                                    "of Data_Preprocessed_PXX.mat files or of "
                                    "Data_Preprocessed_PXX/ folders.")
        flat, nested, odd, original = _scan(root)
        if odd:
            shown = ", ".join(odd[:10]) + (f" and {len(odd) - 10} more" if len(odd) > 10
                                           else "")
            logger.warning("AMIGOS at %s: skipped %d file(s) not named "
                           "Data_Preprocessed_P01.mat..P40.mat as in the release: %s; rename "
                           "them to read them.", root, len(odd), shown)
        if not flat and not nested:
            raise DataNotFoundError(
                f"No AMIGOS participant files (Data_Preprocessed_PXX.mat, XX = 01..40) in "
                f"{root} or in its folders; expected the preprocessed release, flat or one "
                "folder per participant (Data_Preprocessed_P01/Data_Preprocessed_P01.mat)"
                + (f"; the {len(original)} Data_Original_PXX.mat file(s) found there are "
                   "the original recordings, which are not read." if original else "."))
        self.root = root
        self._files = dict(sorted({**flat, **nested}.items()))
        self.layout = "mixed" if flat and nested else ("flat" if flat else "nested")
        described = {"flat": "flat (the files in one folder)",
                     "nested": "nested (one folder per participant)",
                     "mixed": f"mixed ({len(flat)} flat, {len(nested)} in their own folder)"}
        logger.info("AMIGOS at %s: %d participants, %s layout", root, len(self._files),
                    described[self.layout])

    # ------------------------------------------------------------------- public
    @property
    def subjects(self) -> list[int]:
        """Sorted ids of the participants present."""
        return list(self._files)

    def subject_file(self, subject: int) -> Path:
        """Path of the file of *subject*, with a clear error if it is unknown or missing."""
        s = _check_subject_id(subject, N_SUBJECTS, "AMIGOS")
        if s not in self._files:
            raise DataNotFoundError(
                f"AMIGOS participant {s}: {file_name(s)} is missing from {self.root} "
                f"(present: {self.subjects}).")
        return self._files[s]

    def source_files(self, subjects=None) -> list[Path]:
        """Files that the given subjects (default: all) are read from."""
        return [self.subject_file(s) for s in (subjects or self.subjects)]

    def _read(self, subject: int) -> tuple[Path, dict]:
        """The file of *subject* and all its variables (the two signal cells required)."""
        path = self.subject_file(subject)
        mat = load_mat(path, None, release="the AMIGOS preprocessed release",
                       resave=f"save('{path.name}', 'joined_data', 'labels_selfassessment', "
                              "'labels_ext_annotation', 'VideoIDs', '-v7')")
        for name in VARIABLES[:2]:
            if name not in mat:
                raise DataFormatError(
                    f"{path}: no variable {name!r} (found {sorted(mat) or 'none'}); expected "
                    f"the AMIGOS preprocessed release's {', '.join(VARIABLES)}. The file may "
                    "be truncated, or be the original release (Data_Original_PXX.mat), which "
                    "is not read.")
        return path, mat

    @verbose
    def load_subject(self, subject: int, *,
                     verbose: bool | str | int | None = None) -> Recording:
        """Read one participant.

        Parameters
        ----------
        subject : int
            Participant id, 1..40.
        %(verbose)s
            Skipped trials are named in one warning line each.

        Returns
        -------
        recording : Recording
            Modalities ``eeg`` (14 channels), ``ecg`` (right, left) and ``gsr``, all at
            128 Hz, as ``(n_channels, n_samples)`` views of the file's arrays: EEG and
            ECG in µV, GSR as skin conductance in µS (the units are not stated by the
            release; see docs/data.md). Ratings columns ``RATING_COLUMNS``, index =
            trial id (0..19).

        Raises
        ------
        DataFormatError
            If the file is not the release's MAT-file (missing variables, cells of the
            wrong shape, 17 columns expected) or a rating lies off the 1-9 scale or a
            checkbox is not 0 or 1.
        """
        path, mat = self._read(subject)
        s = int(subject)
        data = _cells(mat["joined_data"], "joined_data", path)
        labels = _cells(mat["labels_selfassessment"], "labels_selfassessment", path)
        if len(labels) != len(data):
            raise DataFormatError(f"{path}: labels_selfassessment holds {len(labels)} cells "
                                  f"but joined_data {len(data)}; expected one per video.")
        ids = _trial_ids(path, self._video_cells(mat, path, len(data)))
        n_base = int(round(AMIGOS_BASELINE_S * AMIGOS_SFREQ))
        kept, reasons = [], {}
        for k, (arr, lab) in enumerate(zip(data, labels)):
            why = _trial_problem(arr, lab, n_base, f"joined_data{{{k + 1}}}", path)
            if why:
                reasons[ids[k]] = why
            else:
                kept.append((ids[k], arr, lab))
        self._report_skipped(s, path, reasons)
        if not kept:
            raise DataFormatError(f"{path}: participant {s} has no usable trial (every "
                                  "trial is empty, holds NaN or lacks its ratings).")
        kept.sort(key=lambda item: item[0])
        values = np.array([np.asarray(lab, dtype=float).reshape(-1) for _, _, lab in kept])
        _check_ratings(values, [t for t, _, _ in kept], s, path)
        order = [SCALE_COLUMNS.index(c) for c in RATING_COLUMNS[:5]] + list(range(5, 12))
        ratings = pd.DataFrame(values[:, order], columns=list(RATING_COLUMNS),
                               index=[t for t, _, _ in kept])
        signals = {"eeg": AMIGOS_EEG_SIGNAL, "ecg": AMIGOS_ECG_SIGNAL, "gsr": AMIGOS_GSR_SIGNAL}
        names = {"eeg": AMIGOS_EEG, "ecg": AMIGOS_ECG, "gsr": AMIGOS_GSR}
        infos, baseline, stimulus = {}, {}, {}
        for m, (lo, hi) in AMIGOS_COLUMNS.items():
            if m == "gsr":  # skin conductance, not the DEAP release's resistance
                infos[m] = ModalityInfo("gsr", AMIGOS_SFREQ, AMIGOS_GSR, "gsr", "µS", 1e-6,
                                        **signals[m])
            else:
                infos[m] = ModalityInfo.standard(m, AMIGOS_SFREQ, names[m], **signals[m])
            # time-major (samples x columns) in the file -> (channels, samples) views
            baseline[m] = [arr[:n_base, lo:hi].T for _, arr, _ in kept]
            stimulus[m] = [arr[n_base:, lo:hi].T for _, arr, _ in kept]
        return Recording(s, dataset=self.name, source=path, modalities=infos,
                         baseline=baseline, stimulus=stimulus, ratings=ratings)

    @staticmethod
    def _video_cells(mat: dict, path: Path, n: int) -> list:
        """The ``VideoIDs`` cells of the file (empty ones if the variable is absent)."""
        if "VideoIDs" not in mat:
            logger.warning("%s: no VideoIDs; trial ids are the cell positions.", path)
            return [np.zeros(0)] * n
        cells = _cells(mat["VideoIDs"], "VideoIDs", path)
        if len(cells) != n:
            raise DataFormatError(f"{path}: VideoIDs holds {len(cells)} cells but "
                                  f"joined_data {n}; expected one per video.")
        return cells

    @staticmethod
    def _report_skipped(s: int, path: Path, reasons: dict) -> None:
        long_ids = list(range(N_SHORT, N_TRIALS))
        if all(reasons.get(t) == "empty" for t in long_ids):
            logger.warning("AMIGOS participant %d (%s): no long-video data (trials %d-%d, "
                           "videos %s, are empty, as for P08, P24 and P28 in the release); "
                           "reading its short videos only.", s, path.name, N_SHORT,
                           N_TRIALS - 1, ", ".join(AMIGOS_VIDEOS[N_SHORT:]))
            reasons = {t: r for t, r in reasons.items() if t not in long_ids}
        for t, why in sorted(reasons.items()):
            video = AMIGOS_VIDEOS[t] if t < N_TRIALS else "?"
            logger.warning("AMIGOS participant %d (%s): trial %d (video %s) skipped: %s.",
                           s, path.name, t, video, why)

    def video_ids(self, subject: int) -> pd.Series:
        """The video of each trial of *subject*, as the file's ``VideoIDs`` name it.

        Returns
        -------
        videos : pandas.Series of str
            Indexed by trial id (every cell of the file, skipped trials included).
        """
        path, mat = self._read(subject)
        data = _cells(mat["joined_data"], "joined_data", path)
        cells = self._video_cells(mat, path, len(data))
        ids = _trial_ids(path, cells)
        texts = [_text(c) if isinstance(c, np.ndarray) and c.size else "" for c in cells]
        return pd.Series(texts, index=pd.Index(ids, name="trial"), name="video").sort_index()

    @verbose
    def external_annotations(self, subject: int, *,
                             verbose: bool | str | int | None = None) -> pd.DataFrame:
        """The external annotators' valence and arousal of each 20 s segment of *subject*.

        The release gives, per trial, one row per 20 s segment: the segment number and
        the annotators' valence and arousal (centred on 0; the first segment covers the
        5 s baseline and the first 15 s of the clip).

        Parameters
        ----------
        subject : int
            The participant.
        %(verbose)s

        Returns
        -------
        annotations : pandas.DataFrame
            Columns ``trial``, ``segment``, ``valence``, ``arousal``, one row per
            segment of every trial that has annotations (skipped trials included);
            empty if the file has no ``labels_ext_annotation``.

        Raises
        ------
        DataFormatError
            If a trial's annotation is not an ``(n_segments x 3)`` numeric array.
        """
        path, mat = self._read(subject)
        data = _cells(mat["joined_data"], "joined_data", path)
        ids = _trial_ids(path, self._video_cells(mat, path, len(data)))
        columns = ["trial", "segment", "valence", "arousal"]
        value = mat.get("labels_ext_annotation")
        if value is None:
            logger.warning("%s: no labels_ext_annotation.", path)
            return pd.DataFrame(columns=columns)
        cells = _cells(value, "labels_ext_annotation", path)
        if len(cells) != len(ids):
            raise DataFormatError(f"{path}: labels_ext_annotation holds {len(cells)} cells "
                                  f"but joined_data {len(ids)}; expected one per video.")
        rows = []
        for k, cell in enumerate(cells):
            arr = _numeric(cell, f"labels_ext_annotation{{{k + 1}}}", path)
            if arr.size == 0:
                continue
            if arr.ndim != 2 or arr.shape[1] != 3:
                raise DataFormatError(
                    f"{path}: labels_ext_annotation{{{k + 1}}} has shape {arr.shape}; "
                    "expected (segments x 3): segment, valence, arousal.")
            rows += [(ids[k], *row) for row in np.asarray(arr, dtype=float).tolist()]
        out = pd.DataFrame(rows, columns=columns)
        out["trial"] = out["trial"].astype(int)
        return out.sort_values(["trial", "segment"], kind="stable").reset_index(drop=True)

    def __repr__(self) -> str:
        return (f"<AMIGOS at {self.root} ({self.layout}): {len(self)} participants | eeg 14 "
                f"ch, ecg 2 ch, gsr 1 ch @ {AMIGOS_SFREQ:g} Hz>")


def _trial_problem(arr, lab, n_base: int, what: str, path: Path) -> str | None:
    """Why a trial is skipped (``"empty"``, ...), None if it is read; refuses a trial
    whose arrays do not have the release's layout."""
    arr = _numeric(arr, what, path)
    lab = _numeric(lab, what.replace("joined_data", "labels_selfassessment"), path)
    if arr.size == 0:
        return "empty"
    if arr.ndim != 2 or arr.shape[1] != N_COLUMNS:
        raise DataFormatError(
            f"{path}: {what} has shape {arr.shape}; expected (samples x {N_COLUMNS}): 14 "
            "EEG, ECG right, ECG left, GSR, time-major.")
    if arr.shape[0] <= n_base:
        return (f"{arr.shape[0]} samples, no longer than the {n_base}-sample (5 s) "
                "baseline")
    with np.errstate(all="ignore"):
        total = np.add.reduce(arr, axis=None, dtype=np.float64)
    if not np.isfinite(total):
        bad = int(np.count_nonzero(~np.isfinite(arr)))
        if bad:
            return f"{bad} of {arr.size} values are NaN or inf"
    if lab.size == 0:
        return "no self-assessment (labels_selfassessment is empty)"
    if lab.size != len(SCALE_COLUMNS) + len(EMOTION_COLUMNS):
        raise DataFormatError(
            f"{path}: {what.replace('joined_data', 'labels_selfassessment')} holds "
            f"{lab.size} values; expected 12: arousal, valence, dominance, liking, "
            "familiarity, then 7 basic-emotion checkboxes.")
    if not np.isfinite(np.asarray(lab, dtype=float)).all():
        return "its self-assessment holds NaN"
    return None


def _check_ratings(values: np.ndarray, trials: list, subject: int, path: Path) -> None:
    """Refuse a scale off 1-9 or a checkbox other than 0/1 (file order of columns)."""
    off = first_off_scale(values[:, :5], *RATING_SCALE)
    if off is not None:
        row, col, value = off
        raise DataFormatError(
            f"{path}: participant {subject}, trial {trials[row]}: {SCALE_COLUMNS[col]} "
            f"rating {value:g} is outside the AMIGOS scale {RATING_SCALE[0]:g}-"
            f"{RATING_SCALE[1]:g}; expected self-assessments from 1 to 9 in "
            "labels_selfassessment.")
    boxes = values[:, 5:]
    bad = np.argwhere((boxes != 0) & (boxes != 1))
    if bad.size:
        row, col = (int(i) for i in bad[0])
        raise DataFormatError(
            f"{path}: participant {subject}, trial {trials[row]}: the "
            f"{EMOTION_COLUMNS[col]} checkbox is {boxes[row, col]:g}; expected 0 or 1.")

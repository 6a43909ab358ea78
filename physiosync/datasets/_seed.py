"""What the SEED and SEED-IV readers share (BCMI lab, Shanghai Jiao Tong University).

Both releases store each session of a subject as one MATLAB v5 file named
``<subject>_<YYYYMMDD>.mat`` whose variables are the film clips, ``<initials>_eeg<k>``
(``k`` = 1..15 for SEED, 1..24 for SEED-IV), each a ``(62, n_k)`` array of EEG in µV,
channels x samples, in the 62-channel order of the release's ``channel-order.xlsx``.

Two mistakes of public loaders are avoided here: trials are matched by the integer
``k`` of their variable name (sorting the names as strings puts ``eeg10`` before
``eeg2`` and misaligns the labels), and files are ordered by the integers in their
names (sorted as strings, ``10_...`` comes before ``2_...``).

Neither release holds a pre-stimulus baseline: the ``.mat`` trials are the clips only.
A :class:`~physiosync.datasets.Recording` of either has a zero-length baseline per
trial, and preparation refuses a baseline removal or ``norm="subject"`` on it
(``baseline="none"``; a configuration that leaves ``data.baseline`` unset gets it).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from .._logging import logger
from ..dataset_specs import dataset_spec
from ..exceptions import DataFormatError, DataNotFoundError, UnknownSubjectError
from ._matfile import load_mat, mat_variables
from .base import BaseDataset, ModalityInfo, Recording, check_finite

__all__ = ["SEED_EEG", "SEED_EEG_RELEASE", "canonical_channel", "session_files",
           "SessionDataset", "ranges"]

#: The 62 EEG channels of SEED and SEED-IV as the releases name them
#: (``channel-order.xlsx``), in the order of the array rows.
SEED_EEG_RELEASE = (
    "FP1", "FPZ", "FP2", "AF3", "AF4", "F7", "F5", "F3", "F1", "FZ", "F2", "F4", "F6", "F8",
    "FT7", "FC5", "FC3", "FC1", "FCZ", "FC2", "FC4", "FC6", "FT8", "T7", "C5", "C3", "C1",
    "CZ", "C2", "C4", "C6", "T8", "TP7", "CP5", "CP3", "CP1", "CPZ", "CP2", "CP4", "CP6",
    "TP8", "P7", "P5", "P3", "P1", "PZ", "P2", "P4", "P6", "P8", "PO7", "PO5", "PO3", "POZ",
    "PO4", "PO6", "PO8", "CB1", "O1", "OZ", "O2", "CB2",
)


def canonical_channel(name: str) -> str:
    """The 10-20 spelling of a channel name written in capitals (``"FPZ"`` -> ``"Fpz"``,
    ``"FCZ"`` -> ``"FCz"``), as MNE's standard montages spell them."""
    name = name.strip().upper()
    if name.startswith("FP"):
        name = "Fp" + name[2:]
    if name.endswith("Z"):
        name = name[:-1] + "z"
    return name


#: The same channels in 10-20 spelling, as :class:`Recording` names them.
SEED_EEG = tuple(canonical_channel(c) for c in SEED_EEG_RELEASE)
#: The number of EEG samples per second of the released ``.mat`` trials.
SEED_SFREQ = 200.0
#: Session files: ``<subject>_<YYYYMMDD>.mat``.
_FILE = re.compile(r"^(\d{1,4})_(\d{8})\.mat$", re.IGNORECASE)
#: Trial variables: ``<initials>_eeg<k>`` (the releases), or ``eeg<k>`` / ``eeg_<k>``
#: (the wording of the SEED web page).
_VARIABLE = re.compile(r"^(?:([A-Za-z][A-Za-z0-9]*)_)?eeg_?(\d{1,4})$")
#: A trial longer than this (in samples) is refused: the longest clip lasts 4.5 min,
#: i.e. 54,000 samples at 200 Hz and 270,000 at 1000 Hz.
MAX_TRIAL_SAMPLES = 2_000_000


def ranges(values) -> str:
    """``[1, 2, 3, 7]`` -> ``"1-3, 7"``."""
    values = sorted(int(v) for v in values)
    out, start = [], None
    for i, v in enumerate(values):
        if start is None:
            start = v
        if i + 1 == len(values) or values[i + 1] != v + 1:
            out.append(f"{start}" if start == v else f"{start}-{v}")
            start = None
    return ", ".join(out)


def session_files(folder: Path) -> dict[int, list[tuple[str, Path]]]:
    """``{subject: [(date, path), ...]}`` of the ``<subject>_<YYYYMMDD>.mat`` files in
    *folder*, subjects and dates ordered as integers (never as strings)."""
    found: dict[int, list[tuple[str, Path]]] = {}
    for p in folder.iterdir():
        m = _FILE.match(p.name)
        if m and p.is_file():
            found.setdefault(int(m.group(1)), []).append((m.group(2), p))
    return {s: sorted(found[s], key=lambda dp: int(dp[0])) for s in sorted(found)}


_NUMERIC_CLASSES = frozenset(("double", "single", "int8", "int16", "int32", "int64", "uint8",
                              "uint16", "uint32", "uint64"))


def _match_clips(entries, path: Path, n_clips: int, release: str) -> tuple[dict, str]:
    """``({k: name}, naming)`` of the clip variables among *entries*, ``(name, shape,
    numeric)`` triples in file order, matched by the integer ``k`` of each name.

    Raises
    ------
    DataFormatError
        If a clip variable is not a numeric 62-row matrix, a clip number repeats or lies
        outside ``1..n_clips``, or there is no clip variable.
    """
    by_clip: dict[int, str] = {}
    prefixes = set()
    names = []
    for name, shape, numeric in entries:
        names.append(name)
        m = _VARIABLE.match(name)
        if not m:
            continue
        k = int(m.group(2))
        if not 1 <= k <= n_clips:
            raise DataFormatError(f"{path}: variable {name!r} names clip {k}; {release} has "
                                  f"clips 1..{n_clips}.")
        if k in by_clip:
            raise DataFormatError(f"{path}: variables {by_clip[k]!r} and {name!r} both hold "
                                  f"clip {k}; expected one variable per clip.")
        if len(shape) != 2 or shape[0] != len(SEED_EEG) or not 1 <= shape[1] <= MAX_TRIAL_SAMPLES:
            raise DataFormatError(
                f"{path}: variable {name!r} has shape {tuple(shape)}; expected (62, n_samples) "
                f"EEG, channels x samples, with at most {MAX_TRIAL_SAMPLES} samples.")
        if not numeric:
            raise DataFormatError(f"{path}: variable {name!r} is not real-valued numeric data; "
                                  "expected a numeric (62, n_samples) matrix.")
        by_clip[k] = name
        prefixes.add(m.group(1))
    if not by_clip:
        raise DataFormatError(
            f"{path}: no clip variable <initials>_eeg<k> (found {names[:6] or 'none'}"
            f"{' ...' if len(names) > 6 else ''}); expected the {release} layout.")
    naming = ("eeg<k> without initials" if prefixes == {None}
              else "<initials>_eeg<k> (" + ", ".join(sorted(p for p in prefixes if p)) + ")")
    return dict(sorted(by_clip.items())), naming


def clip_lengths(path: Path, n_clips: int, release: str) -> dict[int, int]:
    """``{k: n_samples}`` of the clips of one session file, from its variable list
    (:func:`~._matfile.mat_variables`: no data read)."""
    variables = mat_variables(path, release=release, resave=f"save('{path.name}', '-v7')")
    names, _ = _match_clips(((n, s, c in _NUMERIC_CLASSES) for n, s, c in variables), path,
                            n_clips, release)
    shapes = {n: s for n, s, _ in variables}
    return {k: int(shapes[n][1]) for k, n in names.items()}


def read_session(path: Path, n_clips: int, release: str) -> tuple[dict[int, np.ndarray], str]:
    """The clips of one session file, ``{k: (62, n_k) array}`` in clip order (matched by
    the integer ``k`` of each variable name), and how the variables were named."""
    data = load_mat(path, release=release, resave=f"save('{path.name}', '-v7')")
    entries = ((name, np.shape(v) if isinstance(v, np.ndarray) else (),
                isinstance(v, np.ndarray) and v.dtype.kind in "fiu")
               for name, v in data.items())
    names, naming = _match_clips(entries, path, n_clips, release)
    out = {}
    for k, name in names.items():
        check_finite(data[name], f"variable {name!r}", path)
        out[k] = data[name]
    return out, naming


class SessionDataset(BaseDataset):
    """A release of ``<subject>_<YYYYMMDD>.mat`` session files of film clips (SEED, SEED-IV).

    Subclasses find the files (``_files``: ``{subject: {session: path}}``) and the
    labels (``_labels``: ``{session: codes of clips 1..n}``), and set the class
    attributes below; :meth:`load_subject` is shared.

    Attributes
    ----------
    n_clips : int
        Clips per session (15 for SEED, 24 for SEED-IV).
    shared_clips : bool
        Whether every session shows the same clips (SEED): the ratings then get a
        ``stimulus`` column with the clip's 0-based number.
    trim_extra_sample : bool
        Whether a trial of ``sfreq * d + 1`` samples loses its last sample (SEED).
    """

    modalities = ("eeg",)
    format = "mat"
    n_clips = 0
    shared_clips = False
    trim_extra_sample = False
    release = ""
    signal: dict = {}

    def _init_files(self, files: dict, labels: dict) -> None:
        spec = dataset_spec(self.name)
        self.sessions = spec.sessions
        self.classes = spec.classes["emotion"]
        self._files = {s: {k: files[s][k] for k in self.sessions if k in files[s]}
                       for s in sorted(files) if files[s]}
        self._labels = labels
        if not self._files:
            raise DataNotFoundError(f"{self.root}: no <subject>_<YYYYMMDD>.mat session file "
                                    f"found; expected {spec.layout}.")
        gaps = sorted(set(range(1, max(self._files) + 1)) - set(self._files))
        if gaps:
            logger.warning("%s: subject(s) %s absent (no session file); reading the %d others.",
                           self.root, ranges(gaps), len(self._files))
        for s, by_session in self._files.items():
            missing = [k for k in self.sessions if k not in by_session]
            if missing:
                logger.warning("%s subject %d: session(s) %s absent; reading session(s) %s.",
                               self.name, s, ", ".join(missing), ", ".join(by_session))

    # ------------------------------------------------------------------- public
    @property
    def subjects(self) -> list[int]:
        """Ids of the subjects with at least one session file, in increasing order."""
        return list(self._files)

    def _check(self, subject) -> int:
        try:
            s = int(subject)
            if s != subject:
                raise ValueError
        except (TypeError, ValueError):
            raise UnknownSubjectError(f"{self.name} subject ids are integers, got "
                                      f"{subject!r}.") from None
        if s not in self._files:
            raise UnknownSubjectError(f"{self.name} at {self.root} has no subject {s}; "
                                      f"subjects present: {ranges(self._files)}.")
        return s

    def session_paths(self, subject: int) -> dict[str, Path]:
        """``{session: file}`` of *subject*, sessions in order."""
        return dict(self._files[self._check(subject)])

    def subject_file(self, subject: int) -> Path:
        """The file of *subject*'s first session present (a subject spans several files,
        :meth:`session_paths`)."""
        return next(iter(self.session_paths(subject).values()))

    def source_files(self, subjects=None) -> list[Path]:
        """The session files of *subjects* (default: all), then the label file(s)."""
        subjects = self.subjects if subjects is None else subjects
        files = [p for s in subjects for p in self.session_paths(s).values()]
        return files + list(self._label_files)

    def load_subject(self, subject: int) -> Recording:
        """Every session of one subject, one trial per clip.

        Parameters
        ----------
        subject : int
            One of ``subjects``.

        Returns
        -------
        recording : Recording
            Modality ``eeg`` (62 channels, µV as stored). Trials are numbered across
            the sessions, session-major: trial ``(i - 1) * n_clips + k - 1`` is clip
            ``k`` of session ``i``, whichever sessions are present. Baselines have zero
            length (the release holds none). Ratings column ``emotion`` (class codes,
            ``classes``), and for SEED ``stimulus`` (the clip, 0-based).

        Raises
        ------
        UnknownSubjectError
            If *subject* has no session file.
        DataFormatError
            If a session file is damaged or does not have the release's layout.
        """
        s = self._check(subject)
        stimulus, trial_ids, sessions, emotion, clips = [], [], [], [], []
        for session, path in self._files[s].items():
            first = self.sessions.index(session) * self.n_clips
            trials, naming = read_session(path, self.n_clips, self.release)
            logger.debug("%s: clips named %s", path, naming)
            absent = sorted(set(range(1, self.n_clips + 1)) - set(trials))
            if absent:
                logger.warning("%s: clip(s) %s absent; reading the %d others.", path,
                               ranges(absent), len(trials))
            codes = self._labels[session]
            for k, arr in trials.items():
                stimulus.append(self._trim(arr))
                trial_ids.append(first + k - 1)
                sessions.append(session)
                emotion.append(int(codes[k - 1]))
                clips.append(k - 1)
        ratings = pd.DataFrame({"emotion": emotion}, index=trial_ids)
        if self.shared_clips:
            ratings["stimulus"] = clips
        info = ModalityInfo.standard("eeg", self.sfreq, SEED_EEG, **self.signal)
        empty = np.zeros((len(SEED_EEG), 0), dtype=np.float64)
        return Recording(s, dataset=self.name, source=self._files[s][sessions[0]],
                         modalities={"eeg": info}, baseline={"eeg": [empty] * len(stimulus)},
                         stimulus={"eeg": stimulus}, ratings=ratings, sessions=sessions)

    def _trim(self, arr: np.ndarray) -> np.ndarray:
        """Drop the extra last sample of a ``sfreq * d + 1``-sample clip (a view)."""
        rate = int(round(self.sfreq))
        if self.trim_extra_sample and arr.shape[1] > rate and arr.shape[1] % rate == 1:
            return arr[:, :-1]
        return arr

    def __repr__(self) -> str:
        n_sessions = sum(len(v) for v in self._files.values())
        return (f"<{self.name} at {self.root}: {len(self)} subjects, {n_sessions} sessions x "
                f"{self.n_clips} clips | eeg {len(SEED_EEG)} ch @ {self.sfreq:g} Hz>")

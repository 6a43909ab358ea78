"""Reader of the SEED dataset (Zheng & Lu, IEEE TAMD 2015), its preprocessed EEG.

The release's ``SEED_EEG/Preprocessed_EEG/`` folder holds, for each of the 15 subjects,
one MATLAB v5 file per session, ``<subject>_<YYYYMMDD>.mat`` (three sessions, on three
dates), and ``label.mat``:

* each session file holds 15 variables ``<initials>_eeg1 .. <initials>_eeg15`` (``djc``
  for subject 1, ``jl`` for subject 2, ...), one per film clip in the order shown: a
  ``(62, n_k)`` float64 array, channels x samples, of EEG in µV at 200 Hz, down-sampled
  and band-passed 0-75 Hz by the release. A clip of ``d_k`` seconds has
  ``n_k = 200 d_k + 1`` samples; the clips last 185-265 s, the same in every session;
* ``label.mat`` holds ``label``, ``(1, 15)``: the emotion of each clip, ``1`` positive,
  ``0`` neutral, ``-1`` negative, the same 15 clips in the same order in every session.

:class:`SEED` reads them into one :class:`~physiosync.datasets.Recording` per subject
with all three sessions; :func:`physiosync.synthetic.make_seed` writes a synthetic
copy with the same layout.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .._logging import logger, verbose
from .._utils.docs import fill_doc
from ..dataset_specs import DATASET_SPECS
from ..exceptions import DataFormatError, DataNotFoundError
from ._matfile import load_mat
from ._seed import SEED_SFREQ, SessionDataset, ranges, session_files

__all__ = ["SEED", "SEED_LABELS", "SEED_CLIP_SECONDS", "SEED_DATES"]

_SPEC = DATASET_SPECS["seed"]
FOLDER = "Preprocessed_EEG"
LABEL_FILE = "label.mat"
#: ``label.mat`` of the release: the emotion of clips 1..15 (-1 negative, 0 neutral,
#: 1 positive).
SEED_LABELS = (1, 0, -1, -1, 0, 1, -1, 0, 1, 1, 0, -1, 0, 1, -1)
#: Length in seconds of clips 1..15 (each trial holds ``200 d + 1`` samples).
SEED_CLIP_SECONDS = (235, 233, 206, 238, 185, 195, 237, 216, 265, 237, 235, 233, 235, 238, 206)
#: The recording dates of each subject's sessions 1, 2, 3 in the release (file names).
SEED_DATES = {
    1: ("20131027", "20131030", "20131107"), 2: ("20140404", "20140413", "20140419"),
    3: ("20140603", "20140611", "20140629"), 4: ("20140621", "20140702", "20140705"),
    5: ("20140411", "20140418", "20140506"), 6: ("20130712", "20131016", "20131113"),
    7: ("20131027", "20131030", "20131106"), 8: ("20140511", "20140514", "20140521"),
    9: ("20140620", "20140627", "20140704"), 10: ("20131130", "20131204", "20131211"),
    11: ("20140618", "20140625", "20140630"), 12: ("20131127", "20131201", "20131207"),
    13: ("20140527", "20140603", "20140610"), 14: ("20140601", "20140615", "20140627"),
    15: ("20130709", "20131016", "20131105"),
}
N_CLIPS = 15
#: What the release did to the EEG (MNE info of the recordings).
SEED_SIGNAL = {"highpass": 0.0, "lowpass": 75.0, "average_reference": False,
               "processing": "SEED Preprocessed_EEG: down-sampled to 200 Hz, band-passed "
                             "0-75 Hz, cut into the film clips"}
_RELEASE = "the SEED release (Preprocessed_EEG)"


def find_folder(root: Path) -> Path:
    """The ``Preprocessed_EEG`` folder at or below *root* (``SEED/``, ``SEED_EEG/`` or the
    folder itself, which is recognised by its session files)."""
    root = Path(root).expanduser()
    if not root.exists():
        raise DataNotFoundError(f"SEED folder {root} does not exist; expected "
                                f"{_SPEC.layout}.")
    if root.is_file():
        raise DataNotFoundError(f"{root} is a file; give SEED's {FOLDER} folder (or a folder "
                                "above it), not one of its files.")
    for candidate in (root / FOLDER, root / "SEED_EEG" / FOLDER,
                      root / "SEED" / "SEED_EEG" / FOLDER):
        if candidate.is_dir():
            return candidate
    if session_files(root):
        return root
    raise DataNotFoundError(f"{root}: neither a {FOLDER} folder nor <subject>_<YYYYMMDD>.mat "
                            f"session files; expected {_SPEC.layout}.")


def read_labels(path: Path) -> tuple:
    """The 15 clip labels of ``label.mat`` (-1, 0, 1)."""
    value = load_mat(path, ["label"], release="the SEED release",
                     resave="save('label.mat', 'label', '-v7')",
                     expected={"label": "(1, 15) vector of clip labels"})["label"]
    arr = np.asarray(value)
    if arr.dtype.kind not in "fiu" or arr.size != N_CLIPS:
        raise DataFormatError(f"{path}: 'label' is {arr.dtype} of shape {arr.shape}; expected "
                              f"{N_CLIPS} clip labels -1/0/1.")
    values = arr.reshape(-1).astype(float)
    if not np.isin(values, (-1, 0, 1)).all():
        bad = values[~np.isin(values, (-1, 0, 1))][0]
        raise DataFormatError(f"{path}: 'label' holds {bad:g}; expected -1 (negative), 0 "
                              "(neutral) or 1 (positive).")
    return tuple(int(v) for v in values)


def assign_sessions(subject: int, dated, folder: Path) -> dict:
    """``{session: path}`` of one subject's ``[(date, path), ...]`` (in date order).

    The release's dates name the sessions; other dates are taken in date order as
    sessions 1, 2, 3 (with fewer files, the first sessions).
    """
    if len(dated) > len(_SPEC.sessions):
        raise DataFormatError(
            f"{folder}: subject {subject} has {len(dated)} session files "
            f"({', '.join(p.name for _, p in dated)}); SEED has 3 sessions per subject.")
    known = SEED_DATES.get(subject, ())
    if all(d in known for d, _ in dated):
        return {_SPEC.sessions[known.index(d)]: p for d, p in dated}
    if len(dated) < len(_SPEC.sessions):
        logger.info("%s: subject %d's dates %s are not the release's; taking them as "
                    "sessions 1-%d in date order.", folder, subject,
                    ", ".join(d for d, _ in dated), len(dated))
    return {_SPEC.sessions[i]: p for i, (_, p) in enumerate(dated)}


@fill_doc
class SEED(SessionDataset):
    """The SEED dataset (preprocessed EEG), one :class:`~physiosync.datasets.Recording`
    per subject holding its three sessions.

    Parameters
    ----------
    root : str | Path
        ``Preprocessed_EEG/``, or a folder above it (``SEED_EEG/``, ``SEED/``).
    %(verbose)s

    Attributes
    ----------
    root : Path
        The ``Preprocessed_EEG`` folder read.
    subjects : list of int
        Subjects with at least one session file.
    sessions : tuple of str
        ``("1", "2", "3")``.
    classes : tuple of str
        ``("negative", "neutral", "positive")``: the ``emotion`` codes 0, 1, 2.
    labels : tuple of int
        The release's clip labels (-1, 0, 1) of clips 1..15.
    sfreq : float
        200 Hz.

    Raises
    ------
    DataNotFoundError
        If *root* holds no session file.
    DataFormatError
        If ``label.mat`` is damaged or a subject has more than three session files.

    Notes
    -----
    * Sessions are ordered by date (the release's dates name them; a subject with a
      missing session file is reported in one log line, and its trials keep their
      session's numbers). Trials are numbered session-major: trial ``15 (i - 1) + k - 1``
      is clip ``k`` of session ``i``, so ``(subject, trial)`` names one trial of one
      session; the ratings column ``stimulus`` gives the clip (0..14), the same in
      every session. Clips are matched by the integer in their variable name, never
      by sorting names as strings.
    * ``emotion`` is the label plus one: 0 negative, 1 neutral, 2 positive.
    * Each clip's ``200 d + 1`` samples lose the last one (as in public loaders that
      note a "redundant point"), so a clip lasts exactly its ``d`` seconds; others
      drop the first instead, a 5 ms difference.
    * There is no baseline: prepare with ``baseline="none"`` (``data.baseline:
      none``); the other methods and ``norm="subject"`` refuse a recording without one.
    * Without ``label.mat`` the release's labels (``SEED_LABELS``) are used, and
      a log line says so.
    """

    name = _SPEC.display_name
    root_description = _SPEC.root_description
    n_clips = N_CLIPS
    shared_clips = True
    trim_extra_sample = True
    release = _RELEASE
    signal = SEED_SIGNAL

    @verbose
    def __init__(self, root, *, verbose: bool | str | int | None = None):
        self.root = find_folder(root)
        self.sfreq = SEED_SFREQ
        label_path = self.root / LABEL_FILE
        if label_path.is_file():
            self.labels = read_labels(label_path)
            self._label_files = (label_path,)
            if self.labels != SEED_LABELS:
                logger.warning("%s: the clip labels %s differ from the release's %s; using "
                               "the file's.", label_path, list(self.labels), list(SEED_LABELS))
        else:
            self.labels = SEED_LABELS
            self._label_files = ()
            logger.warning("%s: no %s; using the release's clip labels %s.", self.root,
                           LABEL_FILE, list(SEED_LABELS))
        codes = np.asarray(self.labels) + 1
        files = {s: assign_sessions(s, dated, self.root)
                 for s, dated in session_files(self.root).items()}
        self._init_files(files, {k: codes for k in _SPEC.sessions})
        logger.info("SEED at %s: %d subjects (%s), %d session files", self.root,
                    len(self._files), ranges(self._files),
                    sum(len(v) for v in self._files.values()))

"""Reader of the DEAP dataset (Koelstra et al., 2012).

Two releases are understood, and detected automatically:

* the preprocessed Python release, ``data_preprocessed_python/sXX.dat``: 40 trials x
  40 channels x 8064 samples at 128 Hz (3 s baseline + 60 s stimulus), trials in video
  order; read with a safe, zero-copy pickle reader;
* the original BioSemi recordings, ``data_original/sXX.bdf`` at 512 Hz, trials in
  presentation order, plus ``participant_ratings.csv``; read through MNE, with the
  Status-channel quirks handled and trials put back in video order.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from .._logging import logger, verbose
from ..dataset_specs import DATASET_SPECS
from ..exceptions import DataFormatError, DataNotFoundError, UnknownSubjectError
from ._channels import (DEAP_BASELINE_S, DEAP_DAT_CHANNELS, DEAP_DAT_EEG,
                        DEAP_DAT_PERIPHERAL, DEAP_DAT_SLICES,
                        DEAP_RATING_SCALE as RATING_SCALE, DEAP_SFREQ_DAT, DEAP_STIMULUS_S)
from ._safe_pickle import load_pickle
from .base import BaseDataset, ModalityInfo, Recording, check_finite, first_off_scale
from .._utils.docs import fill_doc

__all__ = ["DEAP", "read_deap_dat"]

_DAT = re.compile(r"^s(\d{2})\.dat$")
_BDF = re.compile(r"^s(\d{2})\.bdf$")
RATING_COLUMNS = ("valence", "arousal", "dominance", "liking")
N_SUBJECTS = 32
N_TRIALS = 40


#: Names that look like subject files of a release (any case, any number, trailing
#: suffixes such as ``.bak``): skipped when they are not exactly ``sXX.dat``/``sXX.bdf``,
#: and then named in a warning. Other files (README, .DS_Store) are not mentioned.
_LOOKS_LIKE = {"dat": re.compile(r"^s\d+\.dat|\.dat$", re.IGNORECASE),
               "bdf": re.compile(r"^s\d+\.bdf|\.bdf$", re.IGNORECASE)}


def _scan(folder: Path, pattern: re.Pattern, kind: str) -> tuple[dict[int, Path], list[str]]:
    """The subject files of *folder* by id, and the sorted names of the files that look
    like subject files of *kind* but are not named as the release names them."""
    found, skipped = {}, []
    if folder.is_dir():
        for p in folder.iterdir():
            m = pattern.match(p.name)
            if m and p.is_file() and 1 <= int(m.group(1)) <= N_SUBJECTS:
                found[int(m.group(1))] = p
            elif _LOOKS_LIKE[kind].search(p.name):
                skipped.append(p.name)
    return dict(sorted(found.items())), sorted(skipped)


def _skipped_text(kind: str, names: list) -> str:
    shown = ", ".join(names[:10]) + (f" and {len(names) - 10} more" if len(names) > 10 else "")
    return (f"{len(names)} file(s) not named s01.{kind}..s{N_SUBJECTS}.{kind} (lower case, "
            f"two digits, as in the release): {shown}")


#: DEAP's declaration (name, modalities, threshold, ...).
_SPEC = DATASET_SPECS["deap"]


@fill_doc
class DEAP(BaseDataset):
    """The DEAP dataset, one :class:`~physiosync.datasets.Recording` per participant.

    Parameters
    ----------
    root : str | Path
        A folder holding ``sXX.dat`` files (preprocessed release) or ``sXX.bdf`` files
        (original recordings), or the DEAP top folder holding
        ``data_preprocessed_python/`` or ``data_original/``. Files are matched by the
        release's names, lower case ``s01.dat`` .. ``s32.dat`` (``.bdf``); a file that
        only looks like one (``S01.DAT``, ``s1.dat``, ``s02.dat.bak``) is skipped with
        a warning that names it.
    format : {"auto", "dat", "bdf"}
        Which release to read; ``"auto"`` picks the one present (``"dat"`` if both).
    ratings_csv : str | Path | None
        ``participant_ratings.csv`` (BDF release only; the ``.dat`` release holds its
        own ratings and ignores it, with a warning). By default it is looked for in
        *root*, its parent, and ``metadata_csv/`` or ``Metadata/`` beside them. In a
        run configuration: ``data.ratings_csv``; on the command line: ``--ratings-csv``.
    %(verbose)s
        While the folder is scanned, the line naming the release found is logged at
        ``"info"``. It applies to this call only; :meth:`load_subject` takes its
        own.

    Attributes
    ----------
    subjects : list of int
        Sorted ids of the participants whose files are present.
    format : str
        ``"dat"`` or ``"bdf"``.

    Examples
    --------
    >>> deap = DEAP("data_preprocessed_python")          # doctest: +SKIP
    >>> rec = deap.load_subject(1)                          # doctest: +SKIP
    >>> rec.stimulus("eeg", trial=0).shape                  # doctest: +SKIP
    (32, 7680)
    """

    name = _SPEC.display_name
    modalities = _SPEC.modalities
    root_description = _SPEC.root_description

    @verbose
    def __init__(self, root, *, format: str = "auto", ratings_csv=None, verbose: bool | str | int | None = None):
        root = Path(root).expanduser()
        if not root.exists():
            raise DataNotFoundError(f"DEAP folder {root} does not exist.")
        if not root.is_dir():
            raise DataNotFoundError(f"DEAP root {root} is not a folder; expected a folder of "
                                    "sXX.dat or sXX.bdf files.")
        if format not in ("auto", "dat", "bdf"):
            raise ValueError(f"format must be 'auto', 'dat' or 'bdf', got {format!r}.")
        candidates = [root, root / "data_preprocessed_python", root / "data_original"]
        found, near = {}, {"dat": [], "bdf": []}
        for kind, pattern in (("dat", _DAT), ("bdf", _BDF)):
            if format in ("auto", kind):
                for folder in candidates:
                    files, skipped = _scan(folder, pattern, kind)
                    if skipped:
                        near[kind].append((folder, skipped))
                    if files:
                        found[kind] = (folder, files)
                        break
        if not found:
            want = {"auto": "sXX.dat or sXX.bdf", "dat": "sXX.dat", "bdf": "sXX.bdf"}[format]
            seen = "; ".join(f"{folder}: {_skipped_text(kind, names)}"
                             for kind in near for folder, names in near[kind])
            raise DataNotFoundError(
                f"No DEAP subject files ({want}, XX = 01..32) in {root} or in its "
                "data_preprocessed_python/ and data_original/ subfolders"
                + (f"; found {seen}, so rename them." if seen else "."))
        self.format = "dat" if "dat" in found else "bdf"
        self.root, self._files = found[self.format]
        # Names are matched as the release writes them; say what was left out, in the
        # folder read and in those looked at before it.
        for folder, names in near[self.format]:
            logger.warning("DEAP at %s: skipped %s; rename them to read them.", folder,
                           _skipped_text(self.format, names))
        self.ratings_table = None
        if ratings_csv is not None and self.format != "bdf":
            logger.warning("DEAP at %s: the ratings file %s is not read; the .dat release "
                           "holds its own ratings.", self.root, ratings_csv)
        if self.format == "bdf":
            csv = Path(ratings_csv) if ratings_csv is not None else self._find_ratings_csv()
            from ._deap_bdf import read_participant_ratings

            self.ratings_table = read_participant_ratings(csv)
        logger.info("DEAP (%s) at %s: %d subjects", self.format, self.root, len(self._files))

    def _find_ratings_csv(self) -> Path:
        names = ("participant_ratings.csv",)
        places = [self.root, self.root.parent]
        places += [p / sub for p in list(places) for sub in ("metadata_csv", "Metadata", "metadata")]
        for place in places:
            for name in names:
                if (place / name).is_file():
                    return place / name
        raise DataNotFoundError(
            f"participant_ratings.csv not found near {self.root} (looked in "
            f"{', '.join(str(p) for p in places)}); the BDF release needs it to put trials "
            "in video order; give its path with --ratings-csv FILE (data.ratings_csv in a "
            "config, ratings_csv= of physiosync.datasets.DEAP in Python).")

    @property
    def subjects(self) -> list[int]:
        """Sorted ids of the participants present."""
        return list(self._files)

    def subject_file(self, subject: int) -> Path:
        """Path of the file of *subject*, with a clear error if it is unknown or missing."""
        s = _check_subject_id(subject, N_SUBJECTS, "DEAP")
        if s not in self._files:
            ext = "dat" if self.format == "dat" else "bdf"
            raise DataNotFoundError(
                f"DEAP subject {s}: file s{s:02d}.{ext} is missing from {self.root} "
                f"(present: {self.subjects}).")
        return self._files[s]

    @verbose
    def load_subject(self, subject: int, *, verbose: bool | str | int | None = None) -> Recording:
        """Read one participant.

        Parameters
        ----------
        subject : int
            Participant id, 1..32.
        %(verbose)s
            The BDF reader logs how it found the trials at ``"info"`` and
            anything unusual as a warning.

        Returns
        -------
        recording : Recording
            Modalities ``eeg, eog, emg, gsr, resp, ppg, temp``.
        """
        path = self.subject_file(subject)
        s = int(subject)
        if self.format == "dat":
            return read_deap_dat(path, s)
        from ._deap_bdf import read_deap_bdf

        return read_deap_bdf(path, s, self.ratings_table)

    def source_files(self, subjects=None) -> list[Path]:
        """Files that the given subjects (default: all) are read from."""
        files = [self.subject_file(s) for s in (subjects or self.subjects)]
        if self.ratings_table is not None:
            files.append(Path(self.ratings_table.attrs["source"]))
        return files

    def __repr__(self) -> str:
        return f"<DEAP {self.format} at {self.root}: {len(self)} subjects>"


def _check_subject_id(subject, n_max: int, dataset: str) -> int:
    try:
        s = int(subject)
        if s != subject:
            raise ValueError
    except (TypeError, ValueError):
        raise UnknownSubjectError(
            f"{dataset} subject ids are integers 1..{n_max}, got {subject!r}.") from None
    if not 1 <= s <= n_max:
        raise UnknownSubjectError(f"{dataset} has subjects 1..{n_max}; there is no subject {s}.")
    return s


def read_deap_dat(path, subject: int) -> Recording:
    """Read one ``sXX.dat`` of the preprocessed DEAP release.

    Parameters
    ----------
    path : str | Path
        The file.
    subject : int
        Participant id.

    Returns
    -------
    recording : Recording
        Baseline = first 3 s, stimulus = the rest (the last 60 s in the real release),
        as zero-copy views of the file data, in µV (EEG, EOG, EMG) and the release's
        units for the peripheral channels.
    """
    path = Path(path)
    obj = load_pickle(path)
    if not isinstance(obj, dict) or not {"data", "labels"} <= set(obj):
        keys = sorted(map(str, obj)) if isinstance(obj, dict) else type(obj).__name__
        raise DataFormatError(
            f"{path}: expected a dict with keys 'data' and 'labels', found {keys}.")
    data, labels = obj["data"], obj["labels"]
    for name, arr, ndim in (("data", data, 3), ("labels", labels, 2)):
        if not isinstance(arr, np.ndarray) or arr.ndim != ndim or arr.dtype.kind not in "fiu":
            desc = (f"{arr.dtype} array of shape {arr.shape}" if isinstance(arr, np.ndarray)
                    else type(arr).__name__)
            raise DataFormatError(f"{path}: '{name}' is a {desc}; expected a {ndim}-D numeric "
                                  "array.")
    n_trials, n_channels, n_samples = data.shape
    n_base = int(DEAP_BASELINE_S * DEAP_SFREQ_DAT)
    if n_channels != len(DEAP_DAT_CHANNELS):
        raise DataFormatError(
            f"{path}: 'data' has {n_channels} channels (shape {data.shape}); expected 40 "
            "(32 EEG + 8 peripheral), as (trials, 40, samples).")
    if not 1 <= n_trials <= N_TRIALS:
        raise DataFormatError(f"{path}: 'data' has {n_trials} trials; expected 1..{N_TRIALS}.")
    if n_samples <= n_base:
        raise DataFormatError(
            f"{path}: trials have {n_samples} samples, which leaves no room after the "
            f"{n_base}-sample (3 s at 128 Hz) baseline; expected 8064 (63 s).")
    if labels.shape != (n_trials, 4):
        raise DataFormatError(
            f"{path}: 'labels' has shape {labels.shape} but 'data' holds {n_trials} trials; "
            f"expected ({n_trials}, 4) ratings (valence, arousal, dominance, liking).")
    check_finite(data, "'data'", path)
    off = first_off_scale(labels, *RATING_SCALE)
    if off is not None:
        trial, col, value = off
        raise DataFormatError(
            f"{path}: subject {subject}, trial {trial} (0-based): {RATING_COLUMNS[col]} "
            f"rating {value:g} is outside the DEAP scale {RATING_SCALE[0]:g}-"
            f"{RATING_SCALE[1]:g}; expected self-assessment ratings from 1 to 9 in 'labels'.")
    stim_start = max(n_base, n_samples - int(DEAP_STIMULUS_S * DEAP_SFREQ_DAT))
    infos, baseline, stimulus = {}, {}, {}
    for modality, (lo, hi) in DEAP_DAT_SLICES.items():
        infos[modality] = ModalityInfo.standard(
            modality, DEAP_SFREQ_DAT, DEAP_DAT_CHANNELS[lo:hi],
            **(DEAP_DAT_EEG if modality == "eeg" else DEAP_DAT_PERIPHERAL))
        baseline[modality] = data[:, lo:hi, :n_base]
        stimulus[modality] = data[:, lo:hi, stim_start:]
    ratings = pd.DataFrame(np.asarray(labels, dtype=float), columns=list(RATING_COLUMNS))
    return Recording(subject, dataset="DEAP", source=path, modalities=infos,
                     baseline=baseline, stimulus=stimulus, ratings=ratings)

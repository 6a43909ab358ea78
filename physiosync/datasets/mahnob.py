"""Reader of MAHNOB-HCI, its emotion-elicitation part (Soleymani et al., 2012).

The download (``hci-tagging-database_download_<date>/Sessions/``) holds one folder per
session, numbered but not densely. An emotion-elicitation session holds
``session.xml`` (the subject, the clip shown as ``mediaFile``, and the felt-emotion
self-reports ``feltVlnc, feltArsl, feltCtrl, feltPred`` on 1-9 and the keyword code
``feltEmo``) and one BioSemi BDF, ``Part_<p>_S_Trial<k>_emotion.bdf``: 47 channels at
256 Hz (32 EEG, ``EXG1``-``EXG8``, ``GSR1``, ``GSR2``, ``Erg1``, ``Erg2``, ``Resp``,
``Temp``, ``Status``) from 30 s before the clip to about 30 s after it, with two Status
trigger pulses at the clip's onset and end. Before each clip a neutral clip was shown
in a session of its own (``Part_<p>_N_Trial<k>_emotion.bdf``), without felt-emotion
ratings; the implicit-tagging experiment of the same download has sessions without
them too.

:class:`MAHNOB` scans every ``session.xml`` once (they are small), maps the clips to
trial ids shared by all subjects, and reads a subject's BDF files when it is loaded.
:func:`physiosync.synthetic.make_mahnob` writes a synthetic copy with the same layout.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .._logging import logger, verbose
from .._utils.docs import fill_doc
from ..dataset_specs import DATASET_SPECS
from ..exceptions import DataFormatError, DataNotFoundError, UnknownSubjectError
from ._bdf import (bdf_header_check, get_data, header_units, open_bdf, output_scale,
                   rising_edges)
from ._channels import (MAHNOB_BASELINE_S, MAHNOB_ECG, MAHNOB_EEG, MAHNOB_FELT_EMOTIONS,
                        MAHNOB_RATING_SCALE, MAHNOB_SFREQ, MAHNOB_UNUSED)
from ._session_xml import read_small_xml
from .base import BaseDataset, ModalityInfo, Recording, check_finite
from .deap import _check_subject_id

__all__ = ["MAHNOB", "read_session", "read_session_bdf", "natural_key"]

SESSIONS = "Sessions"
SESSION_XML = "session.xml"
#: ``session.xml`` attribute of each rating column (``feltCtrl``: control, i.e. dominance).
RATING_ATTRIBUTES = {"valence": "feltVlnc", "arousal": "feltArsl", "dominance": "feltCtrl",
                     "predictability": "feltPred"}
RATING_COLUMNS = tuple(RATING_ATTRIBUTES)
#: The further per-trial columns of :attr:`Recording.ratings`.
INFO_COLUMNS = ("felt_emotion", "position", "session_id")
#: Longest stimulus accepted between the two triggers (the clips last 34-117 s).
MAX_STIMULUS_S = 600.0
#: Status bits that carry the triggers (BioSemi's system bits 16-23 are masked out).
STATUS_MASK = 0xFFFF
_BDF_NAME = re.compile(r"^Part_(\d+)_([SN])_Trial(\d+)_emotion\.bdf$", re.IGNORECASE)
_WHAT_XML = "MAHNOB-HCI's session.xml (<session ...> with a <subject id=...> element)"
#: GSR1 header units, lower case: resistance (factor to Ohm; "m" is mega, milliohms are
#: no skin resistance) and conductance (factor to µS).
_RESISTANCE = {"ohm": 1.0, "kohm": 1e3, "mohm": 1e6, "\u03c9": 1.0, "k\u03c9": 1e3,
               "m\u03c9": 1e6}
_CONDUCTANCE = {"s": 1e6, "ms": 1e3, "us": 1.0, "\u00b5s": 1.0, "\u03bcs": 1.0, "ns": 1e-3}

#: MAHNOB-HCI's declaration (name, modalities, threshold, ...).
_SPEC = DATASET_SPECS["mahnob"]


def natural_key(name: str):
    """Sort key that orders the numbers inside *name* by value: ``"9.avi" < "53.avi"``."""
    return [(0, int(part), "") if part.isdigit() else (1, 0, part.lower())
            for part in re.split(r"(\d+)", str(name)) if part]


def _ids_text(ids) -> str:
    """Session ids as ranges: ``1, 3, 5-9``."""
    ids = sorted(ids, key=natural_key)
    numbers = [int(i) for i in ids if str(i).isdigit()]
    out, k = [], 0
    while k < len(numbers):
        j = k
        while j + 1 < len(numbers) and numbers[j + 1] == numbers[j] + 1:
            j += 1
        out.append(str(numbers[k]) if j == k else f"{numbers[k]}-{numbers[j]}")
        k = j + 1
    return ", ".join(out + [str(i) for i in ids if not str(i).isdigit()])


@dataclass(frozen=True)
class Session:
    """What one ``session.xml`` (and its folder) says about a rated stimulus session."""

    folder: Path
    session_id: str
    subject: int
    media_file: str
    ratings: tuple
    felt_emotion: int
    bdf: Path | None
    position: int | None


def _number(session_xml: Path, attrs: dict, key: str, *, low=None, high=None):
    """The integer attribute *key* (None when absent or empty)."""
    text = str(attrs.get(key, "")).strip()
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not np.isfinite(value) or value != round(value) or (
            low is not None and not low <= value <= high):
        scale = f" from {low:g} to {high:g}" if low is not None else ""
        raise DataFormatError(f"{session_xml}: {key}={text!r} is not an integer{scale}; "
                              f"expected {_WHAT_XML}.")
    return int(value)


def read_session(folder) -> tuple[str, Session | None]:
    """Read one session folder.

    Parameters
    ----------
    folder : str | Path
        ``Sessions/<id>/``.

    Returns
    -------
    status : str
        ``"ok"`` for a rated stimulus session (then *session* is set), otherwise why it
        is not a trial: ``"no session.xml"``, ``"unrated"`` (no ``feltVlnc`` or
        ``feltArsl``: the neutral-clip and implicit-tagging sessions), ``"subject id
        not a whole number"``, ``"incomplete ratings"`` (no ``feltCtrl`` or
        ``feltPred``), ``"no mediaFile"``, ``"not an emotion-elicitation session"``
        (its BDF files are all of another kind, such as the implicit-tagging experiment's).
    session : Session | None
        Its ``bdf`` is None when the folder holds no ``Part_<p>_S_Trial<k>_emotion.bdf``
        (or more than one).

    Raises
    ------
    DataFormatError
        If ``session.xml`` is hostile or malformed (see
        :func:`~physiosync.datasets._session_xml.read_small_xml`), its root is not
        ``<session>``, a rated session has no ``<subject id=...>``, or a rating is not
        an integer from 1 to 9.
    """
    folder = Path(folder)
    xml = folder / SESSION_XML
    if not xml.is_file():
        return "no session.xml", None
    root = read_small_xml(xml, _WHAT_XML)
    if root.tag != "session":
        raise DataFormatError(f"{xml}: the root element is <{root.tag}>; expected {_WHAT_XML}.")
    attrs = root.attrs
    if not all(str(attrs.get(RATING_ATTRIBUTES[c], "")).strip() for c in ("valence", "arousal")):
        return "unrated", None
    subject = root.find("subject")
    if subject is None or not str(subject.attrs.get("id", "")).strip():
        raise DataFormatError(f"{xml}: a rated session without a <subject id=...> element; "
                              f"expected {_WHAT_XML}.")
    text = str(subject.attrs["id"]).strip()
    if not text.isdigit() or int(text) < 1:
        return "subject id not a whole number", None
    low, high = MAHNOB_RATING_SCALE
    ratings = tuple(_number(xml, attrs, RATING_ATTRIBUTES[c], low=low, high=high)
                    for c in RATING_COLUMNS)
    if None in ratings:
        return "incomplete ratings", None
    media = str(attrs.get("mediaFile", "")).strip()
    if not media:
        return "no mediaFile", None
    felt = _number(xml, attrs, "feltEmo", low=0, high=99)  # keyword codes 0-12
    any_bdf = sorted(p for p in folder.iterdir() if p.suffix.lower() == ".bdf" and p.is_file())
    if any_bdf and not any(_BDF_NAME.match(p.name) for p in any_bdf):
        # e.g. Part_<p>_Trial<k>_taggingVideos.bdf: its mediaFile is no clip of this part
        return "not an emotion-elicitation session", None
    bdfs = [p for p in any_bdf if _BDF_NAME.match(p.name)
            and _BDF_NAME.match(p.name).group(2).upper() == "S"]
    bdf = bdfs[0] if len(bdfs) == 1 else None
    position = int(_BDF_NAME.match(bdf.name).group(3)) if bdf is not None else None
    return "ok", Session(folder, folder.name, int(text), media, tuple(float(r) for r in ratings),
                         -1 if felt is None else felt, bdf, position)


def _find_sessions(root: Path) -> Path:
    """The ``Sessions`` folder: *root* itself, ``root/Sessions`` or ``root/*/Sessions``."""
    def is_sessions(folder: Path) -> bool:
        if folder.name.lower() == SESSIONS.lower():
            return True
        return any(p.name.isdigit() and (p / SESSION_XML).is_file() for p in folder.iterdir())

    def child(folder: Path):
        return next((p for p in sorted(folder.iterdir())
                     if p.is_dir() and p.name.lower() == SESSIONS.lower()), None)

    if is_sessions(root):
        return root
    if child(root) is not None:
        return child(root)
    inside = [c for c in (child(p) for p in sorted(root.iterdir()) if p.is_dir()) if c]
    if len(inside) > 1:
        raise DataNotFoundError(
            f"{root} holds several MAHNOB-HCI Sessions folders ({', '.join(map(str, inside))}); "
            "give the one to read as the data root.")
    if inside:
        return inside[0]
    raise DataNotFoundError(
        f"No MAHNOB-HCI Sessions folder in {root}; expected {_SPEC.layout}: give the "
        "Sessions folder, the download folder holding it, or the folder above that.")


@fill_doc
class MAHNOB(BaseDataset):
    """MAHNOB-HCI's emotion-elicitation sessions, one :class:`~physiosync.datasets.Recording`
    per subject.

    Parameters
    ----------
    root : str | Path
        The ``Sessions`` folder, the download folder holding it
        (``hci-tagging-database_download_<date>/``), or a folder holding that one.
    %(verbose)s
        While the folder is scanned, a summary line is logged at ``"info"``; the
        sessions that are not trials are listed in one warning line per reason.

    Attributes
    ----------
    sessions_dir : Path
        The ``Sessions`` folder read.
    subjects : list of int
        Subjects (``<subject id>`` of ``session.xml``, never the folder number) with at
        least one rated stimulus session that has its BDF file.
    stimuli : tuple of str
        The clips (``mediaFile``) of every rated session of the folder, in natural
        numeric order (``9.avi`` before ``53.avi``): trial id ``t`` is clip
        ``stimuli[t]`` for every subject.
    table : pandas.DataFrame
        One row per trial read: ``subject, trial, position`` (the BDF's trial number
        ``k``, the presentation position), ``session_id`` (the folder), ``media_file``,
        the ratings and ``felt_emotion`` (keyword code, -1 when absent; see
        ``FELT_EMOTIONS``).
    skipped : dict of str -> list of str
        Session folders that are not trials, by reason (see ``read_session()``, and
        ``"no stimulus BDF"``: rated, but the folder holds no single
        ``Part_<p>_S_Trial<k>_emotion.bdf``).

    Notes
    -----
    Channels: the 32 EEG (BioSemi order), ECG ``EXG1``-``EXG3``, ``GSR1``, ``Resp`` and
    ``Temp``; ``EXG4``-``EXG8``, ``GSR2``, ``Erg1`` and ``Erg2`` hold no meaningful data
    (the database's documentation) and are not read. ``GSR1`` is skin resistance in Ohm
    and is returned as skin conductance in µS (``1e6 / R``; a header unit of
    conductance is scaled instead). Baseline = the 30 s before the first Status trigger
    (the clip's onset); stimulus = from it to the second trigger. Ratings are integers
    1-9; a binary target is high at ``>= 5``.

    Examples
    --------
    >>> ds = MAHNOB("hci-tagging-database_download_2020-09-25_01_09_28")  # doctest: +SKIP
    >>> rec = ds.load_subject(1)                                          # doctest: +SKIP
    >>> rec.ratings[["valence", "arousal", "position"]]                   # doctest: +SKIP
    """

    name = _SPEC.display_name
    modalities = _SPEC.modalities
    format = "bdf"
    root_description = _SPEC.root_description

    @verbose
    def __init__(self, root, *, verbose: bool | str | int | None = None):
        root = Path(root).expanduser()
        if not root.exists():
            raise DataNotFoundError(f"MAHNOB-HCI folder {root} does not exist.")
        if not root.is_dir():
            raise DataNotFoundError(f"MAHNOB-HCI root {root} is not a folder; expected "
                                    f"{_SPEC.layout}.")
        self.sessions_dir = _find_sessions(root)
        folders = sorted((p for p in self.sessions_dir.iterdir() if p.is_dir()),
                         key=lambda p: natural_key(p.name))
        self.skipped: dict[str, list[str]] = {}
        rated: list[Session] = []
        for folder in folders:
            status, session = read_session(folder)
            if status != "ok":
                self.skipped.setdefault(status, []).append(folder.name)
            else:
                rated.append(session)
        self.stimuli = tuple(sorted({s.media_file for s in rated}, key=natural_key))
        trial_of = {m: t for t, m in enumerate(self.stimuli)}
        kept = [s for s in rated if s.bdf is not None]
        no_bdf = [s.session_id for s in rated if s.bdf is None]
        if no_bdf:
            self.skipped["no stimulus BDF"] = no_bdf
        self._sessions: dict[int, list[Session]] = {}
        for s in sorted(kept, key=lambda s: (s.subject, trial_of[s.media_file], s.position)):
            self._sessions.setdefault(s.subject, []).append(s)
        rows = [{"subject": s.subject, "trial": trial_of[s.media_file], "position": s.position,
                 "session_id": s.session_id, "media_file": s.media_file,
                 **dict(zip(RATING_COLUMNS, s.ratings)), "felt_emotion": s.felt_emotion}
                for ss in self._sessions.values() for s in ss]
        self.table = pd.DataFrame(rows, columns=["subject", "trial", "position", "session_id",
                                                 "media_file", *RATING_COLUMNS, "felt_emotion"])
        self._report(kept)

    def _report(self, kept) -> None:
        where = f"MAHNOB-HCI at {self.sessions_dir}"
        for reason, ids in self.skipped.items():
            logger.warning("%s: skipped %d session(s), %s: %s", where, len(ids), reason,
                           _ids_text(ids))
        other = [s.session_id for s in kept
                 if int(_BDF_NAME.match(s.bdf.name).group(1)) != s.subject]
        if other:
            logger.warning("%s: the BDF file names another participant than session.xml's "
                           "<subject id> in session(s) %s; the subject is taken from "
                           "session.xml.", where, _ids_text(other))
        if not self._sessions:
            raise DataNotFoundError(
                f"No rated MAHNOB-HCI emotion session with its BDF file in "
                f"{self.sessions_dir} ({sum(map(len, self.skipped.values()))} session "
                f"folder(s) skipped); expected {_SPEC.layout}.")
        logger.info("%s: %d subjects, %d trials of %d stimuli; channels %s not read (no "
                    "meaningful data)", where, len(self._sessions), len(kept),
                    len(self.stimuli), ", ".join(MAHNOB_UNUSED))

    # ------------------------------------------------------------------ public
    @property
    def subjects(self) -> list[int]:
        """Sorted ids of the subjects with at least one readable trial."""
        return sorted(self._sessions)

    def _subject_sessions(self, subject) -> list[Session]:
        s = _check_subject_id(subject, max(self._sessions), "MAHNOB-HCI")
        if s not in self._sessions:
            raise UnknownSubjectError(
                f"MAHNOB-HCI at {self.sessions_dir} has no readable session of subject {s} "
                f"(subjects: {self.subjects}).")
        return self._sessions[s]

    def subject_file(self, subject: int) -> Path:
        """The BDF file of *subject*'s first trial (after checking the id)."""
        return self._subject_sessions(subject)[0].bdf

    def source_files(self, subjects=None) -> list[Path]:
        """``session.xml`` and the BDF of every trial of the given subjects (default: all)."""
        return [p for s in (subjects or self.subjects) for ses in self._subject_sessions(s)
                for p in (ses.folder / SESSION_XML, ses.bdf)]

    def cache_identity(self) -> dict:
        """The dataset, the format and ``stimuli``: the trial ids depend on the clips
        of the whole folder, not only on a subject's files."""
        return {"dataset": self.name, "format": self.format, "stimuli": list(self.stimuli)}

    def synthetic(self, subjects=None) -> bool:
        """Whether physiosync's writer wrote every source file of *subjects* (the list
        ``.physiosync-files`` of the folder holding ``Sessions`` names them)."""
        from .._utils.manifest import read_manifest

        files = self.source_files(subjects)
        for top in (self.sessions_dir.parent, self.sessions_dir):
            try:
                listed = read_manifest(top) or {}
            except OSError:
                continue
            if files and all(listed.get(Path(f).relative_to(top).as_posix()) == "synth"
                             for f in files):
                return True
        return False

    @verbose
    def load_subject(self, subject: int, *,
                     verbose: bool | str | int | None = None) -> Recording:
        """Read one subject's trials.

        Parameters
        ----------
        subject : int
            One of :attr:`subjects`.
        %(verbose)s

        Returns
        -------
        recording : Recording
            Modalities ``eeg`` (32 channels), ``ecg`` (``EXG1``-``EXG3``), both in µV;
            ``gsr`` (skin conductance in µS, from ``GSR1``); ``resp`` and ``temp`` in
            the units of the BDF header; all at 256 Hz. Trials are indexed by stimulus
            (``stimuli``); ratings columns ``valence, arousal, dominance,
            predictability`` (1-9), ``felt_emotion`` (``feltEmo``, -1 when absent),
            ``position`` (presentation position, the BDF's trial number) and
            ``session_id``.

        Raises
        ------
        UnknownSubjectError
            If *subject* has no readable trial.
        DataFormatError
            If two of the subject's sessions show the same clip, or a BDF file is
            corrupt, truncated, lacks a channel, has fewer than two Status triggers, a
            stimulus longer than 600 s, non-positive skin resistance, or NaN or inf.
        """
        sessions = self._subject_sessions(subject)
        trial_of = {m: t for t, m in enumerate(self.stimuli)}
        seen = {}
        for ses in sessions:
            t = trial_of[ses.media_file]
            if t in seen:
                raise DataFormatError(
                    f"{self.sessions_dir}: subject {subject} was shown {ses.media_file} in "
                    f"sessions {seen[t].session_id} and {ses.session_id}; expected each "
                    "clip once per subject (remove the session that is not a trial).")
            seen[t] = ses
        baseline = {m: [] for m in self.modalities}
        stimulus = {m: [] for m in self.modalities}
        infos, units = None, set()
        for ses in sessions:
            part = read_session_bdf(ses.bdf)
            if infos is None:
                infos = part.infos
            elif part.infos != infos:
                raise DataFormatError(
                    f"{ses.bdf}: {part.sfreq:g} Hz or filters that differ from "
                    f"{sessions[0].bdf.name} of the same subject; expected one recording "
                    "setup per subject.")
            units.add(part.gsr_unit)
            for m in self.modalities:
                baseline[m].append(part.baseline[m])
                stimulus[m].append(part.stimulus[m])
        logger.info("MAHNOB-HCI subject %d: %d trials; GSR1 read as %s", int(subject),
                    len(sessions), " and ".join(sorted(units)))
        columns = {c: [ses.ratings[k] for ses in sessions] for k, c in enumerate(RATING_COLUMNS)}
        columns["felt_emotion"] = [ses.felt_emotion for ses in sessions]
        columns["position"] = [ses.position for ses in sessions]
        columns["session_id"] = [int(ses.session_id) if ses.session_id.isdigit() else -1
                                 for ses in sessions]
        ratings = pd.DataFrame(columns, index=[trial_of[s.media_file] for s in sessions])
        return Recording(int(subject), dataset=self.name, source=self.sessions_dir,
                         modalities=infos, baseline=baseline, stimulus=stimulus,
                         ratings=ratings)

    def __repr__(self) -> str:
        return (f"<MAHNOB-HCI bdf at {self.sessions_dir}: {len(self)} subjects, "
                f"{len(self.table)} trials of {len(self.stimuli)} stimuli>")


#: ``feltEmo`` code -> keyword (the ``felt_emotion`` column holds the codes).
FELT_EMOTIONS = MAHNOB_FELT_EMOTIONS


@dataclass
class SessionBDF:
    """One session's signals: per modality the baseline and the stimulus, ``(n_ch, n)``."""

    sfreq: float
    infos: dict
    baseline: dict
    stimulus: dict
    gsr_unit: str


def _gsr_to_conductance(values: np.ndarray, unit: str, path: Path) -> tuple[np.ndarray, str]:
    """µS from GSR1 in its header *unit* (resistance is inverted, conductance scaled)."""
    key = unit.strip()
    folded = key.lower()
    if folded in _CONDUCTANCE:
        return values * _CONDUCTANCE[folded], f"skin conductance ({key}), scaled to µS"
    factor = _RESISTANCE.get(folded)
    found = f"skin resistance ({key or 'no unit'})"
    if factor is None:
        factor, found = 1.0, f"skin resistance (header unit {key!r} unknown, taken as Ohm)"
    ohm = values * factor
    bad = np.flatnonzero(~(ohm > 0))
    if bad.size:
        raise DataFormatError(
            f"{path}: GSR1 holds {bad.size} resistance value(s) that are not positive (first "
            f"{float(ohm.reshape(-1)[bad[0]]):g} {key or 'Ohm'}); expected skin resistance "
            "above 0 Ohm.")
    return 1e6 / ohm, f"{found}, converted to conductance in µS"


@fill_doc
@verbose
def read_session_bdf(path, *, verbose: bool | str | int | None = None) -> SessionBDF:
    """Read one ``Part_<p>_S_Trial<k>_emotion.bdf``: baseline and stimulus per modality.

    Parameters
    ----------
    path : str | Path
        The BDF file.
    %(verbose)s

    Returns
    -------
    SessionBDF
        ``eeg`` (32 channels) and ``ecg`` (``EXG1``-``EXG3``) in µV, ``gsr`` in µS,
        ``resp`` and ``temp`` in their header units. Baseline = the 30 s before the
        first rising edge of ``Status & 0xFFFF`` (shorter, with a warning, when the file
        starts later); stimulus = from it to the last rising edge (two in the release;
        more are used with a warning).

    Raises
    ------
    DataFormatError
        If the file is not a complete BDF, lacks a channel or the Status channel, has
        fewer than two triggers or a stimulus longer than :data:`MAX_STIMULUS_S`, or
        holds non-positive resistance, NaN or inf.
    """
    path = Path(path)
    bdf_header_check(path)
    raw = open_bdf(path, stim_channel=None)
    sfreq = float(raw.info["sfreq"])
    if abs(sfreq - MAHNOB_SFREQ) > 1e-6:
        logger.info("%s: sampling rate %g Hz (MAHNOB-HCI records at 256 Hz)", path.name, sfreq)
    lowered = {}
    for i, c in enumerate(raw.ch_names):
        lowered.setdefault(c.strip().lower(), i)
    sources = list(MAHNOB_EEG) + list(MAHNOB_ECG) + ["GSR1", "Resp", "Temp"]
    missing = [c for c in sources if c.lower() not in lowered]
    if missing:
        raise DataFormatError(
            f"{path}: missing channel(s) {', '.join(missing)}; expected the 32 EEG channels, "
            f"EXG1-EXG3, GSR1, Resp, Temp and Status (found: {', '.join(raw.ch_names)}).")
    if "status" not in lowered:
        raise DataFormatError(f"{path}: no Status (trigger) channel; expected a channel "
                              f"named 'Status' (found: {', '.join(raw.ch_names)}).")
    picks = [lowered[c.lower()] for c in sources]
    stim = lowered["status"]
    status = np.rint(get_data(open_bdf(path, stim_channel=stim), path, [stim])[0])
    edges = rising_edges(status.astype(np.int64) & STATUS_MASK)
    if edges.size < 2:
        raise DataFormatError(
            f"{path}: {edges.size} trigger pulse(s) in the Status channel; expected two, at "
            "the stimulus onset (30 s into the file) and at its end.")
    if edges.size > 2:
        logger.warning("%s: %d trigger pulses in the Status channel (two expected); the "
                       "stimulus runs from the first to the last.", path.name, edges.size)
    onset, end = int(edges[0]), int(edges[-1])
    if end - onset > MAX_STIMULUS_S * sfreq:
        raise DataFormatError(
            f"{path}: the triggers are {(end - onset) / sfreq:g} s apart; expected a "
            f"stimulus of at most {MAX_STIMULUS_S:g} s (the clips last 34-117 s).")
    n_base = int(round(MAHNOB_BASELINE_S * sfreq))
    if onset < n_base:
        logger.warning("%s: the stimulus starts %.2f s into the file; the baseline is the "
                       "%.2f s before it (30 s expected).", path.name, onset / sfreq,
                       onset / sfreq)
    start = max(onset - n_base, 0)
    volt = [i < len(MAHNOB_EEG) + len(MAHNOB_ECG) for i in range(len(sources))]
    scale = output_scale(raw, [raw.ch_names[i] for i in picks], volt, path)
    block = get_data(raw, path, picks, start, end) * scale[:, None]
    check_finite(block, "the signals", path)
    gsr_row = sources.index("GSR1")
    block[gsr_row], gsr_unit = _gsr_to_conductance(
        block[gsr_row], header_units(path).get("gsr1", ""), path)
    signal = {"highpass": float(raw.info["highpass"] or 0.0),
              "lowpass": float(raw.info["lowpass"] or sfreq / 2),
              "processing": f"MAHNOB-HCI BioSemi recording at {sfreq:g} Hz, unprocessed "
                            "(CMS/DRL reference, filters as the BDF header declares)"}
    n_eeg, n_ecg = len(MAHNOB_EEG), len(MAHNOB_ECG)
    rows = {"eeg": slice(0, n_eeg), "ecg": slice(n_eeg, n_eeg + n_ecg),
            "gsr": slice(gsr_row, gsr_row + 1), "resp": slice(gsr_row + 1, gsr_row + 2),
            "temp": slice(gsr_row + 2, gsr_row + 3)}
    names = {"eeg": MAHNOB_EEG, "ecg": MAHNOB_ECG, "gsr": ("GSR",), "resp": ("Resp",),
             "temp": ("Temp",)}
    infos = {m: ModalityInfo.standard(m, sfreq, names[m], **signal) for m in rows}
    infos["gsr"] = ModalityInfo("gsr", sfreq, ("GSR",), "gsr", "µS", 1e-6, **signal)
    split = onset - start
    return SessionBDF(sfreq, infos, {m: block[r, :split] for m, r in rows.items()},
                      {m: block[r, split:] for m, r in rows.items()}, gsr_unit)

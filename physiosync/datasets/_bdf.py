"""The original DEAP recordings: BioSemi BDF files plus ``participant_ratings.csv``.

Reader
    :func:`read_participant_ratings` parses DEAP's ratings table and
    :func:`read_deap_bdf` turns one ``sXX.bdf`` into a :class:`~physiosync.datasets.Recording`
    in video order, with the quirks of the real files handled (docs/data.md):
    the Status channel is called ``Status``, ``''`` or, through MNE, ``-1``; BioSemi
    system bits are set in it; some files hold fewer than 40 trial onsets; trials are in
    presentation order; Twente and Geneva files store the EEG in different orders.

Writer
    :func:`make_deap_bdf` writes format-faithful synthetic BDF files that emit the same
    quirks, so the reader is exercised without the licensed data.
"""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd

from .._logging import logger, progress
from ..exceptions import DataFormatError, DataNotFoundError, PhysioSyncError
from ._channels import (DEAP_BASELINE_S, DEAP_BDF_BIPOLAR, DEAP_BDF_EXTRA, DEAP_DAT_CHANNELS,
                        DEAP_DAT_SLICES, DEAP_EEG_GENEVA, DEAP_EEG_TWENTE, DEAP_SFREQ_BDF,
                        DEAP_STIMULUS_S, DEAP_TRIAL_ONSET_CODE, DEAP_TWENTE_SUBJECTS)
from ._simulate import (StimulusCourses, SubjectSimulator, check_simulation_options, latent,
                        simulate_ratings)
from .base import ModalityInfo, Recording, check_finite
from .synthetic import subject_rng

__all__ = ["read_participant_ratings", "read_deap_bdf", "make_deap_bdf"]

#: Columns of ``participant_ratings.csv`` that the reader needs.
RATINGS_REQUIRED = ("Participant_id", "Trial", "Experiment_id", "Start_time",
                    "Valence", "Arousal", "Dominance", "Liking")
RATINGS_OPTIONAL = ("Familiarity",)
_ID_COLUMNS = ("Participant_id", "Trial", "Experiment_id")
_SCALES = ("Valence", "Arousal", "Dominance", "Liking")
_STIM_END_CODE = 5
#: Code-4 runs shorter than this are taken for trigger glitches, not onsets.
_MIN_ONSET_S = 0.05
#: Tolerance when aligning onsets with ``Start_time`` (trials are ~70 s apart).
_ALIGN_TOL_S = 3.0
#: Scale that MNE applied to a channel of this header unit (it returns SI volts).
_MNE_UNIT_SCALE = {"uV": 1e-6, "\u00b5V": 1e-6, "\u03bcV": 1e-6, "\x83\xcaV": 1e-6, "mV": 1e-3}
#: Where each non-EEG output channel comes from: one BDF label, or a bipolar pair.
_PERIPHERAL_SOURCES = {
    **DEAP_BDF_BIPOLAR, "GSR": ("GSR1",), "Resp": ("Resp",), "Plet": ("Plet",), "Temp": ("Temp",),
}


# =================================================================== ratings table
def read_participant_ratings(path) -> pd.DataFrame:
    """Read DEAP's ``participant_ratings.csv``.

    Parameters
    ----------
    path : str | Path
        The CSV file. Its columns are ``Participant_id, Trial`` (1-based presentation
        position), ``Experiment_id`` (1-based video id), ``Start_time`` (µs from the start
        of the experiment), ``Valence, Arousal, Dominance, Liking`` and, optionally,
        ``Familiarity`` (empty for some participants). Whitespace around the header names
        is ignored, and so is their case.

    Returns
    -------
    table : pandas.DataFrame
        One row per rated trial, with the canonical column names above; the id columns
        are integers, the others floats (``NaN`` where empty). ``table.attrs["source"]``
        holds the path of the file as a string.

    Raises
    ------
    DataNotFoundError
        If the file does not exist.
    DataFormatError
        If it is not a readable CSV, lacks a required column or holds non-numeric values.
    """
    path = Path(path)
    expected = ", ".join(RATINGS_REQUIRED)
    if not path.is_file():
        raise DataNotFoundError(
            f"DEAP ratings file {path} not found; expected participant_ratings.csv with "
            f"columns {expected}.")
    try:
        df = pd.read_csv(path, skipinitialspace=True, dtype=str, keep_default_na=False,
                         encoding="utf-8-sig")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError,
            ValueError) as err:
        raise DataFormatError(
            f"{path}: not a readable CSV ({err}); expected participant_ratings.csv with "
            f"columns {expected}.") from None
    canonical = {c.lower(): c for c in RATINGS_REQUIRED + RATINGS_OPTIONAL}
    df.columns = [canonical.get(str(c).strip().lower(), str(c).strip()) for c in df.columns]
    missing = [c for c in RATINGS_REQUIRED if c not in df.columns]
    if missing:
        raise DataFormatError(
            f"{path}: missing column(s) {', '.join(missing)} (found: "
            f"{', '.join(map(str, df.columns)) or 'none'}); expected columns {expected}.")
    out = pd.DataFrame(index=df.index)
    for col in RATINGS_REQUIRED + tuple(c for c in RATINGS_OPTIONAL if c in df.columns):
        text = df[col].astype(str).str.strip()
        values = pd.to_numeric(text.replace("", np.nan), errors="coerce")
        bad = values.isna() & (text != "") & (text.str.lower() != "nan")
        if col in _ID_COLUMNS:
            bad |= values.isna() | (values != np.round(values))
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise DataFormatError(
                f"{path}: column {col} holds {df[col].iloc[row]!r} on line {row + 2}; expected "
                f"{'integers' if col in _ID_COLUMNS else 'numbers'} in columns {expected}.")
        out[col] = values.astype(np.int64) if col in _ID_COLUMNS else values.astype(float)
    out.attrs["source"] = str(path)
    return out


def _subject_trials(table: pd.DataFrame, subject: int, path: Path) -> pd.DataFrame:
    """The rated trials of *subject*, sorted by presentation position, validated."""
    source = table.attrs.get("source", "the ratings table")
    missing = [c for c in RATINGS_REQUIRED if c not in table.columns]
    if missing:
        raise DataFormatError(f"{source}: ratings table lacks column(s) {', '.join(missing)}; "
                              "read it with read_participant_ratings.")
    rows = table[table["Participant_id"] == subject].sort_values("Trial")
    if rows.empty:
        present = sorted(int(p) for p in table["Participant_id"].unique())
        raise DataFormatError(
            f"{path.name}: participant {subject} has no rows in {source} (participants "
            f"present: {present}); its trials cannot be put in video order.")
    for col in ("Trial", "Experiment_id"):
        dup = rows[col][rows[col].duplicated()]
        if len(dup):
            raise DataFormatError(
                f"{source}: participant {subject} has {col} {int(dup.iloc[0])} more than once; "
                "expected each presentation position and each video once.")
    if (rows["Experiment_id"] < 1).any():
        raise DataFormatError(f"{source}: participant {subject} has an Experiment_id below 1; "
                              "expected 1-based video ids.")
    scales = rows[list(_SCALES)].to_numpy(dtype=float)
    if not np.isfinite(scales).all():
        bad = rows["Trial"][~np.isfinite(scales).all(axis=1)].tolist()
        raise DataFormatError(
            f"{source}: participant {subject} has empty or non-finite ratings in Trial(s) "
            f"{bad}; expected numbers for {', '.join(_SCALES)}.")
    return rows.reset_index(drop=True)


# =================================================================== BDF reading
def _bdf_header_check(path: Path) -> int:
    """Check the BDF signature and that the file holds every data record it declares.

    MNE reads a truncated file without complaint (or fails deep inside), so the
    declared size is checked here first, from the fixed-width EDF header fields.
    Returns the declared number of data records (-1: unknown, the recorder did not
    close the file; then the file must at least end on a whole record).
    """
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(256)
        if len(head) < 256 or head[:8] != b"\xffBIOSEMI":
            raise DataFormatError(
                f"{path}: not a BioSemi BDF file (starts with {head[:8]!r}, {size} bytes); "
                "expected the 256-byte header that begins with b'\\xffBIOSEMI'.")
        try:
            n_header = int(head[184:192].decode("ascii").strip())
            n_records = int(head[236:244].decode("ascii").strip())
            n_signals = int(head[252:256].decode("ascii").strip())
        except ValueError:
            raise DataFormatError(
                f"{path}: corrupt BDF header (header size, record count or signal count is "
                "not an integer); expected a valid BioSemi header.") from None
        try:
            duration = float(head[244:252].decode("ascii").strip())
        except ValueError:
            duration = float("nan")
        if not 0 < duration < 1e6:  # the sampling rate is samples / duration
            raise DataFormatError(
                f"{path}: corrupt BDF header (record duration {head[244:252]!r}); expected a "
                "positive number of seconds (DEAP: 1).")
        if n_signals < 1 or n_header != 256 * (n_signals + 1) or size < n_header:
            raise DataFormatError(
                f"{path}: corrupt or truncated BDF header ({n_signals} signals, {n_header} "
                f"header bytes declared, {size} bytes in the file); expected "
                "256 * (signals + 1) header bytes.")
        f.seek(256 + 216 * n_signals)
        try:
            per_record = sum(int(f.read(8).decode("ascii").strip()) for _ in range(n_signals))
        except ValueError:
            raise DataFormatError(f"{path}: corrupt BDF header (samples per record is not an "
                                  "integer).") from None
    record_bytes = 3 * per_record
    if n_records < -1 or per_record < 1:
        raise DataFormatError(
            f"{path}: corrupt BDF header ({n_records} data records of {per_record} samples "
            "declared); expected a record count >= -1 and samples in every record.")
    if n_records >= 0:
        expected = n_header + record_bytes * n_records
        if size < expected:
            raise DataFormatError(
                f"{path}: truncated BDF file, {size} bytes but its header declares "
                f"{n_records} data records ({expected} bytes); expected the complete file.")
    else:
        # -1: "unknown" (recording not closed). MNE takes every whole record there is,
        # so a file that was cut short would lose its last trials without a word.
        whole, extra = divmod(size - n_header, record_bytes)
        if extra:
            raise DataFormatError(
                f"{path}: truncated BDF file: its header declares -1 (unknown) data records "
                f"and the file ends {extra} bytes into record {whole + 1} ({record_bytes} "
                "bytes each); expected whole records. The file was cut short.")
    return n_records


def _open_bdf(path: Path, stim_channel):
    import mne

    try:
        return mne.io.read_raw_bdf(path, preload=False, stim_channel=stim_channel,
                                   verbose="error")
    except (PhysioSyncError, MemoryError):
        raise
    except Exception as err:  # MNE raises many kinds on corrupt files
        raise DataFormatError(
            f"{path}: MNE could not read it as BDF ({type(err).__name__}: {err}); expected a "
            "valid BioSemi BDF file.") from None


def _get_data(raw, path: Path, picks, start=0, stop=None) -> np.ndarray:
    try:
        return raw.get_data(picks=picks, start=start, stop=stop)
    except (PhysioSyncError, MemoryError):
        raise
    except Exception as err:
        raise DataFormatError(
            f"{path}: reading samples {start}-{stop} failed ({type(err).__name__}: {err}); "
            "the BDF file is corrupt.") from None


def _stim_candidates(ch_names) -> list[int]:
    """Indices of possible Status channels, most likely first.

    ``Status`` in most files; ``''`` in s24-s28; in s29-s32 the file holds two
    channels with empty labels, which MNE de-duplicates into ``-0`` and ``-1``; the
    markers are on ``-1``.
    """
    lowered = [c.strip().lower() for c in ch_names]
    return [lowered.index(name) for name in ("status", "", "-1") if name in lowered]


def _transitions(codes: np.ndarray):
    """Samples where the (masked) Status code changes, and the new codes."""
    change = np.flatnonzero(np.diff(codes)) + 1
    if codes.size and codes[0] != 0:
        change = np.concatenate([[0], change])
    return change, codes[change]


def _trial_segments(codes: np.ndarray, sfreq: float):
    """Code-4 onsets and the stimulus end of each (next code 5, at most 60 s later)."""
    at, new = _transitions(codes)
    run_end = np.append(at[1:], codes.size)
    is_onset = (new == DEAP_TRIAL_ONSET_CODE) & (run_end - at >= _MIN_ONSET_S * sfreq)
    onsets = at[is_onset]
    ends5 = at[new == _STIM_END_CODE]
    n_max = int(round(DEAP_STIMULUS_S * sfreq))
    stops = []
    for k, on in enumerate(onsets):
        limit = onsets[k + 1] if k + 1 < len(onsets) else codes.size + n_max
        after = ends5[(ends5 > on) & (ends5 <= limit)]
        stops.append(min(int(after[0]), on + n_max) if after.size else on + n_max)
    return onsets.astype(int), np.asarray(stops, dtype=int)


def _align_by_start_time(onset_s: np.ndarray, start_s: np.ndarray, tol: float):
    """Match onsets to trials through a constant offset between the two clocks.

    Returns, for each onset, the index of its trial in *start_s* (``-1`` if none), or
    ``None`` when no offset explains the data (then matching is left to the caller).
    """
    finite = np.flatnonzero(np.isfinite(start_s))
    if finite.size < 2 or onset_s.size < 2:  # a single pair aligns with any offset
        return None
    best = None
    for d in np.unique(np.round((onset_s[:, None] - start_s[None, finite]).ravel(), 6)):
        resid = np.abs(onset_s[:, None] - start_s[None, finite] - d)
        nearest = resid.min(axis=1)
        ok = nearest <= tol
        score = (int(ok.sum()), -float(nearest[ok].sum()))
        if best is None or score > best[0]:
            best = (score, d)
    d = best[1]
    resid = np.abs(onset_s[:, None] - start_s[None, finite] - d)
    match = np.where(resid.min(axis=1) <= tol, finite[resid.argmin(axis=1)], -1)
    matched = match[match >= 0]
    if matched.size == 0 or np.any(np.diff(matched) <= 0):  # not one-to-one and in order
        return None
    return match


def _presentation_positions(onsets: np.ndarray, trials: pd.DataFrame, sfreq: float,
                            path: Path) -> np.ndarray:
    """For each onset, the row of *trials* (sorted by ``Trial``) it belongs to, or -1."""
    n_on, n_rated = len(onsets), len(trials)
    if n_on == n_rated:
        return np.arange(n_on)
    start_s = trials["Start_time"].to_numpy(dtype=float) / 1e6
    match = _align_by_start_time(onsets / sfreq, start_s, _ALIGN_TOL_S)
    if match is not None and (match >= 0).sum() == min(n_on, n_rated):
        logger.info("%s: %d onsets for %d rated trials; matched through Start_time",
                    path.name, n_on, n_rated)
        return match
    if n_on < n_rated:
        logger.warning(
            "%s: %d trial onsets for %d rated trials and Start_time does not align them; "
            "assuming the onsets are presentation trials 1..%d.", path.name, n_on, n_rated, n_on)
        return np.arange(n_on)
    raise DataFormatError(
        f"{path}: {n_on} trial onsets (Status code 4) but only {n_rated} rated trials in "
        f"{trials.attrs.get('source', 'participant_ratings.csv')}, and Start_time does not "
        "tell which onsets they are; expected at most one onset per rated trial.")


def _output_scale(raw, ch_names, voltage, path: Path) -> np.ndarray:
    """Factors from what MNE returns to the units the Recording reports.

    MNE converts channels whose header unit is µV or mV to volts and leaves the others
    as they are. Voltage channels (EEG, EXG) are reported in µV; the others in the
    header's own unit, i.e. with MNE's scaling undone.
    """
    units = getattr(raw, "_orig_units", {}) or {}
    out = np.empty(len(ch_names))
    for k, (name, is_volt) in enumerate(zip(ch_names, voltage)):
        unit = str(units.get(name, "")).strip()
        if is_volt and (unit in _MNE_UNIT_SCALE or unit == "V"):
            out[k] = 1e6
        else:
            if is_volt:
                logger.warning("%s: channel %s has unit %r, not a voltage; kept as stored",
                               path.name, name, unit)
            out[k] = 1.0 / _MNE_UNIT_SCALE.get(unit, 1.0)
    return out


def read_deap_bdf(path, subject: int, ratings_table: pd.DataFrame) -> Recording:
    """Read one original DEAP recording, ``sXX.bdf``, into video order.

    Parameters
    ----------
    path : str | Path
        The BDF file (48 channels, 49 for s29-s32; 512 Hz; whole session).
    subject : int
        Participant id, as in the ``Participant_id`` column of *ratings_table*.
    ratings_table : pandas.DataFrame | str | Path
        ``participant_ratings.csv`` as returned by :func:`read_participant_ratings`, or
        the path of that file.

    Returns
    -------
    recording : Recording
        Modalities ``eeg`` (the 32 channels in the Geneva/preprocessed-release order,
        whatever the site), ``eog`` (``hEOG = EXG1 - EXG2``, ``vEOG = EXG3 - EXG4``),
        ``emg`` (``zEMG = EXG5 - EXG6``, ``tEMG = EXG7 - EXG8``), ``gsr`` (``GSR1``),
        ``resp``, ``ppg`` (``Plet``) and ``temp``, all at 512 Hz. Baseline = the 3 s
        before each code-4 onset; stimulus = from the onset to the next code 5, at most
        60 s. EEG, EOG and EMG are in µV; the other channels in the units of the file
        header. Trials are indexed by 0-based video id (``Experiment_id - 1``); trials
        without an onset in the file are absent.

    Raises
    ------
    DataNotFoundError
        If *path* does not exist.
    DataFormatError
        If the file is corrupt or truncated, lacks channels, a Status channel or trial
        onsets, an onset is too close to the file's start or end, the participant has no
        usable rows in *ratings_table*, or the signals hold NaN or inf.

    Notes
    -----
    Trial onsets are the samples where ``Status & 0xFF`` becomes 4 (BioSemi system bits
    16-23 are ignored; MNE itself keeps only bits 0-16); code-4 runs shorter than 50 ms
    are taken for trigger glitches. When the file holds fewer onsets
    than the participant has rated trials, each onset is matched to its trial by the
    constant time offset that best aligns the onsets with ``Start_time`` (±3 s); if none
    does, the onsets are taken to be presentation trials 1..n, with a warning.
    """
    path = Path(path)
    if not path.is_file():
        raise DataNotFoundError(f"DEAP BDF file {path} does not exist.")
    if not isinstance(ratings_table, pd.DataFrame):
        ratings_table = read_participant_ratings(ratings_table)
    trials = _subject_trials(ratings_table, int(subject), path)
    trials.attrs["source"] = ratings_table.attrs.get("source", "participant_ratings.csv")
    declared_records = _bdf_header_check(path)

    raw = _open_bdf(path, stim_channel=None)
    ch_names = list(raw.ch_names)
    sfreq = float(raw.info["sfreq"])
    if abs(sfreq - DEAP_SFREQ_BDF) > 1e-6:
        logger.info("%s: sampling rate %g Hz (DEAP records at 512 Hz)", path.name, sfreq)

    # --- channels, selected by name whatever their position ---------------------------
    lowered = {}
    for i, c in enumerate(ch_names):
        lowered.setdefault(c.strip().lower(), i)
    sources = list(DEAP_EEG_GENEVA) + sorted(
        {s for pair in _PERIPHERAL_SOURCES.values() for s in pair},
        key=list(DEAP_BDF_EXTRA).index)
    missing = [c for c in sources if c.lower() not in lowered]
    if missing:
        raise DataFormatError(
            f"{path}: missing channel(s) {', '.join(missing)}; expected the 32 DEAP EEG "
            f"channels and {', '.join(DEAP_BDF_EXTRA)} (found: {', '.join(ch_names)}).")
    picks = [lowered[c.lower()] for c in sources]
    row = {c: k for k, c in enumerate(sources)}

    # --- Status channel and trial onsets ---------------------------------------------
    candidates = _stim_candidates(ch_names)
    if not candidates:
        raise DataFormatError(
            f"{path}: no Status (marker) channel; expected a channel named 'Status', '' or "
            f"'-1' (found: {', '.join(repr(c) for c in ch_names)}).")
    onsets = stops = None
    for idx in candidates:
        stim_raw = _open_bdf(path, stim_channel=idx)  # stim-typed: raw integers, cal = 1
        status = np.rint(_get_data(stim_raw, path, [idx])[0]).astype(np.int64)
        onsets, stops = _trial_segments(status & 0xFF, sfreq)
        if onsets.size:
            stim_name = ch_names[idx]
            break
    if not onsets.size:
        raise DataFormatError(
            f"{path}: no trial onsets (Status code 4, after masking bits 8-23) in channel "
            f"{ch_names[candidates[0]]!r}; expected one per trial.")
    logger.debug("%s: markers on %r, %d onsets", path.name, stim_name, len(onsets))

    rows = _presentation_positions(onsets, trials, sfreq, path)
    keep = rows >= 0
    if declared_records < 0 and len(set(rows[keep].tolist())) < len(trials):
        lost = sorted(set(range(len(trials))) - set(rows[keep].tolist()))
        logger.warning(
            "%s: %d of %d rated trials have no onset (videos %s) and the header declares "
            "-1 (unknown) data records: the file may have been cut short, losing them "
            "(it holds %.1f s).", path, len(lost), len(trials),
            ", ".join(str(int(v)) for v in trials["Experiment_id"].to_numpy()[lost]),
            raw.n_times / sfreq)
    onsets, stops, rows = onsets[keep], stops[keep], rows[keep]
    videos = trials["Experiment_id"].to_numpy()[rows] - 1
    order = np.argsort(videos)
    onsets, stops, rows, videos = onsets[order], stops[order], rows[order], videos[order]

    n_base = int(round(DEAP_BASELINE_S * sfreq))
    n_times = raw.n_times
    for on, stop, video in zip(onsets, stops, videos):
        if on - n_base < 0 or stop > n_times:
            raise DataFormatError(
                f"{path}: the onset of video {video + 1} at {on / sfreq:.2f} s leaves no room "
                f"for the {DEAP_BASELINE_S:g} s baseline or the {(stop - on) / sfreq:g} s "
                f"stimulus in a {n_times / sfreq:.2f} s file; expected the whole trial inside "
                "the recording.")

    # --- signals, one bounded read per trial ------------------------------------------
    volt_sources = set(DEAP_EEG_GENEVA) | {
        s for out in DEAP_DAT_CHANNELS[32:36] for s in _PERIPHERAL_SOURCES[out]}
    scale = _output_scale(raw, [ch_names[i] for i in picks],
                          [c in volt_sources for c in sources], path)
    lengths = stops - onsets
    uniform = bool(np.all(lengths == lengths[0]))
    infos, baseline, stimulus = {}, {}, {}
    for modality, (lo, hi) in DEAP_DAT_SLICES.items():
        names = DEAP_DAT_CHANNELS[lo:hi]
        infos[modality] = ModalityInfo.standard(modality, sfreq, names)
        n_tr = len(onsets)
        baseline[modality] = np.empty((n_tr, len(names), n_base))
        stimulus[modality] = (np.empty((n_tr, len(names), int(lengths[0]))) if uniform
                              else [np.empty((len(names), int(n))) for n in lengths])
    for t, (on, stop) in enumerate(zip(onsets, stops)):
        block = _get_data(raw, path, picks, on - n_base, stop) * scale[:, None]
        for modality, (lo, hi) in DEAP_DAT_SLICES.items():
            for k, out in enumerate(DEAP_DAT_CHANNELS[lo:hi]):
                if modality == "eeg":
                    sig = block[row[out]]
                else:
                    src = _PERIPHERAL_SOURCES[out]
                    sig = block[row[src[0]]] - block[row[src[1]]] if len(src) == 2 else block[
                        row[src[0]]]
                baseline[modality][t][k] = sig[:n_base]
                stimulus[modality][t][k] = sig[n_base:]
    for modality in infos:
        check_finite(baseline[modality], f"{modality} baseline", path)
        for seg in ([stimulus[modality]] if uniform else stimulus[modality]):
            check_finite(seg, f"{modality} stimulus", path)

    ratings = pd.DataFrame(trials.loc[rows, list(_SCALES)].to_numpy(dtype=float),
                           index=videos, columns=[s.lower() for s in _SCALES])
    logger.info("%s: %d trials, markers on %r, stimulus %g-%g s", path.name, len(onsets),
                stim_name, lengths.min() / sfreq, lengths.max() / sfreq)
    return Recording(subject, dataset="DEAP", source=path, modalities=infos,
                     baseline=baseline, stimulus=stimulus, ratings=ratings)


# =================================================================== synthetic writer
_SYSTEM_BITS = 0x1A0000      # idle Status value of s24-s32
_ONSET_SYSTEM_BITS = 0x190000  # their code-4 onsets read 0x190004
_SHOWCASE_IDS = (1, 25, 30, 28, 23, 26, 31)
_NO_FAMILIARITY = (2, 15, 23)
_VOLT = dict(dimension="uV", physical_min=-262144, physical_max=262143,
             digital_min=-8388608, digital_max=8388607, prefilter="HP: DC; LP: 104 Hz")


def _default_ids(n_subjects: int, quirks: bool) -> list[int]:
    if not quirks:
        return list(range(1, n_subjects + 1))
    order = list(_SHOWCASE_IDS) + [s for s in range(1, 33) if s not in _SHOWCASE_IDS]
    return sorted(order[:n_subjects])


def _file_layout(subject: int, quirks: bool):
    """Labels (EEG + extras + stim), stim label position and idle Status value."""
    eeg = DEAP_EEG_TWENTE if subject in DEAP_TWENTE_SUBJECTS else DEAP_EEG_GENEVA
    labels = list(eeg) + list(DEAP_BDF_EXTRA)
    if quirks and 29 <= subject <= 32:
        labels += ["", ""]  # MNE names these "-0" and "-1"; the markers are on the second
    elif quirks and 24 <= subject <= 28:
        labels += [""]
    else:
        labels += ["Status"]
    return labels, (_SYSTEM_BITS if quirks and subject >= 24 else 0)


def _signal_headers(labels) -> list[dict]:
    headers = []
    for i, label in enumerate(labels):
        h = dict(_VOLT, label=label, sample_frequency=int(DEAP_SFREQ_BDF),
                 transducer="Active Electrode")
        if label in ("GSR1", "GSR2"):
            h.update(dimension="Ohm", physical_min=0, physical_max=10000000,
                     transducer="Skin resistance")
        elif label == "Temp":
            h.update(dimension="degC", physical_min=-50, physical_max=100,
                     transducer="Thermistor")
        elif label in ("Resp", "Plet", "Erg1", "Erg2"):
            h.update(transducer="Analog input")
        if i == len(labels) - 1:  # the Status channel: integers written as they are
            h.update(dimension="Boolean", physical_min=-8388608, physical_max=8388607,
                     transducer="Triggers and Status", prefilter="No filtering")
        headers.append(h)
    return headers


class _RecordStream:
    """Feeds ``(n_channels, n)`` blocks to an EdfWriter as whole 1-s data records."""

    def __init__(self, writer, headers, record: int):
        self.writer, self.record = writer, record
        self.lo = np.array([h["physical_min"] for h in headers], float)[:, None]
        self.hi = np.array([h["physical_max"] for h in headers], float)[:, None]
        self.pending = np.empty((len(headers), 0))
        self.n_written = 0

    def add(self, block: np.ndarray) -> None:
        data = np.concatenate([self.pending, np.clip(block, self.lo, self.hi)], axis=1)
        n_full = data.shape[1] // self.record
        for k in range(n_full):
            chunk = np.ascontiguousarray(data[:, k * self.record:(k + 1) * self.record])
            if self.writer.blockWritePhysicalSamples(chunk.ravel()) < 0:
                raise PhysioSyncError("pyedflib failed to write a BDF data record")
        self.n_written += n_full * self.record
        self.pending = data[:, n_full * self.record:]

    def close(self) -> None:
        if self.pending.shape[1]:  # hold the last values up to the end of the record
            self.add(np.repeat(self.pending[:, -1:], self.record - self.pending.shape[1], axis=1))


def _write_subject(path: Path, subject: int, presentation, ratings, seconds: float,
                   effect: float, seed: int, quirks: bool, n_missing: int,
                   courses: StimulusCourses | None = None):
    """Write one session; return the Start_time (µs) of each presentation trial.

    *ratings* are the subject's felt ratings ``(n_trials, 4)``, which drive the signals.
    """
    import pyedflib

    rng = subject_rng(seed, subject)
    sim = SubjectSimulator(rng, effect, courses)
    sfreq = int(DEAP_SFREQ_BDF)
    labels, idle = _file_layout(subject, quirks)
    eeg_names = labels[:32]
    n_trials = len(presentation)
    dropped = set(rng.choice(n_trials, size=n_missing, replace=False).tolist()) if n_missing else ()

    def status_value(code: int) -> int:
        if code == 0:
            return idle
        if code == DEAP_TRIAL_ONSET_CODE and idle:
            return _ONSET_SYSTEM_BITS | code
        return idle | code

    def segment(code: int, secs: float, v: float = 0.0, a: float = 0.0,
                video: int | None = None) -> np.ndarray:
        n = max(int(round(secs * sfreq)), 1)
        # The video's stimulus-locked course; None outside videos.
        course = None if video is None else sim.trial_course(video, n / sfreq)
        block = np.empty((len(labels), n))
        block[:32] = sim.signal("eeg", eeg_names, sfreq, n, v, a, course=course)
        bipolar = np.vstack([sim.signal("eog", None, sfreq, n, v, a, course=course),
                             sim.signal("emg", None, sfreq, n, v, a, course=course)])
        # rows: hEOG, vEOG, zEMG, tEMG
        for x, (plus, minus) in zip(bipolar, DEAP_BDF_BIPOLAR.values()):
            common = 2.0 * rng.standard_normal(n)  # cancels in the difference
            block[labels.index(plus)] = common + x / 2
            block[labels.index(minus)] = common - x / 2
        block[labels.index("GSR1")] = sim.signal("gsr", None, sfreq, n, v, a, course=course)[0]
        for name in ("GSR2", "Erg1", "Erg2"):
            block[labels.index(name)] = rng.normal(0.0, 1.0, n)
        block[labels.index("Resp")] = sim.signal("resp", None, sfreq, n, v, a, course=course)[0]
        block[labels.index("Plet")] = sim.signal("ppg", None, sfreq, n, v, a, course=course)[0]
        block[labels.index("Temp")] = sim.signal("temp", None, sfreq, n, v, a, course=course)[0]
        if len(labels) == 49:
            block[47] = 0.0  # the unlabelled extra channel ("-0" in MNE) carries nothing
        block[-1] = status_value(code)
        return block

    tmp = path.with_name(f".{path.stem}.tmp{os.getpid()}.bdf")
    writer = pyedflib.EdfWriter(str(tmp), len(labels), file_type=pyedflib.FILETYPE_BDF)
    start_us = []
    try:
        headers = _signal_headers(labels)
        writer.setSignalHeaders(headers)
        writer.setStartdatetime(datetime(2011, 1, 1, 9, 0, 0))  # fixed: same seed, same bytes
        writer.setEquipment("BioSemi_ActiveTwo")
        writer.setPatientCode(f"s{subject:02d}")
        stream = _RecordStream(writer, headers, sfreq)
        stream.add(segment(0, 1.0))
        first_code1 = stream.n_written + stream.pending.shape[1]
        # start (1), a short rest baseline (1; 120 s in DEAP), video sync (2)
        for code, secs in ((1, 1.0), (0, 0.5), (1, 2.0), (2, 1.0)):
            stream.add(segment(code, secs))
        for k, video in enumerate(presentation):
            start_us.append(int(round(
                (stream.n_written + stream.pending.shape[1] - first_code1) / sfreq * 1e6)))
            v, a = (latent(r, 1.0, 9.0) for r in ratings[video, :2])
            stream.add(segment(3, 5.0))
            # a dropped onset: BioSemi keeps holding the fixation code through the video
            stream.add(segment(3 if k in dropped else 4, seconds, v, a, video=int(video)))
            stream.add(segment(5, 3.0))
            stream.add(segment(1, float(rng.uniform(1.5, 4.0))))  # rating screen
        for code, secs in ((2, 1.0), (7, 1.0)):
            stream.add(segment(code, secs))
        stream.close()
        writer.close()
        os.replace(tmp, path)
    except BaseException:
        writer.close()
        tmp.unlink(missing_ok=True)
        raise
    return start_us


def make_deap_bdf(out, n_subjects: int = 3, n_trials: int = 4, seconds: float = 10.0,
                  effect: float = 2.0, seed: int = 0, *, quirks: bool = True,
                  subject_ids=None, missing_onsets=None, synchrony: float = 1.0,
                  rating_bias: float = 0.0) -> Path:
    """Write synthetic original-DEAP recordings (``sXX.bdf``) and ``participant_ratings.csv``.

    Each file is a BioSemi BDF at 512 Hz holding one whole session in presentation
    order: Status events ``1`` (start), ``1`` (rest baseline, 2 s here, 120 s in DEAP),
    ``2`` (sync), then per trial ``3`` (5 s fixation) -> ``4`` (the video, *seconds*
    long) -> ``5`` (3 s) -> ``1`` (rating screen, 1.5-4 s at random), then ``2`` and
    ``7``. The Status value is held between events. Channels: 32 EEG (Twente order for
    ids 1-22, Geneva order otherwise), ``EXG1``-``EXG8`` (unipolar, so that
    ``EXG1 - EXG2`` = hEOG, ``EXG3 - EXG4`` = vEOG, ``EXG5 - EXG6`` = zEMG,
    ``EXG7 - EXG8`` = tEMG), ``GSR1`` (Ohm), ``GSR2``, ``Erg1``, ``Erg2`` (noise),
    ``Resp``, ``Plet``, ``Temp`` (degC), and the Status channel last. During each video
    the signals follow that video's valence and arousal ratings and its stimulus-locked
    time course (the same course for every participant, whatever the presentation
    order); elsewhere they are neutral.

    Parameters
    ----------
    out : str | Path
        Folder to create (or fill).
    n_subjects : int
        Number of participant files.
    n_trials : int
        Videos per participant (40 in DEAP).
    seconds : float
        Length of each video (60 s in DEAP).
    effect : float
        Strength of the emotion effect in the signals; 0 means none.
    seed : int
        Seed; the same arguments write the same files.
    quirks : bool
        Emit the quirks of the real files, chosen by participant id:

        * ids 24-28: the Status channel has an empty label, and its idle value has the
          BioSemi system bits ``0x1A0000`` set; trial onsets read ``0x190004``, other
          codes ``0x1A0000 | code``;
        * ids 29-32: 49 channels, the last two with empty labels (MNE renames them
          ``-0`` and ``-1``); the markers are on the last (``-1``), with the same
          system bits; ``-0`` is flat;
        * id 28: ``min(3, n_trials - 1)`` code-4 onsets are missing (s28 has 37 of 40);
        * ids 2, 15, 23: ``Familiarity`` is empty.

        With ``quirks=False`` every file has 48 channels, a ``Status`` channel without
        system bits and all onsets (the EEG order still follows the site).
    subject_ids : sequence of int | None
        Participant ids (1-32) to write, ``n_subjects`` of them. By default ``1..n``
        without quirks; with quirks, the first *n_subjects* of ``1, 25, 30, 28, 23, 26,
        31``, then the remaining ids ascending, so the default 3-subject set is
        ``[1, 25, 30]`` (a Twente ``Status`` file, a ``''`` file, a 49-channel file).
    missing_onsets : dict of int -> int | None
        ``{participant id: number of code-4 onsets to drop}``; the dropped trials are
        chosen at random (the video still plays, the Status keeps code 3). Updates the
        default ``{28: 3}`` of ``quirks=True``.
    synchrony : float
        Strength of each video's stimulus-locked time course, shared by its viewers
        (see :mod:`physiosync.datasets.synthetic`); 0 turns it off.
    rating_bias : float
        SD of a per-participant offset of the ratings, as a fraction of the 1-9 range;
        it shifts the ratings in the CSV, not the signals. 0 turns it off.

    Returns
    -------
    out : Path
        The folder written.

    Notes
    -----
    ``Start_time`` in the CSV is the time, in µs, from the first code-1 event to the
    code-3 (fixation) onset of the trial. The real table's zero point is not documented;
    the reader only relies on a constant offset between the two clocks. Ratings come
    from ``draw_ratings(seed, max(subject_ids), n_trials, ...)`` indexed by
    ``[id - 1, video]``, so ids ``1..n`` get the same ratings as :func:`make_deap`
    with the same seed, sizes and *rating_bias*.
    """
    out = Path(out)
    ids = _default_ids(n_subjects, quirks) if subject_ids is None else [int(s) for s in subject_ids]
    if len(ids) != n_subjects or len(set(ids)) != len(ids) or not all(1 <= s <= 32 for s in ids):
        raise PhysioSyncError(
            f"subject_ids must be {n_subjects} distinct ids in 1..32 (one per subject), got "
            f"{subject_ids!r}.")
    if not 1 <= n_trials <= 40:
        raise PhysioSyncError(f"n_trials must be an integer in [1, 40], got {n_trials!r}.")
    if not seconds > 0:
        raise PhysioSyncError(f"seconds must be positive, got {seconds!r}.")
    synchrony, rating_bias = check_simulation_options(synchrony, rating_bias)
    missing = {28: 3} if quirks else {}
    missing.update({int(k): int(v) for k, v in (missing_onsets or {}).items()})
    out.mkdir(parents=True, exist_ok=True)
    draw = simulate_ratings(seed, max(ids), n_trials, low=1.0, high=9.0, integer=False,
                            n_scales=4, rating_bias=rating_bias)
    ratings = draw.reported
    courses = StimulusCourses(seed, synchrony)
    rows = []
    for s in progress(sorted(ids), desc="synthetic DEAP BDF"):
        order_rng = np.random.default_rng([int(seed), int(s), 1])
        presentation = order_rng.permutation(n_trials)
        n_missing = min(max(missing.get(s, 0), 0), n_trials - 1)
        start_us = _write_subject(out / f"s{s:02d}.bdf", s, presentation, draw.felt[s - 1],
                                  seconds, effect, seed, quirks, n_missing, courses)
        familiarity = order_rng.integers(1, 6, n_trials).astype(float)
        if quirks and s in _NO_FAMILIARITY:
            familiarity[:] = np.nan
        for k, video in enumerate(presentation):
            v, a, d, lk = ratings[s - 1, video]
            rows.append((s, k + 1, video + 1, start_us[k], v, a, d, lk, familiarity[video]))
    table = pd.DataFrame(rows, columns=RATINGS_REQUIRED + RATINGS_OPTIONAL)
    table["Familiarity"] = table["Familiarity"].astype("Int64")
    csv = out / "participant_ratings.csv"
    tmp = csv.with_name(f".{csv.name}.tmp{os.getpid()}")
    try:
        table.to_csv(tmp, index=False)
        os.replace(tmp, csv)
    finally:
        tmp.unlink(missing_ok=True)
    logger.info("wrote %d synthetic DEAP BDF subjects %s to %s", len(ids), sorted(ids), out)
    return out

"""The original DEAP recordings: BioSemi BDF files plus ``participant_ratings.csv``.

Reader
    :func:`read_participant_ratings` parses DEAP's ratings table and
    :func:`read_deap_bdf` turns one ``sXX.bdf`` into a :class:`~physiosync.datasets.Recording`
    in video order, with the quirks of the real files handled (docs/data.md):
    the Status channel is called ``Status``, ``''`` or, through MNE, ``-1``; BioSemi
    system bits are set in it; some files hold fewer than 40 trial onsets; trials are in
    presentation order; Twente and Geneva files store the EEG in different orders.

:func:`physiosync.synthetic.make_deap_bdf` writes synthetic files with the same quirks.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .._logging import logger
from ..exceptions import DataFormatError, DataNotFoundError
from ._channels import (DEAP_BASELINE_S, DEAP_BDF_BIPOLAR, DEAP_BDF_EXTRA, DEAP_DAT_CHANNELS,
                        DEAP_DAT_SLICES, DEAP_EEG_GENEVA, DEAP_RATING_SCALE as RATING_SCALE,
                        DEAP_SFREQ_BDF, DEAP_STIMULUS_S, DEAP_TRIAL_ONSET_CODE)
from ._bdf import (bdf_header_check as _bdf_header_check, get_data as _get_data,
                   open_bdf as _open_bdf, output_scale as _output_scale)
from .base import ModalityInfo, Recording, check_finite, first_off_scale

__all__ = ["read_participant_ratings", "read_deap_bdf"]

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
    off = first_off_scale(out[list(_SCALES)].to_numpy(), *RATING_SCALE)
    if off is not None:  # empty (NaN) ratings are refused per participant, when read
        row, col, value = off
        raise DataFormatError(
            f"{path}: participant {out['Participant_id'].iloc[row]}, Trial "
            f"{out['Trial'].iloc[row]} (line {row + 2}): {_SCALES[col]} rating {value:g} is "
            f"outside the DEAP scale {RATING_SCALE[0]:g}-{RATING_SCALE[1]:g}; expected "
            "self-assessment ratings from 1 to 9.")
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
    # the recording as it is: the filter edges its header declares (MNE parses them
    # from the prefilter field; none: 0 Hz and Nyquist) and BioSemi's CMS/DRL reference
    signal = {"highpass": float(raw.info["highpass"] or 0.0),
              "lowpass": float(raw.info["lowpass"] or sfreq / 2),
              "processing": f"DEAP original BioSemi recording at {sfreq:g} Hz, unprocessed "
                            "(CMS/DRL reference, filters as the BDF header declares)"}
    for modality, (lo, hi) in DEAP_DAT_SLICES.items():
        names = DEAP_DAT_CHANNELS[lo:hi]
        infos[modality] = ModalityInfo.standard(modality, sfreq, names, **signal)
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

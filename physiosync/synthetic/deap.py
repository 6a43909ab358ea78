"""Synthetic DEAP in both releases' formats.

* :func:`make_deap` -- ``data_preprocessed_python/sXX.dat``: Python-2 protocol-2 pickles
  of ``{"labels": (n_trials, 4) float64, "data": (n_trials, 40, n_samples) float64}``.
* :func:`make_deap_bdf` -- ``data_original/sXX.bdf``: BioSemi BDF files with the real
  files' quirks, plus ``participant_ratings.csv``.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd

from .._logging import logger, progress, verbose
from .._utils import atomic_write
from ..datasets._channels import (DEAP_BDF_BIPOLAR, DEAP_BDF_EXTRA, DEAP_DAT_SLICES,
                                  DEAP_EEG_GENEVA, DEAP_EEG_TWENTE, DEAP_SFREQ_BDF,
                                  DEAP_SFREQ_DAT, DEAP_TRIAL_ONSET_CODE, DEAP_TWENTE_SUBJECTS)
from ..datasets._deap_bdf import RATINGS_OPTIONAL, RATINGS_REQUIRED
from ._bdf import bdf_stream
from ._guard import DEAP_FILES, check_folder, recording_synth
from ._py2_pickle import write_py2_pickle
from ..exceptions import PhysioSyncError
from ..preprocessing.transforms import release_preprocess
from ._dynamics import Simulation
from ._simulate import check_simulation_options, check_sizes, subject_rng

__all__ = ["make_deap", "make_deap_bdf"]


# ---------------------------------------------------------------- preprocessed release (.dat)
@verbose
def make_deap(out, n_subjects: int = 4, n_trials: int = 8, seconds: float = 10.0,
              effect: float = 2.0, seed: int = 0, *, baseline_seconds: float = 3.0,
              synchrony: float = 1.0, rating_bias: float = 0.0, affect: str = "static",
              affect_share: float | None = None, control: str = "none",
              verbose: bool | str | int | None = None) -> Path:
    """Write a synthetic ``data_preprocessed_python`` folder.

    As in the release, the EEG of every trial (baseline and stimulus together) is
    band-passed 4-45 Hz and re-referenced to the common average
    (:func:`~physiosync.preprocessing.transforms.release_preprocess`); the peripheral
    channels are written as simulated.

    Parameters
    ----------
    out : str | Path
        Folder to create (or fill); ``sXX.dat`` files are written into it.
    n_subjects : int
        Number of participants, at most 32 (the real release has 32).
    n_trials : int
        Trials (videos) per participant, at most 40 (the real release has 40).
    seconds : float
        Stimulus length in seconds (60 in the real release).
    %(effect)s
    seed : int
        Seed; the same seed writes the same files.
    baseline_seconds : float
        Pre-trial baseline length (3 s in the real release).
    synchrony : float
        Strength of the stimulus-locked time course shared by the subjects who watch
        a video (see the module docstring); 0 turns it off.
    rating_bias : float
        SD of the per-subject rating offset, as a fraction of the rating range; 0
        turns it off.
    %(affect)s
    %(verbose)s

    Returns
    -------
    out : Path
        The folder written.
    """
    check_sizes(n_subjects, n_trials, seconds, 32, 40)
    options = check_simulation_options(synchrony, rating_bias, affect=affect,
                                       affect_share=affect_share, control=control)
    out = Path(out)
    check_folder(out, [f"s{s:02d}.dat" for s in range(1, n_subjects + 1)], DEAP_FILES)
    out.mkdir(parents=True, exist_ok=True)
    with recording_synth(out):
        _write_dat_subjects(out, n_subjects, n_trials, seconds, effect, seed, options,
                            baseline_seconds)
    logger.info("wrote %d synthetic DEAP subjects to %s", n_subjects, out)
    return out


def _write_dat_subjects(out, n_subjects, n_trials, seconds, effect, seed, options,
                        baseline_seconds) -> None:
    sfreq = DEAP_SFREQ_DAT
    n_base = int(round(baseline_seconds * sfreq))
    n_stim = int(round(seconds * sfreq))
    simulation = Simulation(seed, options, effect, n_subjects, n_trials, n_stim / sfreq,
                            low=1.0, high=9.0, integer=False, n_scales=4)
    for s in progress(range(1, n_subjects + 1), desc="synthetic DEAP"):
        sim = simulation.subject(s)
        data = np.empty((n_trials, 40, n_base + n_stim))
        for t in range(n_trials):
            state = sim.trial(t, n_stim / sfreq)
            for modality, (lo, hi) in DEAP_DAT_SLICES.items():
                names = DEAP_EEG_GENEVA if modality == "eeg" else [modality] * (hi - lo)
                data[t, lo:hi, :n_base] = sim.signal(modality, names, sfreq, n_base, 2 * t)
                data[t, lo:hi, n_base:] = sim.signal(modality, names, sfreq, n_stim,
                                                     2 * t + 1, state)
            # The release band-passed the EEG of each whole trial to 4-45 Hz and
            # re-referenced it to the common average; so do the synthetic files, which
            # removes the slow drift and most of the blinks' energy (below 4 Hz).
            eeg = slice(*DEAP_DAT_SLICES["eeg"])
            data[t, eeg] = release_preprocess(data[t, eeg], sfreq, eeg=True)
        write_py2_pickle({"labels": simulation.reported[s - 1], "data": data},
                         out / f"s{s:02d}.dat")


# ---------------------------------------------------------------- original recordings (BDF)
_SYSTEM_BITS = 0x1A0000      # idle Status value of s24-s32
_ONSET_SYSTEM_BITS = 0x190000  # their code-4 onsets read 0x190004
_SHOWCASE_IDS = (1, 25, 30, 28, 23, 26, 31)
_NO_FAMILIARITY = (2, 15, 23)


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


def _write_subject(path: Path, subject: int, presentation, simulation: Simulation,
                   seconds: float, seed: int, quirks: bool, n_missing: int):
    """Write one session; return the Start_time (µs) of each presentation trial."""
    rng = subject_rng(seed, subject)
    sim = simulation.subject(subject, rng)
    n_segments = [0]  # the index of each segment of the session (the noise streams' key)
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

    def segment(code: int, secs: float, video: int | None = None) -> np.ndarray:
        n = max(int(round(secs * sfreq)), 1)
        key = n_segments[0]
        n_segments[0] += 1
        # The video's state (its ratings and stimulus-locked course); None outside videos.
        state = None if video is None else sim.trial(video, n / sfreq)

        def signal(modality, names=None):
            return sim.signal(modality, names, sfreq, n, key, state)

        block = np.empty((len(labels), n))
        block[:32] = signal("eeg", eeg_names)
        bipolar = np.vstack([signal("eog"), signal("emg")])
        # rows: hEOG, vEOG, zEMG, tEMG
        for x, (plus, minus) in zip(bipolar, DEAP_BDF_BIPOLAR.values()):
            common = 2.0 * rng.standard_normal(n)  # cancels in the difference
            block[labels.index(plus)] = common + x / 2
            block[labels.index(minus)] = common - x / 2
        block[labels.index("GSR1")] = signal("gsr")[0]
        for name in ("GSR2", "Erg1", "Erg2"):
            block[labels.index(name)] = rng.normal(0.0, 1.0, n)
        block[labels.index("Resp")] = signal("resp")[0]
        block[labels.index("Plet")] = signal("ppg")[0]
        block[labels.index("Temp")] = signal("temp")[0]
        if len(labels) == 49:
            block[47] = 0.0  # the unlabelled extra channel ("-0" in MNE) carries nothing
        block[-1] = status_value(code)
        return block

    start_us = []
    # fixed start time: same seed, same bytes
    with bdf_stream(path, labels, sfreq, patient=f"s{subject:02d}",
                    start=datetime(2011, 1, 1, 9, 0, 0)) as stream:
        stream.add(segment(0, 1.0))
        first_code1 = stream.position
        # start (1), a short rest baseline (1; 120 s in DEAP), video sync (2)
        for code, secs in ((1, 1.0), (0, 0.5), (1, 2.0), (2, 1.0)):
            stream.add(segment(code, secs))
        for k, video in enumerate(presentation):
            start_us.append(int(round((stream.position - first_code1) / sfreq * 1e6)))
            stream.add(segment(3, 5.0))
            # a dropped onset: BioSemi keeps holding the fixation code through the video
            stream.add(segment(3 if k in dropped else 4, seconds, video=int(video)))
            stream.add(segment(5, 3.0))
            stream.add(segment(1, float(rng.uniform(1.5, 4.0))))  # rating screen
        for code, secs in ((2, 1.0), (7, 1.0)):
            stream.add(segment(code, secs))
    return start_us


@verbose
def make_deap_bdf(out, n_subjects: int = 3, n_trials: int = 4, seconds: float = 10.0,
                  effect: float = 2.0, seed: int = 0, *, quirks: bool = True,
                  subject_ids=None, missing_onsets=None, synchrony: float = 1.0,
                  rating_bias: float = 0.0, affect: str = "static",
                  affect_share: float | None = None, control: str = "none",
                  verbose: bool | str | int | None = None) -> Path:
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
    %(effect)s
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
        (see :mod:`physiosync.synthetic`); 0 turns it off.
    rating_bias : float
        SD of a per-participant offset of the ratings, as a fraction of the 1-9 range;
        it shifts the ratings in the CSV, not the signals. 0 turns it off.
    %(affect)s
    %(verbose)s

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
    check_sizes(n_subjects, n_trials, seconds, 32, 40)
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
    options = check_simulation_options(synchrony, rating_bias, affect=affect,
                                       affect_share=affect_share, control=control)
    missing = {28: 3} if quirks else {}
    missing.update({int(k): int(v) for k, v in (missing_onsets or {}).items()})
    check_folder(out, [f"s{s:02d}.bdf" for s in ids] + ["participant_ratings.csv"],
                 DEAP_FILES)
    out.mkdir(parents=True, exist_ok=True)
    with recording_synth(out):
        video_seconds = max(int(round(seconds * DEAP_SFREQ_BDF)), 1) / DEAP_SFREQ_BDF
        simulation = Simulation(seed, options, effect, max(ids), n_trials, video_seconds,
                                low=1.0, high=9.0, integer=False, n_scales=4)
        ratings = simulation.reported
        rows = []
        for s in progress(sorted(ids), desc="synthetic DEAP BDF"):
            order_rng = np.random.default_rng([int(seed), int(s), 1])
            presentation = order_rng.permutation(n_trials)
            n_missing = min(max(missing.get(s, 0), 0), n_trials - 1)
            start_us = _write_subject(out / f"s{s:02d}.bdf", s, presentation, simulation,
                                      seconds, seed, quirks, n_missing)
            familiarity = order_rng.integers(1, 6, n_trials).astype(float)
            if quirks and s in _NO_FAMILIARITY:
                familiarity[:] = np.nan
            for k, video in enumerate(presentation):
                v, a, d, lk = ratings[s - 1, video]
                rows.append((s, k + 1, video + 1, start_us[k], v, a, d, lk,
                             familiarity[video]))
        table = pd.DataFrame(rows, columns=RATINGS_REQUIRED + RATINGS_OPTIONAL)
        table["Familiarity"] = table["Familiarity"].astype("Int64")
        csv = out / "participant_ratings.csv"
        atomic_write(csv, table.to_csv(index=False))
    logger.info("wrote %d synthetic DEAP BDF subjects %s to %s", len(ids), sorted(ids), out)
    return out

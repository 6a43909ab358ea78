"""Synthetic AMIGOS: ``Data_Preprocessed_PXX.mat`` files (MATLAB v5) with the release's layout.

Each participant's file holds the four 1xN cells of the preprocessed release
(``joined_data``, ``labels_selfassessment``, ``labels_ext_annotation``, ``VideoIDs``),
see :mod:`physiosync.datasets.amigos`, with the release's quirks: participants without
long-video data, an empty trial and a trial holding NaN.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .._logging import logger, progress, verbose
from .._utils import atomic_open
from ..datasets.amigos import (AMIGOS_BASELINE_S, AMIGOS_COLUMNS, AMIGOS_ECG, AMIGOS_EEG,
                               AMIGOS_SFREQ, AMIGOS_VIDEOS, FILE_PATTERN,
                               N_COLUMNS, N_SHORT, N_SUBJECTS, N_TRIALS, NO_LONG_VIDEOS,
                               SCALE_COLUMNS, file_name)
from ..exceptions import PhysioSyncError
from ..preprocessing.transforms import release_preprocess
from ._dynamics import Simulation
from ._guard import check_folder, recording_synth
from ._matwrite import write_mat
from ._ratings import latent
from ._simulate import check_simulation_options, check_sizes
from .dreamer import _cell_of, synthetic_clip_seconds

__all__ = ["make_amigos", "amigos_clip_seconds"]

#: Length of the external annotators' segments.
SEGMENT_S = 20.0
#: Order of the simulated scales (the simulator drives the signals with the first two:
#: valence, arousal) in the file's ``labels_selfassessment`` order.
_SIM_SCALES = ("valence", "arousal", "dominance", "liking", "familiarity")
_TO_FILE = [_SIM_SCALES.index(c) for c in SCALE_COLUMNS]


def amigos_clip_seconds(n_trials: int, seconds: float, seed: int,
                        long_seconds: float | None = None) -> np.ndarray:
    """Lengths (whole seconds) of the clips :func:`make_amigos` writes: the first 16
    (short videos) spread around *seconds*, any beyond them around *long_seconds*
    (``None``: ``4 * seconds``), as :func:`~physiosync.synthetic.dreamer.synthetic_clip_seconds`
    spreads them.

    Parameters
    ----------
    n_trials : int
        Videos per participant.
    seconds : float
        Typical short-clip length.
    seed : int
        The writer's seed.
    long_seconds : float | None
        Typical long-clip length.

    Returns
    -------
    lengths : ndarray of int, shape (n_trials,)
    """
    long_seconds = 4.0 * float(seconds) if long_seconds is None else long_seconds
    n_short = min(n_trials, N_SHORT)
    return np.concatenate([
        synthetic_clip_seconds(n_short, seconds, seed),
        synthetic_clip_seconds(n_trials - n_short, long_seconds, seed + 1)
        if n_trials > n_short else np.zeros(0, int)]).astype(int)


def _pairs(value, what: str) -> set:
    try:
        out = {(int(s), int(t)) for s, t in value}
    except (TypeError, ValueError):
        raise PhysioSyncError(f"{what} must be (participant, trial) pairs, got "
                              f"{value!r}.") from None
    return out


def _boxes(v: float, a: float, rng: np.random.Generator) -> np.ndarray:
    """The seven basic-emotion checkboxes of one trial from its latent valence and arousal."""
    # neutral, disgust, happiness, surprise, anger, fear, sadness
    drive = np.array([0.6 - abs(v) - abs(a), -v + 0.2 * a - 0.4, v - 0.2, a - 0.3,
                      -v + a - 0.6, -v + a - 0.5, -v - a - 0.3])
    boxes = rng.random(7) < 1.0 / (1.0 + np.exp(-3.0 * drive))
    if not boxes.any():
        boxes[int(np.argmax(drive))] = True
    return boxes.astype(np.float64)


def _segments(total_s: float, v: float, a: float, rng) -> np.ndarray:
    """External annotations of one trial: ``(segments x 3)`` segment, valence, arousal.

    The release's segments: the first 20 s (baseline and first 15 s of the clip), then
    every 20 s from 5 s on, the last one the final 20 s; values centred on 0.
    """
    k = max(1, int(np.ceil(total_s / SEGMENT_S - 1e-9)))
    va = np.clip(np.array([v, a]) + rng.normal(0.0, 0.25, (k, 2)), -1.0, 1.0)
    return np.column_stack([np.arange(1, k + 1, dtype=float), np.round(va, 3)])


@verbose
def make_amigos(out, n_subjects: int = 3, n_trials: int = N_TRIALS, seconds: float = 10.0,
                effect: float = 2.0, seed: int = 0, *, long_seconds: float | None = None,
                layout: str = "nested", no_long_videos=NO_LONG_VIDEOS,
                empty_trials=((2, 5),), nan_trials=((1, 2),), synchrony: float = 1.0,
                rating_bias: float = 0.0, affect: str = "static",
                affect_share: float | None = None, control: str = "none",
                verbose: bool | str | int | None = None) -> Path:
    """Write synthetic ``Data_Preprocessed_PXX.mat`` files with the release's layout.

    Every trial is the 5 s before the clip followed by the clip, at 128 Hz, 17 columns
    (14 EEG, ECG right, ECG left, GSR), time-major. The EEG of each whole trial is
    band-passed 4-45 Hz and re-referenced to the common average, as the release did; the
    ECG is in µV and the GSR is skin conductance in µS. Signals come from the package's
    simulator (:mod:`physiosync.synthetic`): the emotion effect follows each trial's
    felt valence and arousal, and each video has a stimulus-locked time course shared by
    all its viewers and by the EEG, ECG and GSR. The self-assessments are continuous
    1-9 ratings (two decimals) of arousal, valence, dominance, liking and familiarity,
    then seven 0/1 basic-emotion checkboxes drawn from the reported valence and arousal;
    the external annotations follow them per 20 s segment.

    Parameters
    ----------
    out : str | Path
        Folder to create (or fill).
    n_subjects : int
        Participants, 1..40 (40 in the release), ``P01`` .. on.
    n_trials : int
        Videos per participant, 1..20 (20 in the release): the first 16 are the short
        videos, any beyond them the long ones.
    seconds : float
        Typical short-clip length; each short clip gets ``seconds`` +/- up to 30 % in
        whole seconds, the same for every participant.
    %(effect)s
    seed : int
        Seed; the same seed writes the same files.
    long_seconds : float | None
        Typical long-clip length, spread in the same way (``None``: ``4 * seconds``;
        14-24 min in the release).
    layout : {"nested", "flat"}
        ``"nested"``: one folder per participant,
        ``out/Data_Preprocessed_P01/Data_Preprocessed_P01.mat``, as the release's zip
        files unpack; ``"flat"``: every file in *out*.
    no_long_videos : iterable of int
        Participants whose long-video trials (16-19) are empty (``0x0`` data, ``1x0``
        ratings), as P08, P24 and P28 in the release (the default).
    empty_trials : iterable of (int, int)
        (participant, 0-based trial) pairs written as empty trials.
    nan_trials : iterable of (int, int)
        (participant, trial) pairs whose data hold NaN (one second of every column, in
        the middle of the clip).
        Pairs and participants that are not written are ignored.
    synchrony, rating_bias
        As for :func:`~physiosync.synthetic.make_deap`.
    %(affect)s
    %(verbose)s

    Returns
    -------
    out : Path
        The folder written. Each file is written to a temporary name and renamed, so it
        is either complete or absent.
    """
    check_sizes(n_subjects, n_trials, seconds, N_SUBJECTS, N_TRIALS)
    options = check_simulation_options(synchrony, rating_bias, affect=affect,
                                       affect_share=affect_share, control=control)
    if layout not in ("nested", "flat"):
        raise PhysioSyncError(f"layout must be 'nested' or 'flat', got {layout!r}.")
    long_seconds = 4.0 * float(seconds) if long_seconds is None else long_seconds
    if not long_seconds > 0:
        raise PhysioSyncError(f"long_seconds must be positive, got {long_seconds!r}.")
    try:
        no_long = {int(s) for s in no_long_videos}
    except (TypeError, ValueError):
        raise PhysioSyncError(f"no_long_videos must be participant ids, got "
                              f"{no_long_videos!r}.") from None
    empty, nan = _pairs(empty_trials, "empty_trials"), _pairs(nan_trials, "nan_trials")
    out = Path(out).expanduser()
    names = [file_name(s) for s in range(1, n_subjects + 1)]
    targets = {s: (out / n[:-4] / n if layout == "nested" else out / n)
               for s, n in zip(range(1, n_subjects + 1), names)}
    # no participant file of someone else's, flat or in a participant's folder, is
    # replaced or joined, whichever layout is written
    check_folder(out, names if layout == "flat" else (), FILE_PATTERN)
    folders = {p.parent for p in targets.values()} if layout == "nested" else set()
    if out.is_dir():
        folders |= {p for p in out.iterdir() if p.is_dir() and FILE_PATTERN.match(p.name + ".mat")}
    for folder in sorted(folders):
        check_folder(folder, [file_name(int(folder.name[-2:]))], FILE_PATTERN)
    out.mkdir(parents=True, exist_ok=True)

    sfreq = AMIGOS_SFREQ
    clip_s = amigos_clip_seconds(n_trials, seconds, seed, long_seconds).astype(float)
    simulation = Simulation(seed, options, effect, n_subjects, n_trials, clip_s, low=1.0,
                            high=9.0, integer=False, n_scales=len(_SIM_SCALES))
    n_base = int(round(AMIGOS_BASELINE_S * sfreq))
    for s in progress(range(1, n_subjects + 1), desc="synthetic AMIGOS"):
        sim = simulation.subject(s)
        labels_rng = np.random.default_rng([int(seed), 2018, s])  # not the signals' streams
        jd, sa, ext = [], [], []
        for t in range(n_trials):
            n_stim = int(round(clip_s[t] * sfreq))
            state = sim.trial(t, clip_s[t])
            trial = np.empty((n_base + n_stim, N_COLUMNS))
            for m, (lo, hi) in AMIGOS_COLUMNS.items():
                ch = {"eeg": AMIGOS_EEG, "ecg": AMIGOS_ECG, "gsr": ("GSR",)}[m]
                base = sim.signal(m, ch, sfreq, n_base, 2 * t)
                stim = sim.signal(m, ch, sfreq, n_stim, 2 * t + 1, state)
                x = np.concatenate([base, stim], axis=-1)
                if m == "eeg":  # the release's 4-45 Hz band-pass and average reference
                    x = release_preprocess(x, sfreq, eeg=True)
                elif m == "gsr":  # the simulator's skin resistance (Ohm) -> conductance (µS)
                    x = 1e6 / x
                trial[:, lo:hi] = x.T
            reported = simulation.reported[s - 1, t]
            v, a = (latent(r, 1.0, 9.0) for r in reported[:2])
            boxes = _boxes(v, a, labels_rng)
            segments = _segments(clip_s[t] + AMIGOS_BASELINE_S, v, a, labels_rng)
            if (s, t) in nan:
                mid = n_base + n_stim // 2
                trial[mid:mid + int(sfreq)] = np.nan
            if (s, t) in empty or (s in no_long and t >= N_SHORT):
                trial, rating, segments = np.zeros((0, 0)), np.zeros((1, 0)), np.zeros((0, 0))
            else:
                rating = np.concatenate([reported[_TO_FILE], boxes])[None, :]
            jd.append(trial)
            sa.append(rating)
            ext.append(segments)
        variables = {"VideoIDs": _cell_of(AMIGOS_VIDEOS[:n_trials], (1, n_trials)),
                     "joined_data": _cell_of(jd, (1, n_trials)),
                     "labels_ext_annotation": _cell_of(ext, (1, n_trials)),
                     "labels_selfassessment": _cell_of(sa, (1, n_trials))}
        path = targets[s]
        path.parent.mkdir(parents=True, exist_ok=True)
        with recording_synth(path.parent), atomic_open(path, "wb") as f:
            write_mat(f, variables, oned_as="row")
    logger.info("wrote %d synthetic AMIGOS participants (%d videos, %s layout) to %s",
                n_subjects, n_trials, layout, out)
    return out



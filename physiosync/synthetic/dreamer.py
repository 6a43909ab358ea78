"""Synthetic DREAMER: one ``DREAMER.mat`` (MATLAB v5) with the release's struct layout."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .._logging import logger, progress, verbose
from .._utils import atomic_open
from ._guard import check_folder, recording_synth
from ._matwrite import write_mat
from ..datasets._channels import DREAMER_BASELINE_S, DREAMER_ECG, DREAMER_EEG, DREAMER_SFREQ
from ..datasets.dreamer import (FILE_NAME, MODALITY_FIELDS, N_SUBJECTS, N_TRIALS, SCORE_FIELDS,
                                SIGNAL_FIELDS)
from ..exceptions import PhysioSyncError
from ._dynamics import Simulation
from ._simulate import check_simulation_options, check_sizes, subject_rng

__all__ = ["make_dreamer", "synthetic_clip_seconds"]


def synthetic_clip_seconds(n_trials: int, seconds: float, seed: int) -> np.ndarray:
    """Stimulus lengths (whole seconds) that :func:`make_dreamer` gives the clips.

    Every participant watched the same clips, so the lengths depend on the trial only:
    ``seconds`` +/- up to 30 % (spread evenly over that range, in random order),
    rounded to whole seconds (at least 1 s), so that the
    128 Hz EEG and the 256 Hz ECG of a clip cover exactly the same time.

    Parameters
    ----------
    n_trials : int
        Number of clips.
    seconds : float
        Typical clip length.
    seed : int
        The writer's seed.

    Returns
    -------
    lengths : ndarray of int, shape (n_trials,)
    """
    n_trials = int(n_trials)
    rng = np.random.default_rng([int(seed), 2018])
    # evenly spread factors in a random order, so that the lengths really differ
    factors = rng.permutation(np.linspace(0.7, 1.3, n_trials)) if n_trials > 1 else np.ones(1)
    return np.maximum(np.rint(float(seconds) * factors), 1).astype(int)


def _cell_of(items, shape) -> np.ndarray:
    out = np.empty(shape, dtype=object)
    for i, item in enumerate(items):
        out.flat[i] = item
    return out


@verbose
def make_dreamer(out, n_subjects: int = 3, n_trials: int = 4, seconds: float = 10.0,
                 effect: float = 2.0, seed: int = 0, *,
                 baseline_seconds: float = DREAMER_BASELINE_S, synchrony: float = 1.0,
                 rating_bias: float = 0.0, affect: str = "static",
                 affect_share: float | None = None, control: str = "none",
                 verbose: bool | str | int | None = None) -> Path:
    """Write a synthetic ``DREAMER.mat`` with the exact struct layout of the release.

    The file is a zlib-compressed MATLAB v5 MAT-file that ``scipy.io.loadmat`` reads in
    all the ways public loaders do (``[0, 0]`` hops, positional indexing, and
    ``squeeze_me=True, struct_as_record=False`` attribute access), see the module
    docstring for the layout. EEG (14 channels, 128 Hz, with an Emotiv-like DC offset
    of about 4200 µV) and ECG (2 leads, 256 Hz) come from
    :class:`~physiosync.synthetic.SubjectSimulator`; baselines are neutral,
    stimuli follow the trial's valence and arousal scores (integers 1-5) and the clip's
    stimulus-locked time course, shared by every participant and by the EEG and ECG.

    Parameters
    ----------
    out : str | Path
        The file to write if it ends in ``.mat``; otherwise a folder (created if needed)
        into which ``DREAMER.mat`` is written.
    n_subjects : int
        Participants, 1..23 (23 in the release).
    n_trials : int
        Film clips per participant, 1..18 (18 in the release).
    seconds : float
        Typical clip length; each clip gets ``seconds`` +/- up to 30 % in whole seconds,
        the same for every participant (see ``synthetic_clip_seconds()``).
    %(effect)s
    seed : int
        Seed; the same seed writes the same data.
    baseline_seconds : float
        Length of each clip's neutral baseline (61 s in the release).
    synchrony : float
        Strength of each clip's stimulus-locked time course, shared by its viewers
        (see :mod:`physiosync.synthetic`); 0 turns it off.
    rating_bias : float
        SD of a per-participant offset of the scores, as a fraction of the 1-5 range;
        it shifts the scores, not the signals. 0 turns it off.
    %(affect)s
    %(verbose)s

    Returns
    -------
    path : Path
        The file written. It is written to a temporary name and renamed, so it is
        either complete or absent.
    """
    check_sizes(n_subjects, n_trials, seconds, N_SUBJECTS, N_TRIALS)
    options = check_simulation_options(synchrony, rating_bias, affect=affect,
                                       affect_share=affect_share, control=control)
    if not baseline_seconds > 0:
        raise PhysioSyncError(f"baseline_seconds must be positive, got {baseline_seconds!r}.")
    out = Path(out).expanduser()
    path = out if out.suffix.lower() == ".mat" else out / FILE_NAME
    check_folder(path.parent, [path.name])
    path.parent.mkdir(parents=True, exist_ok=True)

    rate_eeg, rate_ecg = DREAMER_SFREQ["eeg"], DREAMER_SFREQ["ecg"]
    clip_s = synthetic_clip_seconds(n_trials, seconds, seed)
    simulation = Simulation(seed, options, effect, n_subjects, n_trials, clip_s.astype(float),
                            low=1, high=5, integer=True, n_scales=3)
    scores = simulation.reported
    n_base = {"eeg": int(round(baseline_seconds * rate_eeg)),
              "ecg": int(round(baseline_seconds * rate_ecg))}
    subjects = []
    for s in progress(range(1, n_subjects + 1), desc="synthetic DREAMER"):
        rng = subject_rng(seed, s)
        sim = simulation.subject(s, rng)
        dc = 4200.0 + rng.normal(0.0, 80.0, len(DREAMER_EEG))
        age = str(int(rng.integers(22, 34)))
        gender = "male" if rng.random() < 14 / 23 else "female"
        parts = {m: {"baseline": [], "stimuli": []} for m in ("eeg", "ecg")}
        for t in range(n_trials):
            state = sim.trial(t, float(clip_s[t]))  # shared by the EEG and the ECG
            for m, names, rate in (("eeg", DREAMER_EEG, rate_eeg), ("ecg", DREAMER_ECG, rate_ecg)):
                offset = dc[:, None] if m == "eeg" else 0.0
                base = sim.signal(m, names, rate, n_base[m], 2 * t) + offset
                stim = sim.signal(m, names, rate, int(clip_s[t] * rate), 2 * t + 1,
                                  state) + offset
                parts[m]["baseline"].append(base.T)  # (samples x channels), time-major
                parts[m]["stimuli"].append(stim.T)
        subject = {"Age": age, "Gender": gender}
        for m, field in MODALITY_FIELDS.items():
            subject[field] = {k: _cell_of(parts[m][k], (n_trials, 1)) for k in SIGNAL_FIELDS}
        for j, field in enumerate(SCORE_FIELDS.values()):
            subject[field] = scores[s - 1, :, j].astype(np.float64).reshape(n_trials, 1)
        subjects.append(subject)

    dreamer = {
        "Data": _cell_of(subjects, (1, n_subjects)),
        "EEG_SamplingRate": rate_eeg,
        "ECG_SamplingRate": rate_ecg,
        "EEG_Electrodes": _cell_of(DREAMER_EEG, (1, len(DREAMER_EEG))),
        "noOfSubjects": float(n_subjects),
        "noOfVideoSequences": float(n_trials),
        "Disclaimer": "Synthetic data written by physiosync.datasets.make_dreamer; these "
                      "are not the DREAMER recordings.",
        "Provider": "physiosync (synthetic)",
        "Version": "synthetic-1.0",
        "Acknowledgement": "Layout of the DREAMER database (Katsigiannis & Ramzan, 2018).",
    }
    with recording_synth(path.parent), atomic_open(path, "wb") as f:
        write_mat(f, {"DREAMER": dreamer}, oned_as="column")
    logger.info("wrote synthetic DREAMER (%d subjects x %d clips) to %s", n_subjects,
                n_trials, path)
    return path
